/*
 * layout.h: the on-segment layout of a connreg registry: the one place
 * that defines it. Everything here lives in shared memory, is mapped at a
 * different address in every process, and therefore holds offsets and
 * indices only, never pointers. Fixed-width types, explicit padding, and a
 * _Static_assert on every size the layout depends on.
 *
 * Segment (each region starts on a 4 KiB boundary):
 *
 *   header   struct cr_header           identity, parameters, hot shared words
 *   index    struct cr_bucket[n_buckets] open-addressed hash: two records per line
 *                                        (meta, transport, first 16 key bytes)
 *   rslots   struct cr_rslot[n_rslots]   one per attached thread: reader epoch, owner
 *   tokens   struct cr_token[n_tokens]   liveness tokens: robust mutexes, each
 *                                        held by a live thread (owner.h)
 *   stripes  struct cr_stripe[n_stripes] robust process-shared mutexes for inserts
 *   changes  uint64_t[n_change_words]    dirty-bucket bitmap (change feed), then its
 *            uint64_t[summary words]     summary: one bit per bitmap word (changes.h)
 *   states   uint64_t[n_entries]         lifecycle word of each position (CR_ST_*)
 *   entries  n_entries * entry_stride    side entry of each position (struct cr_entry
 *                                        + key bytes past 16); n_entries = 2 * n_buckets
 *
 * Change anything here and bump CR_LAYOUT_VERSION: cr_layout_signature()
 * also folds in every size, so builds that disagree refuse each other's
 * segments with -EPROTO.
 */
#ifndef CONNREG_LAYOUT_H
#define CONNREG_LAYOUT_H

#include <ck_ec.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define CR_MAGIC		0x314745524e4e4f43ull	/* "CONNREG1" little-endian */
#define CR_LAYOUT_VERSION	4u
#define CR_READY		0x59444552u		/* "REDY": creator finished */
#define CR_CACHELINE		64u
#define CR_REGION_ALIGN		4096u
#define CR_SECRET_SIZE		192u			/* XXH3 secret, >= XXH3_SECRET_SIZE_MIN */

#define CR_IDX_NONE		UINT32_MAX

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to be shared");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free to be shared");

/* ------------------------------------------------------------------ */
/* Index: buckets of two records, one cache line each.                 */
/*                                                                     */
/* A record is a position (bucket * 2 + i) that holds one id: its meta */
/* word, its transport and the first 16 bytes of its key all lie in    */
/* the bucket's line, so a lookup of an id of up to 16 bytes reads one */
/* line. Longer ids keep the rest of the key in the position's side    */
/* entry (struct cr_entry), read only after the first 16 bytes match.  */
/*                                                                     */
/* Meta word (uint32_t):                                               */
/*   0                      EMPTY: never used; ends every probe        */
/*   LIVE_BIT | lenc << 24 | tag                                       */
/*                          LIVE: lenc = key length (1..16), or 17 for */
/*                          a longer id; tag = 24 bits of the hash     */
/*   2 + s                  TOMB left by reader slot s's removal; not  */
/*                          reused while s's ledger names it           */
/*   1                      TOMB of no slot                            */
/* A record never returns to EMPTY, so an EMPTY one ends a probe. The  */
/* key bytes of a record do not change while it can be seen LIVE by   */
/* anyone (its position is reused only a grace period after the tomb); */
/* its transport is one atomic word, replaced in place by updates.     */
/* ------------------------------------------------------------------ */
#define CR_BUCKET_SLOTS		2u
#define CR_KEY_INLINE		16u
#define CR_META_EMPTY		0u
#define CR_META_TOMB		1u
#define CR_META_LIVE_BIT	0x80000000u
#define CR_META_LENC_SHIFT	24
#define CR_META_LENC_LONG	17u
#define CR_META_TAG_MASK	0x00ffffffu

/* ctl word: the probe bound (low 16 bits; the rest is reserved, zero). */
#define CR_BOUND_MASK		0xffffu
#define CR_BOUND_UNBOUNDED	0xffffu		/* probe until EMPTY or wrap */

struct cr_rec {
	/* The id's transport: set before the publishing store, then replaced in place. */
	_Atomic uint64_t transport;
	/*
	 * The first min(len, 16) bytes of the id, zero past them (layout 4), so
	 * a probe compares two words whatever the length; immutable while LIVE.
	 */
	uint8_t key[CR_KEY_INLINE];
};

struct cr_bucket {
	/* One per record (see above); the publishing store, the tomb CAS. */
	_Atomic uint32_t meta[CR_BUCKET_SLOTS];
	/*
	 * Buckets past the home bucket that an id homed here may sit in.
	 * Only raised, only by an inserter holding the home's stripe lock.
	 */
	_Atomic uint32_t ctl;
	/*
	 * Event count of changes to ids homed here: bumped after every
	 * change; connreg_wait_transport sleeps on it (futex, shared).
	 */
	struct ck_ec32 wake;
	struct cr_rec rec[CR_BUCKET_SLOTS];
};
_Static_assert(sizeof(struct ck_ec32) == 4, "ck_ec32 is one 32-bit word");
_Static_assert(sizeof(struct cr_rec) == 24, "a record is 24 bytes");
_Static_assert(offsetof(struct cr_bucket, rec) == 16, "records after the four words");
_Static_assert(sizeof(struct cr_bucket) == CR_CACHELINE, "bucket is one cache line");

/* Length code of a key in a LIVE meta word. */
static inline uint32_t cr_lenc(uint32_t len)
{
	return len <= CR_KEY_INLINE ? len : CR_META_LENC_LONG;
}
static inline uint32_t cr_meta_live(uint32_t lenc, uint32_t tag)
{
	return CR_META_LIVE_BIT | lenc << CR_META_LENC_SHIFT | (tag & CR_META_TAG_MASK);
}
static inline int cr_meta_is_live(uint32_t m)
{
	return (m & CR_META_LIVE_BIT) != 0;
}
static inline uint32_t cr_meta_lenc(uint32_t m)
{
	return (m >> CR_META_LENC_SHIFT) & 0x3fu;
}
/* The tomb of a removal by reader slot rslot (< CR_MAX_RSLOTS). */
static inline uint32_t cr_meta_tomb_by(uint32_t rslot)
{
	return 2u + rslot;
}
static inline int cr_meta_is_tomb(uint32_t m)
{
	return m != CR_META_EMPTY && !cr_meta_is_live(m);
}
/* Reader slot that made tomb m, or UINT32_MAX for the plain TOMB. */
static inline uint32_t cr_meta_tomb_maker(uint32_t m)
{
	return m >= 2 ? m - 2 : UINT32_MAX;
}

/* ------------------------------------------------------------------ */
/* Position state words: kind:2 | gen:14 | payload:48                  */
/*   FREE     payload 0          may be claimed by an inserter         */
/*   OWNED    payload rslot idx  private to that thread: being filled, */
/*                               published, or retired                 */
/*   LIVE     payload 0          published (meta LIVE, or tombed and   */
/*                               about to be retired)                  */
/*   RETIRED  payload epoch      tombed at that epoch; reusable once   */
/*                               the safe epoch has passed it          */
/* gen counts claims so a stale compare-and-swap cannot succeed on a   */
/* recycled position (ABA). Lookups never read these words.            */
/* ------------------------------------------------------------------ */
#define CR_ST_FREE		0ull
#define CR_ST_OWNED		1ull
#define CR_ST_LIVE		2ull
#define CR_ST_RETIRED		3ull
#define CR_ST_KIND_SHIFT	62
#define CR_ST_GEN_SHIFT		48
#define CR_ST_GEN_MASK		0x3fffull
#define CR_ST_PAYLOAD_MASK	((1ull << 48) - 1)

static inline uint64_t cr_st_make(uint64_t kind, uint64_t gen, uint64_t payload)
{
	return (kind << CR_ST_KIND_SHIFT) | ((gen & CR_ST_GEN_MASK) << CR_ST_GEN_SHIFT) |
	       (payload & CR_ST_PAYLOAD_MASK);
}
static inline uint64_t cr_st_kind(uint64_t st)
{
	return st >> CR_ST_KIND_SHIFT;
}
static inline uint64_t cr_st_gen(uint64_t st)
{
	return (st >> CR_ST_GEN_SHIFT) & CR_ST_GEN_MASK;
}
static inline uint64_t cr_st_payload(uint64_t st)
{
	return st & CR_ST_PAYLOAD_MASK;
}

/*
 * A position's side entry: what a lookup of a short id never needs.
 * Written by the position's owner before publication (key_len, tail) or
 * under the id's stripe lock (pid identity); immutable key while LIVE.
 */
struct cr_entry {
	uint32_t key_len;
	uint32_t reserved;
	/*
	 * CONNREG_TRANSPORT_IS_PID: pid_start << 32 | pid of the transport,
	 * 0 while unknown or being changed (a writer zeroes it first, so a
	 * writer that dies midway leaves "unknown", never a wrong pair).
	 */
	_Atomic uint64_t pid_id;
	/*
	 * CONNREG_TRANSPORT_IS_PID: the registering process's pid namespace
	 * (inode of /proc/self/ns/pid), in which the pid means something; 0
	 * when unknown. Reap never judges a pid from another namespace.
	 */
	_Atomic uint32_t pid_ns;
	uint32_t reserved2;
	uint8_t tail[];		/* key bytes 16 .. key_max - 1 (key_max > 16 only) */
};
_Static_assert(sizeof(struct cr_entry) == 24, "side entry header is 24 bytes");

/* ------------------------------------------------------------------ */
/* Reader slots: one cache line per attached thread.                   */
/* ------------------------------------------------------------------ */
#define CR_RSLOT_LIGHT		0x1u	/* reader skips the fence (membarrier) */

struct cr_rslot {
	/* 0: outside any read-side section; else the global epoch at entry. */
	_Atomic uint64_t epoch;
	/*
	 * 0: free; else CR_OWNER_CLAIMED | the index of the liveness token
	 * its thread holds. Whether that thread lives is judged by the token
	 * (owner.h), never by a pid.
	 */
	_Atomic uint64_t owner;
	_Atomic uint32_t flags;
	uint32_t tid;		/* informational */
	/* Position this thread is removing; CR_IDX_NONE otherwise (recovery). */
	_Atomic uint32_t w_old;
	/* 1 + home bucket of a change not yet announced to waiters; 0 otherwise. */
	_Atomic uint32_t notify;
	/*
	 * This slot's share of the live count, and the operation that may
	 * change it (see CR_LEDGER_*). Written only by the slot's owner, or
	 * by its recoverer once the owner is dead; inherited by the next
	 * thread that claims the slot. The live count is the sum over slots.
	 */
	_Atomic uint64_t ledger;
	uint64_t reserved;	/* zero */
	uint32_t pid;		/* informational: the owner's pid, in its own namespace */
	uint8_t pad[CR_CACHELINE - 52];
};
#define CR_OWNER_CLAIMED	(1ull << 62)

static inline uint64_t cr_owner_ref(uint32_t token)
{
	return CR_OWNER_CLAIMED | token;
}
static inline uint32_t cr_owner_token(uint64_t owner)
{
	return (uint32_t)owner;
}
_Static_assert(offsetof(struct cr_rslot, ledger) % 8 == 0, "ledger is 8-aligned");
_Static_assert(sizeof(struct cr_rslot) == CR_CACHELINE, "reader slot is one cache line");

/*
 * Ledger word: low 32 bits: net count of ids this slot inserted minus ids
 * it removed, modulo 2^32 (a slot may remove more than it inserted, and
 * slots are inherited, so one slot's share can run past any int32; the sum
 * over all slots is the live count, < 2^32, and is exact mod 2^32);
 * high 32 bits: pending operation:
 *   0                      none
 *   1 + position           inserting into that position (the +1 is
 *                          already counted)
 *   CR_PEND_DEL | position removing the id at that position (bucket * 2
 *                          + record; the -1 is already counted)
 * The delta and the pending note change in one store, so a recoverer
 * only has to decide whether the pending CAS landed (count.c).
 */
#define CR_PEND_NONE		0u
#define CR_PEND_DEL		0x80000000u

static inline uint64_t cr_ledger_make(uint32_t delta, uint32_t pend)
{
	return ((uint64_t)pend << 32) | delta;
}
static inline uint32_t cr_ledger_delta(uint64_t l)
{
	return (uint32_t)l;
}
static inline uint32_t cr_ledger_pend(uint64_t l)
{
	return (uint32_t)(l >> 32);
}

/*
 * Liveness token: a robust, process-shared mutex held by one live thread
 * for as long as it uses one handle (one reader slot). The kernel marks it
 * owner-dead when that thread exits, when its process dies, and when its
 * process execs, in any pid namespace (owner.h). Its own line: a checker's
 * trylock must not steal a reader's slot line.
 */
struct cr_token {
	pthread_mutex_t mu;
	/*
	 * The reader slot bound to this token (CR_IDX_NONE: none), stored by
	 * the holder before it claims the slot: whoever takes the token after
	 * the holder died finds the slot to recover. Written only under mu.
	 */
	_Atomic uint32_t slot;
	uint8_t pad[CR_CACHELINE - (sizeof(pthread_mutex_t) + 4) % CR_CACHELINE];
};
_Static_assert(sizeof(struct cr_token) % CR_CACHELINE == 0, "token is whole cache lines");
/* Tokens per reader slot: threads whose handle another thread closed keep theirs a while. */
#define CR_TOKENS_PER_RSLOT	2u

struct cr_stripe {
	pthread_mutex_t mu;	/* PTHREAD_PROCESS_SHARED | PTHREAD_MUTEX_ROBUST */
	uint8_t pad[CR_CACHELINE - sizeof(pthread_mutex_t) % CR_CACHELINE];
};
_Static_assert(sizeof(struct cr_stripe) % CR_CACHELINE == 0, "stripe is whole cache lines");

/* ------------------------------------------------------------------ */
/* Header.                                                             */
/* ------------------------------------------------------------------ */
struct cr_params {
	uint64_t capacity;
	uint32_t key_max;
	uint32_t n_rslots;
};

/* Everything derived from cr_params; recomputed and compared on open. */
struct cr_geometry {
	uint64_t segment_size;
	uint64_t off_index, off_rslots, off_tokens, off_stripes, off_states, off_entries;
	uint64_t off_changes;
	uint32_t n_buckets;
	uint32_t n_entries;
	uint32_t n_stripes;
	uint32_t entry_stride;
	uint32_t n_tokens;
	uint32_t n_change_words;	/* dirty-bucket bitmap words; the summary follows them */
};

struct cr_header {
	/* Lines 0-2: identity and immutable parameters. */
	uint64_t magic;
	uint32_t layout_version;
	uint32_t layout_sig;
	_Atomic uint32_t ready;		/* CR_READY, stored last by the creator */
	uint32_t flags;			/* CONNREG_TRANSPORT_IS_PID */
	struct cr_params params;
	struct cr_geometry geo;
	uint8_t pad0[3 * CR_CACHELINE - 24 - sizeof(struct cr_params) - sizeof(struct cr_geometry)];

	/* Lines 3-5: per-segment hash secret, random at create. */
	uint8_t secret[CR_SECRET_SIZE];

	/* Read by every lookup; written once per grace period. */
	alignas(CR_CACHELINE) _Atomic uint64_t epoch;
	uint8_t pad1[CR_CACHELINE - 8];

	/* Entries retired at an epoch below this may be reused. */
	alignas(CR_CACHELINE) _Atomic uint64_t safe_epoch;
	/* Sticky: some thread ever read with CR_RSLOT_LIGHT. */
	_Atomic uint32_t light_readers;
	uint8_t pad2[CR_CACHELINE - 12];

	/*
	 * Admission hint: an upper bound on live ids. Inserts reserve one
	 * unit here (fast path) under their stripe lock; removals do not give
	 * it back. When it reaches capacity an insert takes every stripe
	 * lock, sums the reader-slot ledgers (the exact count) and resets it.
	 */
	alignas(CR_CACHELINE) _Atomic uint64_t live_hint;
	uint8_t pad3[CR_CACHELINE - 8];

	/* Reader slots [0, rslot_hwm) have been claimed at least once. */
	alignas(CR_CACHELINE) _Atomic uint32_t rslot_hwm;
	uint8_t pad4[CR_CACHELINE - 4];

	/*
	 * Serializes inserters that found live_hint at capacity and sum the
	 * ledgers (robust, process-shared; never taken by readers or updates).
	 */
	alignas(CR_CACHELINE) struct cr_stripe count_mu;

	/*
	 * Operator counters (connreg_stats), bumped only on slow paths; one
	 * line of their own so no lookup ever shares it.
	 */
	alignas(CR_CACHELINE) _Atomic uint64_t ctr_writer_eagain;
	_Atomic uint64_t ctr_slots_recovered;
	_Atomic uint64_t ctr_grace_periods;
	uint8_t pad5[CR_CACHELINE - 24];
};
_Static_assert(offsetof(struct cr_header, secret) == 3 * CR_CACHELINE, "secret after line 2");
_Static_assert(offsetof(struct cr_header, epoch) % CR_CACHELINE == 0, "epoch on its own line");
_Static_assert(sizeof(struct cr_header) % CR_CACHELINE == 0, "header is whole cache lines");

/* Defaults and limits. */
#define CR_DEFAULT_KEY_MAX	64u
#define CR_DEFAULT_MODE		0600u
#define CR_DEFAULT_RSLOTS	512u
#define CR_MAX_RSLOTS		65536u
#define CR_STRIPES		128u

/* Fold every size the layout depends on into one word. */
static inline uint32_t cr_layout_signature(void)
{
	uint64_t s = CR_LAYOUT_VERSION;
	const uint64_t parts[] = {
		sizeof(struct cr_header), sizeof(struct cr_bucket), sizeof(struct cr_rslot),
		sizeof(struct cr_stripe), sizeof(pthread_mutex_t), sizeof(struct cr_entry),
		sizeof(struct cr_token), sizeof(struct cr_rec), CR_KEY_INLINE, CR_TOKENS_PER_RSLOT,
		offsetof(struct cr_header, secret),
		offsetof(struct cr_header, epoch), offsetof(struct cr_header, safe_epoch),
		offsetof(struct cr_header, live_hint), offsetof(struct cr_header, rslot_hwm),
		offsetof(struct cr_header, ctr_writer_eagain),
		CR_BUCKET_SLOTS, CR_CACHELINE, CR_SECRET_SIZE,
	};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		s = (s ^ parts[i]) * 0x100000001b3ull;
	return (uint32_t)(s ^ (s >> 32));
}

/* Bump an operator counter (slow paths only). */
static inline void cr_counter_bump(_Atomic uint64_t *ctr)
{
	/* Relaxed: a statistic; it orders nothing. */
	atomic_fetch_add_explicit(ctr, 1, memory_order_relaxed);
}

/*
 * Compute the geometry for params (validated by the caller). Returns 0, or
 * -EINVAL when the segment would not be addressable.
 */
int cr_geometry_compute(const struct cr_params *p, uint32_t flags, struct cr_geometry *g);

#endif /* CONNREG_LAYOUT_H */
