/*
 * handle.h: the process-local handle (struct connreg) and per-thread
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

struct connreg;

/* A thread's claim on a reader slot through one handle. */
struct cr_thread {
	struct connreg *reg;
	struct cr_rslot *slot;
	uint32_t slot_idx;
	uint32_t alloc_cursor;		/* where this thread's next entry scan starts */
	struct cr_thread *next;		/* reg->threads list, under reg->threads_mu */
};

struct connreg {
	/* Fields used by every lookup, first. */
	struct cr_bucket *index;
	uint8_t *entries;
	const uint8_t *secret;
	struct cr_header *hdr;
	uint32_t n_buckets;
	uint32_t entry_stride;
	uint32_t n_entries;
	uint32_t key_max;
	bool light;			/* readers skip the fence: membarrier registered */
	uint64_t handle_gen;		/* unique per handle in this process */
	uint64_t fork_gen;		/* cr_fork_gen when opened */

	/* Writers and maintenance. */
	_Atomic uint64_t *states;
	struct cr_rslot *rslots;
	struct cr_stripe *stripes;
	uint32_t n_rslots;
	uint32_t n_stripes;
	uint32_t flags;			/* CONNREG_TRANSPORT_IS_PID */
	uint64_t capacity;
	uint8_t *base;
	uint64_t size;

	pthread_key_t tls_key;
	pthread_mutex_t threads_mu;
	struct cr_thread *threads;
};

static inline struct cr_entry *cr_entry_at(const struct connreg *reg, uint32_t idx)
{
	return (struct cr_entry *)(reg->entries + (uint64_t)idx * reg->entry_stride);
}

#endif /* CONNREG_HANDLE_H */
