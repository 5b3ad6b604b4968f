/*
 * bulk.c: connreg_get_transport_bulk. Ids are taken 16 at a time, and
 * software-pipelined: the ids of the next batch are hashed and their home
 * buckets prefetched before the current batch is probed, so each line has
 * had a whole batch's work to arrive. A hit on an id of up to 16 bytes lies
 * in its home's line, so the misses overlap instead of following one
 * another, and results equal single lookups (the same probe,
 * cr_index_find_kw, inside one read-side section per batch).
 */
#include <errno.h>

#include "index.h"
#include "rcu.h"

#define CR_BULK_BATCH 16u

struct cr_bulk_prep {
	struct cr_kw w[CR_BULK_BATCH];		/* the ids' first 16 bytes (cr_key_words) */
	uint32_t want[CR_BULK_BATCH];		/* their LIVE meta words */
	uint32_t home[CR_BULK_BATCH];
	int ok[CR_BULK_BATCH];	/* 1: valid id, hashed and prefetched */
};

/* Check, hash and prefetch ids [0, m): rc[] gets the argument errors. */
static void cr_bulk_prep(const struct connreg_handle *reg, size_t m, const void *const ids[],
			 const size_t lens[], int rc[], struct cr_bulk_prep *p)
{
	for (size_t i = 0; i < m; i++) {
		p->ok[i] = 0;
		if (!ids[i] || lens[i] == 0) {
			rc[i] = -EINVAL;
		} else if (lens[i] > reg->key_max) {
			rc[i] = -ENAMETOOLONG;
		} else {
			uint64_t h = cr_hash(reg, ids[i], lens[i]);

			p->home[i] = cr_home(reg, h);
			cr_bucket_prefetch(reg, p->home[i]);
			p->want[i] = cr_meta_live(cr_lenc((uint32_t)lens[i]), cr_tag(h));
			p->w[i] = cr_key_words(ids[i], (uint32_t)lens[i]);
			p->ok[i] = 1;
		}
	}
}

static void cr_bulk_probe(const struct connreg_handle *reg, struct cr_rslot *slot, size_t m,
			  const void *const ids[], const size_t lens[], uint64_t out[], int rc[],
			  const struct cr_bulk_prep *p)
{
	cr_read_lock(reg, slot);
	for (size_t i = 0; i < m; i++) {
		struct cr_hit hit;

		if (!p->ok[i])
			continue;
		if (cr_index_find_kw(reg, p->want[i], p->w[i], ids[i], (uint32_t)lens[i], p->home[i],
				     &hit)) {
			out[i] = cr_hit_transport(&hit);
			rc[i] = 0;
		} else {
			rc[i] = -ENOENT;
		}
	}
	cr_read_unlock(slot);
}

int connreg_get_transport_bulk(connreg_t *reg, size_t n, const void *const ids[],
			       const size_t id_lens[], uint64_t transports[], int rc[])
{
	struct cr_bulk_prep prep[2];
	struct cr_thread *t;
	int err;

	if (!reg || !ids || !id_lens || !transports || !rc)
		return -EINVAL;
	err = cr_thread_get(reg, &t);
	if (err)
		return err;
	if (n == 0)
		return 0;
	cr_bulk_prep(reg, n < CR_BULK_BATCH ? n : CR_BULK_BATCH, ids, id_lens, rc, &prep[0]);
	for (size_t base = 0, k = 0; base < n; base += CR_BULK_BATCH, k ^= 1) {
		size_t m = n - base < CR_BULK_BATCH ? n - base : CR_BULK_BATCH;
		size_t next = base + CR_BULK_BATCH;

		if (next < n)
			cr_bulk_prep(reg, n - next < CR_BULK_BATCH ? n - next : CR_BULK_BATCH,
				     ids + next, id_lens + next, rc + next, &prep[k ^ 1]);
		cr_bulk_probe(reg, t->slot, m, ids + base, id_lens + base, transports + base,
			      rc + base, &prep[k]);
	}
	return 0;
}
