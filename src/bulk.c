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
#define CR_BULK_AHEAD 2u	/* batches prepared (hashed, prefetched) before their probe */

/* One batch, worked out before it is probed. */
struct cr_bulk_prep {
	const struct cr_bucket *bk[CR_BULK_BATCH];	/* home buckets, prefetched */
	struct cr_kw w[CR_BULK_BATCH];			/* first 16 bytes (cr_key_words) */
	uint32_t want[CR_BULK_BATCH];			/* LIVE meta words; 0: bad id */
};

/* Hash id (len bytes, checked), prefetch its home, and note its words in slot i of p. */
static inline __attribute__((always_inline)) void
cr_bulk_prep_one(const struct connreg_handle *reg, const void *id, size_t len, size_t i,
		 struct cr_bulk_prep *p)
{
	uint64_t h = cr_hash(reg, id, len);

	p->bk[i] = &reg->index[cr_home(reg, h)];
	__builtin_prefetch(p->bk[i]);
	p->want[i] = cr_meta_live(cr_lenc((uint32_t)len), cr_tag(h));
	p->w[i] = cr_key_words(id, (uint32_t)len);
}

/* Check, hash and prefetch ids [0, m): rc[] gets the argument errors. */
static void cr_bulk_prep(const struct connreg_handle *reg, size_t m, const void *const ids[],
			 const size_t lens[], int rc[], struct cr_bulk_prep *p)
{
	for (size_t i = 0; i < m; i++) {
		const void *id = ids[i];
		size_t len = lens[i];

		/* One unsigned compare rejects an empty id and one past key_max. */
		if (caa_unlikely(!id || len - 1 >= reg->key_max)) {
			rc[i] = !id || len == 0 ? -EINVAL : -ENAMETOOLONG;
			p->want[i] = 0;	/* never a LIVE word: skipped by the probe */
			continue;
		}
		/* 16 bytes (binary UUIDs) with the length a constant, as the single lookup. */
		if (caa_likely(len == CR_KEY_INLINE))
			cr_bulk_prep_one(reg, id, CR_KEY_INLINE, i, p);
		else
			cr_bulk_prep_one(reg, id, len, i, p);
	}
}

/*
 * Probe a prepared batch inside one read-side section: the first two
 * buckets of a short id as the single fast path probes them
 * (cr_probe_short), and the full probe (cr_index_find_kw) for the rest: a
 * long id, an id past the second bucket, a tag that matched another key.
 */
static void cr_bulk_probe(const struct connreg_handle *reg, struct cr_rslot *slot, size_t m,
			  const void *const ids[], const size_t lens[], uint64_t out[], int rc[],
			  const struct cr_bulk_prep *p)
{
	const struct cr_bucket *last = &reg->index[reg->n_buckets - 1];
	uint64_t outer = cr_read_lock(reg, slot);

	for (size_t i = 0; i < m; i++) {
		const struct cr_bucket *bk = p->bk[i];
		uint32_t want = p->want[i];
		const struct cr_rec *r;
		struct cr_hit hit;

		if (caa_unlikely(want == 0))
			continue;
		if (caa_likely(lens[i] <= CR_KEY_INLINE)) {
			enum cr_probe pr = cr_probe_short(bk, &last, want, p->w[i], &r);

			if (caa_likely(pr == CR_PROBE_HIT)) {
				/* ORD-19(r): as cr_hit_transport. */
				out[i] = atomic_load_explicit(&r->transport, memory_order_acquire);
				rc[i] = 0;
				continue;
			}
			if (pr == CR_PROBE_ABSENT) {
				rc[i] = -ENOENT;
				continue;
			}
		}
		if (cr_index_find_kw(reg, want, p->w[i], ids[i], (uint32_t)lens[i],
				     (uint32_t)(bk - reg->index), &hit)) {
			out[i] = cr_hit_transport(&hit);
			rc[i] = 0;
		} else {
			rc[i] = -ENOENT;
		}
	}
	cr_read_unlock(slot, outer);
}

/* Prepare the batch that starts at id `base` (if any) into p. */
static void cr_bulk_prep_at(const struct connreg_handle *reg, size_t n, size_t base,
			    const void *const ids[], const size_t lens[], int rc[],
			    struct cr_bulk_prep *p)
{
	if (base < n)
		cr_bulk_prep(reg, n - base < CR_BULK_BATCH ? n - base : CR_BULK_BATCH, ids + base,
			     lens + base, rc + base, p);
}

int connreg_get_transport_bulk(connreg_t *reg, size_t n, const void *const ids[],
			       const size_t id_lens[], uint64_t transports[], int rc[])
{
	/* A ring of CR_BULK_AHEAD + 1 batches: each is prefetched that many batches early. */
	struct cr_bulk_prep prep[CR_BULK_AHEAD + 1];
	struct cr_thread *t;
	int err;

	if (!reg || !ids || !id_lens || !transports || !rc)
		return -EINVAL;
	err = cr_thread_get(reg, &t);
	if (err)
		return err;
	for (size_t j = 0; j < CR_BULK_AHEAD; j++)
		cr_bulk_prep_at(reg, n, j * CR_BULK_BATCH, ids, id_lens, rc, &prep[j]);
	for (size_t base = 0, k = 0; base < n; base += CR_BULK_BATCH) {
		size_t m = n - base < CR_BULK_BATCH ? n - base : CR_BULK_BATCH;

		cr_bulk_prep_at(reg, n, base + CR_BULK_AHEAD * CR_BULK_BATCH, ids, id_lens, rc,
				&prep[(k + CR_BULK_AHEAD) % (CR_BULK_AHEAD + 1)]);
		cr_bulk_probe(reg, t->slot, m, ids + base, id_lens + base, transports + base,
			      rc + base, &prep[k]);
		k = (k + 1) % (CR_BULK_AHEAD + 1);
	}
	return 0;
}
