/*
 * shm_table.h: the open-addressing table in POSIX shm that the shm_rwlock
 * and seqlock contenders share; they differ only in how readers and the
 * writer are kept apart (shm_table.c: the segment and its life cycle).
 *
 * Segment: the contender's header (its lock or counter, and a struct
 * shm_meta), then a power-of-two array of 32-byte slots {key, value, used},
 * linear probing, at most half full, deletion by backward shift (so churn
 * leaves no tombstones). Hash: XXH3-64 of the 16-byte id, unkeyed. Keys are
 * kept in the slot, so a hit reads one line.
 *
 * Every slot access goes through shm_ld/shm_st with a constant `racy`:
 *  - false (shm_rwlock; any writer reading what only it writes): plain
 *    accesses, what the hand-written table does;
 *  - true (seqlock readers, and seqlock writers storing what those readers
 *    read): relaxed atomics, so that a reader racing a writer has no data
 *    race; the seqlock's sequence counter says whether what it read is
 *    consistent (contender_seqlock.c).
 * The functions are always_inline, so each mode compiles to its own code.
 */
#ifndef BENCH_SHM_TABLE_H
#define BENCH_SHM_TABLE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "contender.h"
#include "keys.h"

#define SHM_INLINE static inline __attribute__((always_inline))

struct shm_meta {
	uint64_t mask;		/* slots - 1; set before any reader maps the segment */
	uint64_t count;		/* live keys; read and written by the writer only */
};

struct shm_slot {
	uint64_t key[2];	/* the id's 16 bytes */
	uint64_t value;
	uint64_t used;
};

/* One mapping of a segment. */
struct shm_table {
	void *base;		/* the contender's header */
	struct shm_meta *meta;
	struct shm_slot *slot;
	size_t bytes;
};

/* The parent's state: the segment's name and layout, and its own mapping. */
struct shm_bench {
	char name[96];
	size_t hdr_size;	/* slots start here */
	size_t meta_off;	/* where the header keeps its struct shm_meta */
	struct shm_table t;
};

SHM_INLINE uint64_t shm_ld(const uint64_t *p, bool racy)
{
	/* Relaxed: a seqlock reader's probe; the sequence counter orders it. */
	return racy ? __atomic_load_n(p, __ATOMIC_RELAXED) : *p;
}

SHM_INLINE void shm_st(uint64_t *p, uint64_t v, bool racy)
{
	if (racy)
		__atomic_store_n(p, v, __ATOMIC_RELAXED); /* Relaxed: inside a seqlock write section */
	else
		*p = v;
}

SHM_INLINE uint64_t shm_hash(const void *id)
{
	return XXH3_64bits(id, ID_LEN);
}

/*
 * Probe for key k (hash h). true: *at is its slot; false: *at is the empty
 * slot that ends the probe. A racy probe also gives up after visiting every
 * slot: a table read while it changes may show no empty slot at all, and
 * then the sequence counter has moved and the answer is thrown away.
 */
SHM_INLINE bool shm_find(const struct shm_table *t, uint64_t h, const uint64_t k[2],
			 uint64_t *at, bool racy)
{
	const struct shm_slot *s = t->slot;
	uint64_t mask = t->meta->mask, i = h & mask;

	for (uint64_t seen = 0; !racy || seen <= mask; seen++, i = (i + 1) & mask) {
		if (!shm_ld(&s[i].used, racy))
			break;
		if (shm_ld(&s[i].key[0], racy) == k[0] && shm_ld(&s[i].key[1], racy) == k[1]) {
			*at = i;
			return true;
		}
	}
	*at = i;
	return false;
}

/* Insert or overwrite; the caller excludes other writers. */
SHM_INLINE int shm_put(struct shm_table *t, const uint8_t *id, uint64_t val, bool racy)
{
	struct shm_slot *s = t->slot;
	uint64_t k[2], i;

	memcpy(k, id, ID_LEN);
	if (!shm_find(t, shm_hash(id), k, &i, false)) {
		if (t->meta->count + 1 > (t->meta->mask + 1) / 2)
			return -ENOSPC;
		shm_st(&s[i].key[0], k[0], racy);
		shm_st(&s[i].key[1], k[1], racy);
		shm_st(&s[i].used, 1, racy);
		t->meta->count++;
	}
	shm_st(&s[i].value, val, racy);
	return 0;
}

/* Backward-shift deletion: pull later members of the cluster into the hole. */
SHM_INLINE void shm_remove(struct shm_table *t, const uint8_t *id, bool racy)
{
	struct shm_slot *s = t->slot;
	uint64_t mask = t->meta->mask, k[2], hole, j;

	memcpy(k, id, ID_LEN);
	if (!shm_find(t, shm_hash(id), k, &hole, false))
		return;
	for (j = (hole + 1) & mask; s[j].used; j = (j + 1) & mask) {
		uint64_t home = shm_hash(s[j].key) & mask;

		/* Move j into the hole unless its home lies cyclically in (hole, j]. */
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			if (racy) {
				shm_st(&s[hole].key[0], s[j].key[0], true);
				shm_st(&s[hole].key[1], s[j].key[1], true);
				shm_st(&s[hole].value, s[j].value, true);
				shm_st(&s[hole].used, 1, true);
			} else {
				s[hole] = s[j];
			}
			hole = j;
		}
	}
	shm_st(&s[hole].used, 0, racy);
	t->meta->count--;
}

/*
 * Parent: create the segment (header of hdr_size bytes, its struct shm_meta
 * at meta_off; slots for at least 2 * in->n ids) and register ids [0, n).
 * The header is zeroed; the caller initialises its own part and sets
 * in->priv = *out. what names the contender in messages.
 */
int shm_bench_create(struct instance *in, const char *what, size_t hdr_size, size_t meta_off,
		     struct shm_bench **out);
/* Parent: unmap, unlink, free in->priv. */
void shm_bench_destroy(struct instance *in);
/* Worker: map the parent's segment by name; *h is a struct shm_table. */
int shm_bench_attach(struct instance *in, void **h);
void shm_bench_detach(struct instance *in, void *h);

#endif /* BENCH_SHM_TABLE_H */
