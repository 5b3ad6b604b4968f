/*
 * contender_seqlock.c: the shm_rwlock table with lock-free readers under a
 * sequence counter: the reference for what one lookup in one cache line
 * costs when readers write nothing.
 *
 * The same segment and table as shm_rwlock (shm_table.h). Its header holds
 * a global sequence counter and one process-shared mutex that every writer
 * takes:
 *  - insert and delete (they move keys between slots): seq goes odd, the
 *    slots change, seq goes even again (the Linux kernel's
 *    write_seqcount_begin/end);
 *  - update of a live key's value: one atomic 64-bit store into its slot, no
 *    seq bump (a reader sees the old value or the new one, never a mix). It
 *    still takes the mutex, so that it cannot store into a slot a
 *    concurrent delete is moving.
 * A reader takes no lock and stores nothing: it reads seq (retrying while it
 * is odd), probes, reads seq again and starts over if it moved
 * (read_seqcount_begin/read_seqcount_retry). Its probe's loads are relaxed
 * atomics (shm_table.h, racy mode): they may race the writer, and the
 * second seq read says whether to keep what they returned.
 *
 * Ordering, in C11 terms (Boehm, "Can seqlocks get along with programming
 * language memory models?", 2012). SQ-n names the pairs (local to this
 * file, unrelated to design.md's ORD-n); (w) marks the writer's side, (r)
 * the reader's:
 *  SQ-1  write_end's release store of the even seq  ->  read_begin's acquire
 *        load that returns it: a reader starting there sees every slot
 *        store of that write section and of the ones before it.
 *  SQ-2  write_begin's release fence after the odd seq store  ->  the
 *        reader's acquire fence before its second seq load: a reader whose
 *        probe read any slot store of a write section then reads seq >= the
 *        odd value, i.e. not the one it started with, and retries.
 *  SQ-3  an update's release store of a value  ->  the reader's acquire
 *        load of it: with one writer, what a reader has seen only moves
 *        forward in that writer's order.
 * Readers, writer and parent are processes that map the segment by name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "loops.h"
#include "shm_table.h"

struct sq_header {
	/* Line 0, read by every lookup: mask (set once), seq; count is writer-only. */
	struct shm_meta meta;
	_Atomic uint64_t seq;	/* odd while an insert or delete changes slots */
	/*
	 * Line 1: written by every write, updates included; kept off line 0 so
	 * that an update leaves the readers' copy of seq and mask alone.
	 */
	pthread_mutex_t lock __attribute__((aligned(64)));
} __attribute__((aligned(64)));

static inline struct sq_header *sq_hdr(const struct shm_table *t)
{
	return t->base;
}

/* ---- write side: the caller holds the mutex ---- */

static inline void sq_write_begin(struct sq_header *h)
{
	/* Relaxed: only the mutex holder stores seq, and it stored this value. */
	uint64_t s = atomic_load_explicit(&h->seq, memory_order_relaxed);

	/* Relaxed: ordered before the slot stores by the fence below. */
	atomic_store_explicit(&h->seq, s + 1, memory_order_relaxed);
	/*
	 * SQ-2(w): orders the odd seq store before every slot store of this
	 * section; pairs with sq_read_retry's acquire fence (the kernel's
	 * smp_wmb in write_seqcount_begin).
	 */
	atomic_thread_fence(memory_order_release);
}

static inline void sq_write_end(struct sq_header *h)
{
	/* Relaxed: only the mutex holder stores seq, and it stored this value. */
	uint64_t s = atomic_load_explicit(&h->seq, memory_order_relaxed);

	/*
	 * SQ-1(w): the slot stores of this section happen before the even
	 * value; pairs with sq_read_begin's acquire load (the kernel's smp_wmb
	 * in write_seqcount_end).
	 */
	atomic_store_explicit(&h->seq, s + 1, memory_order_release);
}

/* ---- read side: no lock, no store ---- */

static inline uint64_t sq_read_begin(struct sq_header *h)
{
	uint64_t s;

	/*
	 * SQ-1(r): pairs with sq_write_end's release store: the probe that
	 * follows sees the slots as of this even value (read_seqcount_begin).
	 */
	while ((s = atomic_load_explicit(&h->seq, memory_order_acquire)) & 1)
		cpu_relax();
	return s;
}

static inline bool sq_read_retry(struct sq_header *h, uint64_t s)
{
	/*
	 * SQ-2(r): orders the probe's slot loads before the seq load below;
	 * pairs with sq_write_begin's release fence (the smp_rmb in
	 * read_seqcount_retry).
	 */
	atomic_thread_fence(memory_order_acquire);
	/* Relaxed: the fence above orders it after the probe. */
	return atomic_load_explicit(&h->seq, memory_order_relaxed) != s;
}

/* One read section: probe for id, and its value when found. */
SHM_INLINE bool sq_get(struct shm_table *t, const uint8_t *id, uint64_t *val)
{
	struct sq_header *hdr = sq_hdr(t);
	uint64_t k[2], h = shm_hash(id), i, v = 0, s;
	bool found;

	memcpy(k, id, ID_LEN);
	do {
		s = sq_read_begin(hdr);
		found = shm_find(t, h, k, &i, true);
		/* SQ-3(r): pairs with sq_update's release store. */
		if (found)
			v = __atomic_load_n(&t->slot[i].value, __ATOMIC_ACQUIRE);
	} while (sq_read_retry(hdr, s));
	if (found)
		*val = v;
	return found;
}

static bool sq_lookup(void *h, const uint8_t *id, uint64_t *val)
{
	return sq_get(h, id, val);
}

/*
 * A batch is 64 read sections, one per id: one section around the whole
 * batch would start all 64 over whenever a write landed in it.
 */
static unsigned sq_bulk(void *h, const uint8_t *ids, unsigned n, uint64_t *vals)
{
	unsigned hits = 0;

	for (unsigned j = 0; j < n; j++)
		hits += sq_get(h, ids + j * ID_LEN, &vals[j]);
	return hits;
}

static int sq_update(void *h, const uint8_t *id, uint64_t val)
{
	struct shm_table *t = h;
	uint64_t k[2], i;
	int rc = 0;

	memcpy(k, id, ID_LEN);
	pthread_mutex_lock(&sq_hdr(t)->lock);
	if (shm_find(t, shm_hash(id), k, &i, false))
		/* SQ-3(w): no seq bump; pairs with sq_get's acquire load. */
		__atomic_store_n(&t->slot[i].value, val, __ATOMIC_RELEASE);
	else
		rc = -ENOENT;
	pthread_mutex_unlock(&sq_hdr(t)->lock);
	return rc;
}

static int sq_insert(void *h, const uint8_t *id, uint64_t val)
{
	struct shm_table *t = h;
	int rc;

	pthread_mutex_lock(&sq_hdr(t)->lock);
	sq_write_begin(sq_hdr(t));
	rc = shm_put(t, id, val, true);
	sq_write_end(sq_hdr(t));
	pthread_mutex_unlock(&sq_hdr(t)->lock);
	return rc;
}

static int sq_remove(void *h, const uint8_t *id)
{
	struct shm_table *t = h;

	pthread_mutex_lock(&sq_hdr(t)->lock);
	sq_write_begin(sq_hdr(t));
	shm_remove(t, id, true);
	sq_write_end(sq_hdr(t));
	pthread_mutex_unlock(&sq_hdr(t)->lock);
	return 0;
}

static const struct bench_ops sq_ops = {
	.lookup = sq_lookup,
	.bulk = sq_bulk,
	.update = sq_update,
	.insert = sq_insert,
	.remove = sq_remove,
};

static int sq_create(struct instance *in)
{
	struct shm_bench *b;
	pthread_mutexattr_t attr;
	int rc = shm_bench_create(in, "seqlock", sizeof(struct sq_header),
				  offsetof(struct sq_header, meta), &b);

	if (rc)
		return rc;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(&sq_hdr(&b->t)->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	/* Relaxed: no reader has mapped the segment yet (workers fork later). */
	atomic_store_explicit(&sq_hdr(&b->t)->seq, 0, memory_order_relaxed);
	in->priv = b;
	return 0;
}

static int sq_run(struct instance *in, void *h, struct worker *w)
{
	(void)in;
	return BENCH_RUN(w, h, &sq_ops);
}

const struct contender contender_seqlock = {
	.name = "seqlock",
	.what = "the shm_rwlock table, lock-free readers under one sequence counter (retry if it "
		"moved), writers under one process-shared mutex; processes",
	.processes = true,
	.bulk_how = "64 lookups, one read section each",
	.write_how = "mutex; update: one atomic store, no seq bump; insert/delete: seq odd, "
		     "change, seq even",
	.create = sq_create,
	.destroy = shm_bench_destroy,
	.attach = shm_bench_attach,
	.detach = shm_bench_detach,
	.run = sq_run,
};
