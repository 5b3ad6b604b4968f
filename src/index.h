/*
 * index.h: the hash index. Buckets of 7 slots (one cache line), each slot
 * a fingerprint of the id's hash beside an entry index, probed linearly
 * from the id's home bucket over at most `bound` further buckets (a
 * per-home-bucket word in the same line). Lookups are wait-free: the probe
 * visits a bounded number of slots, never waits and never retries. Every
 * live id lies within its home's bound, with no EMPTY slot before it
 * (INV-4, design.md §5).
 */
#ifndef CONNREG_INDEX_H
#define CONNREG_INDEX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <urcu/compiler.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "handle.h"

/* Keyed hash: a per-segment random secret, so crafted ids cannot collide on purpose. */
static inline uint64_t cr_hash(const struct connreg_handle *reg, const void *id, size_t len)
{
	return XXH3_64bits_withSecret(id, len, reg->secret, CR_SECRET_SIZE);
}

static inline uint32_t cr_home(const struct connreg_handle *reg, uint64_t h)
{
	/* Multiply-shift range reduction: any bucket count, no modulo. */
	return (uint32_t)(((h & 0xffffffffu) * reg->n_buckets) >> 32);
}

static inline uint32_t cr_fp(uint64_t h)
{
	return (uint32_t)(h >> 32) | 1u;	/* never 0: 0 marks EMPTY and TOMB */
}

static inline uint32_t cr_bound(const struct connreg_handle *reg, uint32_t home)
{
	/*
	 * Relaxed: an old bound can only hide an insert that has not
	 * completed before this lookup began (design.md, "Probe bound").
	 * ORD-16(r): a raise is seen once the publish after it happened before us.
	 */
	uint32_t bound = atomic_load_explicit(&reg->index[home].ctl, memory_order_relaxed) &
			 CR_BOUND_MASK;

	if (bound == CR_BOUND_UNBOUNDED || bound >= reg->n_buckets)
		bound = reg->n_buckets - 1;
	return bound;
}

/*
 * Key equality for the probe: ids up to 16 bytes (the common case) are
 * compared with two overlapping loads per side, inside [0, len) of both
 * buffers; longer ids go to memcmp.
 */
static inline bool cr_key_eq(const uint8_t *a, const uint8_t *b, uint32_t len)
{
	uint64_t x0, x1, y0, y1;
	uint32_t u0, u1, v0, v1;

	if (len >= 8 && len <= 16) {
		memcpy(&x0, a, 8);
		memcpy(&y0, b, 8);
		memcpy(&x1, a + len - 8, 8);
		memcpy(&y1, b + len - 8, 8);
		return ((x0 ^ y0) | (x1 ^ y1)) == 0;
	}
	if (len >= 4 && len < 8) {
		memcpy(&u0, a, 4);
		memcpy(&v0, b, 4);
		memcpy(&u1, a + len - 4, 4);
		memcpy(&v1, b + len - 4, 4);
		return ((u0 ^ v0) | (u1 ^ v1)) == 0;
	}
	if (len < 4) {
		for (uint32_t i = 0; i < len; i++)
			if (a[i] != b[i])
				return false;
		return true;
	}
	return memcmp(a, b, len) == 0;
}

struct cr_hit {
	_Atomic uint64_t *slot;
	uint64_t val;
	uint32_t pos;		/* bucket * CR_BUCKET_SLOTS + slot, for the ledger */
};

/*
 * Find the live slot that holds id. Call inside a read-side section: the
 * entry behind hit->val stays valid and unchanged until the section ends
 * (INV-2, INV-3); the probe reads every slot the id can be in (INV-4).
 */
static inline bool cr_index_find(const struct connreg_handle *reg, const void *id, uint32_t len,
				 uint64_t h, struct cr_hit *hit)
{
	uint32_t b = cr_home(reg, h), fp = cr_fp(h);
	uint32_t bound = cr_bound(reg, b);
	struct cr_bucket *bk = &reg->index[b];

	for (uint32_t d = 0;; d++) {
		for (unsigned i = 0; i < CR_BUCKET_SLOTS; i++) {
			/* ORD-5(r): acquire pairs with the publishing CAS: the entry is filled. */
			uint64_t v = atomic_load_explicit(&bk->slot[i], memory_order_acquire);

			if (v == CR_SLOT_EMPTY)
				return false;	/* slots never return to EMPTY: the probe ends */
			if (cr_slot_fp(v) != fp)
				continue;
			uint32_t idx = cr_slot_idx(v);
			if (caa_unlikely(idx >= reg->n_entries))
				continue;	/* corrupt slot: never dereference it */
			const struct cr_entry *e = cr_entry_at(reg, idx);
			if (e->key_len == len && cr_key_eq(e->key, id, len)) {
				hit->slot = &bk->slot[i];
				hit->val = v;
				hit->pos = b * CR_BUCKET_SLOTS + i;
				return true;
			}
		}
		if (d == bound)
			return false;
		b = b + 1 == reg->n_buckets ? 0 : b + 1;
		bk = &reg->index[b];
	}
}

/* Prefetch the home bucket while the caller does other work. */
static inline void cr_index_prefetch(const struct connreg_handle *reg, uint64_t h)
{
	__builtin_prefetch(&reg->index[cr_home(reg, h)]);
}

/*
 * Publish entry idx for hash h in the first non-live slot from h's home
 * bucket. The caller holds the home's stripe lock, is inside a read-side
 * section, and has checked that the id is absent. Returns 0, or -ENOSPC if
 * every slot is live (impossible while live ids <= capacity).
 */
int cr_index_insert(struct connreg_handle *reg, uint64_t h, uint32_t idx);

/* True when some slot points at entry idx (recovery; no section needed; INV-4). */
bool cr_index_reaches(struct connreg_handle *reg, uint32_t idx);

/* The stripe lock that serializes inserts homed at h's bucket. */
static inline struct cr_stripe *cr_stripe_for(const struct connreg_handle *reg, uint64_t h)
{
	return &reg->stripes[cr_home(reg, h) % reg->n_stripes];
}

#endif /* CONNREG_INDEX_H */
