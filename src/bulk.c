/*
 * bulk.c: connreg_get_transport_bulk. Ids are taken 16 at a time: hash
 * them all and prefetch their home buckets, then read each bucket and
 * prefetch the entry its fingerprint points at, then compare keys. The
 * cache misses of the 16 overlap instead of following one another. Any id
 * the fast path cannot settle from its home bucket goes through the
 * ordinary probe (cr_index_find), so results equal single lookups.
 */
#include <errno.h>

#include "index.h"
#include "rcu.h"

#define CR_BULK_BATCH 16u

enum cr_bulk_state { CR_BULK_SKIP, CR_BULK_MISS, CR_BULK_CANDIDATE, CR_BULK_PROBE };

/* Read the home bucket once: a candidate entry, a sure miss, or "probe". */
static enum cr_bulk_state cr_bulk_scan_home(const struct connreg_handle *reg, uint64_t h,
					    uint32_t *cand)
{
	uint32_t home = cr_home(reg, h), fp = cr_fp(h);
	struct cr_bucket *bk = &reg->index[home];

	for (unsigned i = 0; i < CR_BUCKET_SLOTS; i++) {
		/* ORD-5(r): acquire pairs with the publishing CAS. */
		uint64_t v = atomic_load_explicit(&bk->slot[i], memory_order_acquire);

		if (v == CR_SLOT_EMPTY)
			return CR_BULK_MISS;
		if (cr_slot_fp(v) == fp && cr_slot_idx(v) < reg->n_entries) {
			*cand = cr_slot_idx(v);
			__builtin_prefetch(cr_entry_at(reg, *cand));
			return CR_BULK_CANDIDATE;
		}
	}
	return cr_bound(reg, home) == 0 ? CR_BULK_MISS : CR_BULK_PROBE;
}

static void cr_bulk_batch(struct connreg_handle *reg, struct cr_rslot *slot, size_t m,
			  const void *const ids[], const size_t lens[], uint64_t out[], int rc[])
{
	uint64_t h[CR_BULK_BATCH];
	uint32_t cand[CR_BULK_BATCH];
	enum cr_bulk_state st[CR_BULK_BATCH];

	for (size_t i = 0; i < m; i++) {
		st[i] = CR_BULK_SKIP;
		if (!ids[i] || lens[i] == 0) {
			rc[i] = -EINVAL;
		} else if (lens[i] > reg->key_max) {
			rc[i] = -ENAMETOOLONG;
		} else {
			h[i] = cr_hash(reg, ids[i], lens[i]);
			cr_index_prefetch(reg, h[i]);
			st[i] = CR_BULK_PROBE;
		}
	}
	cr_read_lock(reg, slot);
	for (size_t i = 0; i < m; i++)
		if (st[i] != CR_BULK_SKIP)
			st[i] = cr_bulk_scan_home(reg, h[i], &cand[i]);
	for (size_t i = 0; i < m; i++) {
		struct cr_hit hit;

		if (st[i] == CR_BULK_SKIP)
			continue;
		if (st[i] == CR_BULK_MISS) {
			rc[i] = -ENOENT;
			continue;
		}
		if (st[i] == CR_BULK_CANDIDATE) {
			const struct cr_entry *e = cr_entry_at(reg, cand[i]);

			if (e->key_len == lens[i] && cr_key_eq(e->key, ids[i], (uint32_t)lens[i])) {
				out[i] = e->transport;
				rc[i] = 0;
				continue;
			}
		}
		if (cr_index_find(reg, ids[i], (uint32_t)lens[i], h[i], &hit)) {
			out[i] = cr_entry_at(reg, cr_slot_idx(hit.val))->transport;
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
