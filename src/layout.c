/*
 * layout.c: geometry of a segment from its parameters. Shared by create
 * (to size the segment) and open (to check every header field against the
 * segment's size before anything else is read).
 */
#include <errno.h>

#include "connreg.h"
#include "layout.h"

static int add_region(uint64_t *cursor, uint64_t bytes, uint64_t *off)
{
	uint64_t start = (*cursor + CR_REGION_ALIGN - 1) & ~(uint64_t)(CR_REGION_ALIGN - 1);

	if (start < *cursor || start + bytes < start)
		return -EINVAL;
	*off = start;
	*cursor = start + bytes;
	return 0;
}

int cr_geometry_compute(const struct cr_params *p, uint32_t flags, struct cr_geometry *g)
{
	uint64_t buckets, cursor = sizeof(struct cr_header);
	int rc = 0;

	/*
	 * Index: two records per bucket, at most half of them ever live, so
	 * one bucket per id of capacity; every record position has a state
	 * word and a side entry (positions are the entries).
	 */
	buckets = p->capacity;
	if (buckets < 2)
		buckets = 2;
	if (2 * buckets >= CR_PEND_DEL)
		return -EINVAL;	/* a position must fit a ledger's pending note */
	g->n_buckets = (uint32_t)buckets;
	g->n_entries = (uint32_t)(2 * buckets);
	g->n_stripes = CR_STRIPES;
	/*
	 * A side entry holds what the line has no room for: the key past 16
	 * bytes, and a pid transport's identity. A registry of short ids
	 * without CONNREG_TRANSPORT_IS_PID needs none (stride 0, an empty
	 * region): its lookups, writers and walks never touch one.
	 */
	if (p->key_max > CR_KEY_INLINE || (flags & CONNREG_TRANSPORT_IS_PID))
		g->entry_stride = (uint32_t)((sizeof(struct cr_entry) +
					      (p->key_max > CR_KEY_INLINE ? p->key_max - CR_KEY_INLINE
									  : 0) +
					      7) & ~7ull);
	else
		g->entry_stride = 0;

	rc |= add_region(&cursor, buckets * sizeof(struct cr_bucket), &g->off_index);
	rc |= add_region(&cursor, (uint64_t)p->n_rslots * sizeof(struct cr_rslot), &g->off_rslots);
	g->n_tokens = p->n_rslots * CR_TOKENS_PER_RSLOT;
	rc |= add_region(&cursor, (uint64_t)g->n_tokens * sizeof(struct cr_token), &g->off_tokens);
	rc |= add_region(&cursor, (uint64_t)g->n_stripes * sizeof(struct cr_stripe), &g->off_stripes);
	/* Change feed: one bit per bucket, and one summary bit per 64 of those words. */
	g->n_change_words = (uint32_t)((buckets + 63) / 64);
	rc |= add_region(&cursor, ((uint64_t)g->n_change_words + (g->n_change_words + 63) / 64) * 8,
			 &g->off_changes);
	rc |= add_region(&cursor, (uint64_t)g->n_entries * sizeof(uint64_t), &g->off_states);
	rc |= add_region(&cursor, (uint64_t)g->n_entries * g->entry_stride, &g->off_entries);
	if (rc)
		return -EINVAL;
	g->segment_size = (cursor + CR_REGION_ALIGN - 1) & ~(uint64_t)(CR_REGION_ALIGN - 1);
	return 0;
}
