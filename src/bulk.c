/*
 * bulk.c: connreg_get_transport_bulk. Ids are taken 16 at a time: hash
 * them all and prefetch their home buckets, then probe each. A hit on an
 * id of up to 16 bytes lies in its home's line, so the 16 cache misses
 * overlap instead of following one another, and results equal single
 * lookups (the same probe, cr_index_find, inside one section).
 */
#include <errno.h>

#include "index.h"
#include "rcu.h"

#define CR_BULK_BATCH 16u

static void cr_bulk_batch(struct connreg_handle *reg, struct cr_rslot *slot, size_t m,
			  const void *const ids[], const size_t lens[], uint64_t out[], int rc[])
{
	uint64_t h[CR_BULK_BATCH];

	for (size_t i = 0; i < m; i++) {
		rc[i] = 1;	/* to probe */
		if (!ids[i] || lens[i] == 0) {
			rc[i] = -EINVAL;
		} else if (lens[i] > reg->key_max) {
			rc[i] = -ENAMETOOLONG;
		} else {
			h[i] = cr_hash(reg, ids[i], lens[i]);
			cr_index_prefetch(reg, h[i]);
		}
	}
	cr_read_lock(reg, slot);
	for (size_t i = 0; i < m; i++) {
		struct cr_hit hit;

		if (rc[i] != 1)
			continue;
		if (cr_index_find(reg, ids[i], (uint32_t)lens[i], h[i], &hit)) {
			out[i] = cr_rec_transport(reg, hit.pos);
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
	struct cr_thread *t;
	int err;

	if (!reg || !ids || !id_lens || !transports || !rc)
		return -EINVAL;
	err = cr_thread_get(reg, &t);
	if (err)
		return err;
	for (size_t base = 0; base < n; base += CR_BULK_BATCH) {
		size_t m = n - base < CR_BULK_BATCH ? n - base : CR_BULK_BATCH;

		cr_bulk_batch(reg, t->slot, m, ids + base, id_lens + base, transports + base,
			      rc + base);
	}
	return 0;
}
