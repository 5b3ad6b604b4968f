/*
 * handle.h: the process-local handle (struct connreg_handle) and per-thread
 * records. Nothing here is shared between processes: these hold the
 * pointers this process derived from the segment's offsets.
 */
#ifndef CONNREG_HANDLE_H
#define CONNREG_HANDLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "connreg.h"
#include "layout.h"

struct connreg_handle;

/*
 * XXH3's keys for ids of up to 16 bytes, folded once from the segment's
 * secret at open (cr_hash_keys_init): XXH3_64bits_withSecret reads and
 * XORs two secret words per key on every call.
 */
struct cr_hash_keys {
	uint64_t k1to3;		/* ids of 1..3 bytes */
	uint64_t k4to8;		/* 4..8 */
	uint64_t k9to16[2];	/* 9..16: the first and the last 8 bytes */
};

/*
 * A thread's claim on a reader slot through one handle. Owned by that
 * thread: it holds a liveness token (owner.h), and only it can let go of
 * it, so only it frees the record (thread.c).
 */
struct cr_thread {
	struct connreg_handle *reg;
	struct cr_rslot *slot;
	uint32_t slot_idx;
	uint32_t token;			/* the liveness token this thread holds for it */
	uint64_t handle_gen;		/* reg->handle_gen when claimed */
	bool orphaned;			/* handle closed by another thread (under threads_mu) */
	struct cr_thread *next;		/* reg->threads list, under reg->threads_mu */
	struct cr_thread *tnext;	/* the owning thread's list of records */
};

struct connreg_handle {
	/* Fields used by every lookup, first. */
	struct cr_bucket *index;
	uint8_t *entries;
	const uint8_t *secret;
	struct cr_header *hdr;
	struct cr_hash_keys hkeys;	/* from secret (index.h) */
	uint32_t n_buckets;
	uint32_t entry_stride;
	uint32_t n_entries;
	uint32_t key_max;
	uint32_t fast_len_max;		/* ids the fast lookup takes: min(key_max, 16); 0 if !light */
	bool light;			/* readers skip the fence: membarrier registered */
	uint64_t handle_gen;		/* unique per handle in this process */
	uint64_t fork_gen;		/* cr_fork_gen when opened */

	/* Writers and maintenance. */
	_Atomic uint64_t *states;
	struct cr_rslot *rslots;
	struct cr_token *tokens;
	_Atomic uint64_t *changes;	/* dirty-bucket bitmap, then its summary (changes.h) */
	uint32_t n_change_words;
	struct cr_stripe *stripes;
	uint32_t n_rslots;
	uint32_t n_tokens;
	uint32_t n_stripes;
	uint32_t flags;			/* CONNREG_TRANSPORT_IS_PID */
	uint64_t capacity;
	uint8_t *base;
	uint64_t size;

	/*
	 * Lifetime: one reference for the user (dropped by connreg_close)
	 * and one per thread record, whose thread holds a liveness lock in
	 * the mapping: the segment stays mapped until the last holder lets
	 * go, since unmapping a held robust mutex corrupts glibc's list.
	 */
	_Atomic uint32_t refs;
	pthread_mutex_t threads_mu;
	struct cr_thread *threads;	/* records not yet orphaned */
};

/* Drop a reference; the last one unmaps and frees the handle (segment.c). */
void cr_handle_put(struct connreg_handle *reg);

static inline struct cr_entry *cr_entry_at(const struct connreg_handle *reg, uint32_t idx)
{
	return (struct cr_entry *)(reg->entries + (uint64_t)idx * reg->entry_stride);
}

#endif /* CONNREG_HANDLE_H */
