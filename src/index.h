/*
 * index.h: the hash index. Buckets of two records (one cache line), each
 * record a meta word (length code and 24 bits of the hash), the transport
 * and the first 16 bytes of the id, probed linearly from the id's home
 * bucket over at most `bound` further buckets (a per-home-bucket word in
 * the same line). A hit on an id of up to 16 bytes reads that one line.
 * Lookups are wait-free: the probe visits a bounded number of records,
 * never waits and never retries. Every live id lies within its home's
 * bound, with no EMPTY record before it (INV-4, design.md §5).
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

/* XXH3 of an id longer than 16 bytes: out of line, so lookups of short ids stay small. */
uint64_t cr_hash_long(const struct connreg_handle *reg, const void *id, size_t len);

/*
 * XXH3_mul128_fold64 (the 128-bit product's halves XORed). On x86-64 one
 * MUL in asm: GCC 12 allocates the __int128 product a register pair and
 * then saves two callee-saved registers it never uses.
 */
static inline uint64_t cr_mul128_fold64(uint64_t a, uint64_t b)
{
#if defined(__x86_64__)
	uint64_t lo, hi;

	__asm__("mulq %3" : "=a"(lo), "=d"(hi) : "%0"(a), "rm"(b) : "cc");
	return lo ^ hi;
#else
	return XXH3_mul128_fold64(a, b);
#endif
}

/* Fold the secret's words into reg->hkeys (at open, before any hash). */
void cr_hash_keys_init(struct cr_hash_keys *k, const uint8_t *secret);

/*
 * Keyed hash: a per-segment random secret, so crafted ids cannot collide
 * on purpose. Ids of up to 16 bytes are hashed inline with the keys
 * folded at open: the same value as XXH3_64bits_withSecret(id, len,
 * secret) (XXH3's own short-input steps, with seed 0; test_hash checks
 * every length), with two loads fewer per call.
 */
static inline __attribute__((always_inline)) uint64_t
cr_hash_short(const struct cr_hash_keys *k, const void *id, size_t len)
{
	const uint8_t *p = id;

	if (len > CR_KEY_INLINE || len == 0)
		__builtin_unreachable();
	if (len > 8) {
		uint64_t lo = XXH_readLE64(p) ^ k->k9to16[0];
		uint64_t hi = XXH_readLE64(p + len - 8) ^ k->k9to16[1];

		return XXH3_avalanche(len + XXH_swap64(lo) + hi + cr_mul128_fold64(lo, hi));
	}
	if (len >= 4) {
		uint64_t in = XXH_readLE32(p + len - 4) + ((uint64_t)XXH_readLE32(p) << 32);

		return XXH3_rrmxmx(in ^ k->k4to8, len);
	}
	uint32_t combined = (uint32_t)p[0] << 16 | (uint32_t)p[len >> 1] << 24 | p[len - 1] |
			    (uint32_t)len << 8;

	return XXH64_avalanche(combined ^ k->k1to3);
}

static inline __attribute__((always_inline)) uint64_t
cr_hash(const struct connreg_handle *reg, const void *id, size_t len)
{
	if (caa_likely(len <= CR_KEY_INLINE))
		return cr_hash_short(&reg->hkeys, id, len);
	return cr_hash_long(reg, id, len);
}

static inline uint32_t cr_home(const struct connreg_handle *reg, uint64_t h)
{
	/* Multiply-shift range reduction: any bucket count, no modulo. */
	return (uint32_t)(((h & 0xffffffffu) * reg->n_buckets) >> 32);
}

/* The 24-bit tag of a LIVE meta word: hash bits the home does not use. */
static inline uint32_t cr_tag(uint64_t h)
{
	return (uint32_t)(h >> 40);
}

static inline _Atomic uint32_t *cr_meta_at(const struct connreg_handle *reg, uint32_t pos)
{
	return &reg->index[pos / CR_BUCKET_SLOTS].meta[pos % CR_BUCKET_SLOTS];
}
static inline struct cr_rec *cr_rec_at(const struct connreg_handle *reg, uint32_t pos)
{
	return &reg->index[pos / CR_BUCKET_SLOTS].rec[pos % CR_BUCKET_SLOTS];
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
 * The first 16 bytes of an id as two words, zero past its end: exactly
 * what its record holds inline (the inline key is stored zero-padded), so
 * that a probe compares two words whatever the length, and the words are
 * ready before the bucket's line arrives. Loads stay inside [0, len).
 */
struct cr_kw {
	uint64_t lo, hi;
};

static inline __attribute__((always_inline)) struct cr_kw
cr_key_words(const uint8_t *id, uint32_t len)
{
	struct cr_kw w = { 0, 0 };
	uint64_t x;
	uint32_t u, v;

	if (len >= 8) {
		memcpy(&w.lo, id, 8);
		if (len >= 16) {
			memcpy(&w.hi, id + 8, 8);
		} else if (len > 8) {
			/* bytes len-8 .. len-1, shifted down so byte 8 lands at bit 0 */
			memcpy(&x, id + len - 8, 8);
			w.hi = x >> (8 * (16 - len));
		}
	} else if (len >= 4) {
		/* two overlapping 4-byte loads; the overlap holds equal bytes */
		memcpy(&u, id, 4);
		memcpy(&v, id + len - 4, 4);
		w.lo = u | (uint64_t)v << (8 * (len - 4));
	} else if (len >= 1) {
		/* first, middle and last byte cover 1..3 bytes (XXH3's trick) */
		w.lo = id[0] | (uint64_t)id[len >> 1] << (8 * (len >> 1)) |
		       (uint64_t)id[len - 1] << (8 * (len - 1));
	}
	return w;
}

/* Does a record's inline key equal w? Plain loads: immutable while LIVE (INV-2). */
static inline __attribute__((always_inline)) bool cr_rec_kw_eq(const struct cr_rec *r,
							      struct cr_kw w)
{
	uint64_t lo, hi;

	memcpy(&lo, r->key, 8);
	memcpy(&hi, r->key + 8, 8);
	return ((lo ^ w.lo) | (hi ^ w.hi)) == 0;
}

/*
 * Is either record of bucket bk's meta word want? If so, *r is that
 * record: the probe step of the fast lookup and of bulk lookups. Both
 * words are loaded and the record is chosen with no branch on which of
 * the two it is (a coin toss: that branch would go the wrong way half the
 * time). When both match (a tag collision) record 0 is chosen, and a
 * caller whose key compare fails goes to the full probe (cr_bucket_scan),
 * which tries both. (A bool and an out pointer, not a pointer or NULL:
 * the select is opaque to the compiler, which would test the pointer.)
 */
static inline __attribute__((always_inline)) bool
cr_bucket_pick(const struct cr_bucket *bk, uint32_t want, const struct cr_rec **r)
{
	/* ORD-5(r): acquire pairs with the publishing store: the record is filled. */
	uint32_t m0 = atomic_load_explicit(&bk->meta[0], memory_order_acquire);
	/* ORD-5(r): as above, for the second record. */
	uint32_t m1 = atomic_load_explicit(&bk->meta[1], memory_order_acquire);
#if defined(__x86_64__)
	uint32_t m = m0;
	uintptr_t i;

	/* i = m0 != want; m = i ? m1 : m0. GCC 12 turns any C form of the select into a branch. */
	__asm__("xor %k[i], %k[i]\n\t"
		"cmp %[want], %[m]\n\t"
		"setne %b[i]\n\t"
		"cmovne %[m1], %[m]"
		: [m] "+r"(m), [i] "=&q"(i)
		: [want] "r"(want), [m1] "r"(m1)
		: "cc");
	*r = &bk->rec[i];
	return m == want;
#else
	/* Either matches: the 64-bit product of the differences is 0 exactly when one is. */
	uint32_t i = m0 != want;

	__asm__("" : "+r"(i));	/* keeps the select from becoming a branch */
	*r = &bk->rec[i];
	return (uint64_t)(m0 ^ want) * (m1 ^ want) == 0;
#endif
}

enum cr_probe { CR_PROBE_HIT, CR_PROBE_ABSENT, CR_PROBE_AGAIN, CR_PROBE_ON };

/*
 * The first two steps of the probe for a short id (at most 16 bytes: its
 * meta word want and key words w say all about it), inside a read-side
 * section, with no call: the fast lookup's and bulk's. HIT: *r holds it.
 * ABSENT: the probe ended (an EMPTY record, or the home's bound). AGAIN: a
 * tag matched at home and the key did not: the full probe from home.
 * ON: the id, if present, lies past the second bucket, or past the last
 * bucket (*last, the index's, read only then; its next is the first): the
 * full probe from the bucket after home.
 *
 * A miss at home loads the meta words again for the end test instead of
 * keeping them: records never return to EMPTY, so one seen now was EMPTY
 * at the pick too, and the id was absent then. The home's bound is in the
 * same line. An id whose home is full lies in the next bucket nearly
 * always: that bucket is picked the same way.
 */
static inline __attribute__((always_inline)) enum cr_probe
cr_probe_short(const struct cr_bucket *bk, const struct cr_bucket *const *last, uint32_t want,
	       struct cr_kw w, const struct cr_rec **r)
{
	uint32_t m0, m1, bound;

	if (caa_likely(cr_bucket_pick(bk, want, r)))
		return caa_likely(cr_rec_kw_eq(*r, w)) ? CR_PROBE_HIT : CR_PROBE_AGAIN;
	/* ORD-5(r): acquire pairs with the publishing store (only EMPTY or not is used). */
	m0 = atomic_load_explicit(&bk->meta[0], memory_order_acquire);
	/* ORD-5(r): as above. */
	m1 = atomic_load_explicit(&bk->meta[1], memory_order_acquire);
	/* Relaxed, ORD-16(r): as cr_bound (0 and 1 are themselves whatever the clamp). */
	bound = atomic_load_explicit(&bk->ctl, memory_order_relaxed) & CR_BOUND_MASK;
	if (caa_likely(((uint64_t)m0 * m1 == 0) | (bound == 0)))
		return CR_PROBE_ABSENT;
	if (caa_unlikely(bk == *last))
		return CR_PROBE_ON;
	if (caa_likely(cr_bucket_pick(bk + 1, want, r)))
		return caa_likely(cr_rec_kw_eq(*r, w)) ? CR_PROBE_HIT : CR_PROBE_ON;
	/* ORD-5(r): as above, for the next bucket. */
	m0 = atomic_load_explicit(&bk[1].meta[0], memory_order_acquire);
	/* ORD-5(r): as above. */
	m1 = atomic_load_explicit(&bk[1].meta[1], memory_order_acquire);
	if (((uint64_t)m0 * m1 == 0) | (bound == 1))
		return CR_PROBE_ABSENT;	/* an EMPTY record, or the last bucket in the bound */
	return CR_PROBE_ON;
}

/*
 * Does LIVE record pos (whose meta matched len's code) hold id (whose
 * words are w)? Ids of up to 16 bytes compare in the line; longer ones
 * compare their first 16 bytes there, then the rest in the side entry.
 */
static inline __attribute__((always_inline)) bool
cr_rec_eq(const struct connreg_handle *reg, uint32_t pos, const struct cr_rec *r, struct cr_kw w,
	  const uint8_t *id, uint32_t len)
{
	if (!cr_rec_kw_eq(r, w))
		return false;
	if (caa_likely(len <= CR_KEY_INLINE))
		return true;
	const struct cr_entry *e = cr_entry_at(reg, pos);

	return e->key_len == len && memcmp(e->tail, id + CR_KEY_INLINE, len - CR_KEY_INLINE) == 0;
}

struct cr_hit {
	const struct cr_rec *rec;	/* the record, in its bucket's line */
	uint32_t pos;		/* bucket * CR_BUCKET_SLOTS + record */
	uint32_t meta;		/* the LIVE meta word seen there */
};

enum cr_scan { CR_SCAN_FOUND, CR_SCAN_END, CR_SCAN_ON };

/*
 * Look for id in bucket b: both meta words are loaded, and the record
 * whose word equals `want` is compared, with no branch on which of the two
 * it is (that branch would go the wrong way half the time). Found; the
 * end of the probe (an EMPTY record); or on to the next bucket.
 */
static inline __attribute__((always_inline)) enum cr_scan
cr_bucket_scan(const struct connreg_handle *reg, uint32_t b, uint32_t want, struct cr_kw w,
	       const void *id, uint32_t len, struct cr_hit *hit)
{
	const struct cr_bucket *bk = &reg->index[b];
	/* ORD-5(r): acquire pairs with the publishing store: the record is filled. */
	uint32_t m0 = atomic_load_explicit(&bk->meta[0], memory_order_acquire);
	/* ORD-5(r): as above, for the second record. */
	uint32_t m1 = atomic_load_explicit(&bk->meta[1], memory_order_acquire);
	uint32_t i = m0 != want;	/* the candidate: record 0 if its word matches */
	/*
	 * The candidate's word, selected without a branch: whether the id
	 * sits in record 0 or 1 is a coin toss, and a branch on it would be
	 * mispredicted half the time. The empty asm hides how i was made, or
	 * the compiler turns the select back into "if (m0 == want)".
	 */
	__asm__("" : "+r"(i));
	uint32_t mask = 0u - i;
	uint32_t mi = (m1 & mask) | (m0 & ~mask);

	_Static_assert(CR_BUCKET_SLOTS == 2, "the scan reads two records");
	if (mi == want) {
		bool eq = cr_rec_eq(reg, b * 2 + i, &bk->rec[i], w, id, len);

		if (caa_unlikely(!eq) && i == 0 && m1 == want) {
			/* both words match (a tag collision) and record 0 was not it */
			i = 1;
			eq = cr_rec_eq(reg, b * 2 + 1, &bk->rec[1], w, id, len);
		}
		if (caa_likely(eq)) {
			hit->rec = &bk->rec[i];
			hit->pos = b * 2 + i;
			hit->meta = want;
			return CR_SCAN_FOUND;
		}
	}
	/*
	 * Records never return to EMPTY: an EMPTY one ends the probe. The
	 * 64-bit product of the two words is zero exactly when one of them is
	 * (no overflow): one branch, not two.
	 */
	return (uint64_t)m0 * m1 == 0 ? CR_SCAN_END : CR_SCAN_ON;
}

/*
 * The probe past a full home bucket: the buckets after home, up to its
 * bound (read only now: most probes end at home), for the id whose meta
 * word is want and words w.
 */
static inline __attribute__((always_inline)) bool
cr_index_find_on(const struct connreg_handle *reg, uint32_t want, struct cr_kw w, const void *id,
		 uint32_t len, uint32_t home, struct cr_hit *hit)
{
	uint32_t bound = cr_bound(reg, home), b = home;

	for (uint32_t d = 1; d <= bound; d++) {
		enum cr_scan r;

		b = b + 1 == reg->n_buckets ? 0 : b + 1;
		r = cr_bucket_scan(reg, b, want, w, id, len, hit);
		if (r != CR_SCAN_ON)
			return r == CR_SCAN_FOUND;
	}
	return false;
}

/*
 * Find the live record of meta word want and words w (id and len: for the
 * side entry of an id longer than 16 bytes; never read for a shorter one)
 * from home bucket home. Call inside a read-side section: the record's key
 * stays unchanged until the section ends (INV-2, INV-3); the probe reads
 * every record the id can be in (INV-4). The home bucket first, with no
 * bound read: a hit there (the common case) or an EMPTY record ends it.
 */
static inline __attribute__((always_inline)) bool
cr_index_find_kw(const struct connreg_handle *reg, uint32_t want, struct cr_kw w, const void *id,
		 uint32_t len, uint32_t home, struct cr_hit *hit)
{
	enum cr_scan r = cr_bucket_scan(reg, home, want, w, id, len, hit);

	if (caa_likely(r != CR_SCAN_ON))
		return r == CR_SCAN_FOUND;
	return cr_index_find_on(reg, want, w, id, len, home, hit);
}

/* As cr_index_find_kw, for id of hash h. */
static inline __attribute__((always_inline)) bool
cr_index_find_at(const struct connreg_handle *reg, const void *id, uint32_t len, uint64_t h,
		 uint32_t home, struct cr_hit *hit)
{
	return cr_index_find_kw(reg, cr_meta_live(cr_lenc(len), cr_tag(h)), cr_key_words(id, len),
				id, len, home, hit);
}

static inline bool cr_index_find(const struct connreg_handle *reg, const void *id, uint32_t len,
				 uint64_t h, struct cr_hit *hit)
{
	return cr_index_find_at(reg, id, len, h, cr_home(reg, h), hit);
}

/* The transport of a record found inside the current section. */
static inline uint64_t cr_hit_transport(const struct cr_hit *hit)
{
	/*
	 * ORD-19(r): acquire pairs with the store of an in-place update (the
	 * publishing store carries the first value, ORD-5).
	 */
	return atomic_load_explicit(&hit->rec->transport, memory_order_acquire);
}

static inline uint64_t cr_rec_transport(const struct connreg_handle *reg, uint32_t pos)
{
	struct cr_hit hit = { cr_rec_at(reg, pos), pos, 0 };

	return cr_hit_transport(&hit);
}

/* Prefetch bucket b (a home) while the caller does other work. */
static inline void cr_bucket_prefetch(const struct connreg_handle *reg, uint32_t b)
{
	__builtin_prefetch(&reg->index[b]);
}

/*
 * Claim a record position for a new id of hash h: the first one from h's
 * home bucket that is not live and whose state word says it may be reused
 * (FREE, or RETIRED before the safe epoch `safe`, and not pending in its
 * remover's ledger), taken with one CAS on its state (OWNED by t). The
 * caller holds the home's stripe lock and is inside a read-side section.
 * Returns 0 and *pos, or -EAGAIN when no position is reusable yet.
 * *skipped is set when a retired position in the home bucket was passed
 * over for want of a grace period.
 */
int cr_index_claim(struct connreg_handle *reg, struct cr_thread *t, uint64_t h, uint64_t safe,
		   uint32_t *pos, bool *skipped);

/*
 * Publish claimed position pos (filled: key, transport, side entry) for
 * hash h: raise h's home bound if pos lies beyond it, then the publishing
 * store of its meta word.
 */
void cr_index_publish(struct connreg_handle *reg, uint64_t h, uint32_t len, uint32_t pos);

/* True when position pos holds a LIVE record (recovery; no section needed). */
bool cr_index_reaches(struct connreg_handle *reg, uint32_t pos);

/*
 * Copy the id of LIVE position pos into key (key_max bytes); its length,
 * or 0 when the record is corrupt. Inside a section.
 */
uint32_t cr_rec_key(const struct connreg_handle *reg, uint32_t pos, uint32_t meta, uint8_t *key);

/* The stripe lock that serializes the writers of ids homed at h's bucket. */
static inline struct cr_stripe *cr_stripe_for(const struct connreg_handle *reg, uint64_t h)
{
	return &reg->stripes[cr_home(reg, h) % reg->n_stripes];
}

#endif /* CONNREG_INDEX_H */
