/*
 * contender_shm_rwlock.c: the table a user writes by hand in an afternoon.
 *
 * The open-addressing table of shm_table.h (POSIX shm, 32-byte slots
 * {key[16], value, used}, linear probing at most half full, backward-shift
 * delete, XXH3-64) under one process-shared pthread rwlock (default
 * attributes otherwise) in the segment's header. Every lookup takes the
 * read lock; every write the write lock. Readers and writer are processes
 * that shm_open + mmap it by name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stddef.h>

#include "loops.h"
#include "shm_table.h"

struct rwt_header {
	pthread_rwlock_t lock;
	struct shm_meta meta;
} __attribute__((aligned(64)));

static inline pthread_rwlock_t *rwt_lock(const struct shm_table *t)
{
	return &((struct rwt_header *)t->base)->lock;
}

static bool rwt_lookup(void *h, const uint8_t *id, uint64_t *val)
{
	struct shm_table *t = h;
	uint64_t k[2], i;
	bool found;

	memcpy(k, id, ID_LEN);
	pthread_rwlock_rdlock(rwt_lock(t));
	found = shm_find(t, shm_hash(id), k, &i, false);
	if (found)
		*val = t->slot[i].value;
	pthread_rwlock_unlock(rwt_lock(t));
	return found;
}

/* A batch under one read lock. */
static unsigned rwt_bulk(void *h, const uint8_t *ids, unsigned n, uint64_t *vals)
{
	struct shm_table *t = h;
	unsigned hits = 0;

	pthread_rwlock_rdlock(rwt_lock(t));
	for (unsigned j = 0; j < n; j++) {
		const uint8_t *id = ids + j * ID_LEN;
		uint64_t k[2], i;

		memcpy(k, id, ID_LEN);
		if (shm_find(t, shm_hash(id), k, &i, false)) {
			vals[j] = t->slot[i].value;
			hits++;
		}
	}
	pthread_rwlock_unlock(rwt_lock(t));
	return hits;
}

static int rwt_update(void *h, const uint8_t *id, uint64_t val)
{
	struct shm_table *t = h;
	uint64_t k[2], i;
	int rc = 0;

	memcpy(k, id, ID_LEN);
	pthread_rwlock_wrlock(rwt_lock(t));
	if (shm_find(t, shm_hash(id), k, &i, false))
		t->slot[i].value = val;
	else
		rc = -ENOENT;
	pthread_rwlock_unlock(rwt_lock(t));
	return rc;
}

static int rwt_insert(void *h, const uint8_t *id, uint64_t val)
{
	struct shm_table *t = h;
	int rc;

	pthread_rwlock_wrlock(rwt_lock(t));
	rc = shm_put(t, id, val, false);
	pthread_rwlock_unlock(rwt_lock(t));
	return rc;
}

static int rwt_remove(void *h, const uint8_t *id)
{
	struct shm_table *t = h;

	pthread_rwlock_wrlock(rwt_lock(t));
	shm_remove(t, id, false);
	pthread_rwlock_unlock(rwt_lock(t));
	return 0;
}

static const struct bench_ops rwt_ops = {
	.lookup = rwt_lookup,
	.bulk = rwt_bulk,
	.update = rwt_update,
	.insert = rwt_insert,
	.remove = rwt_remove,
};

static int rwt_create(struct instance *in)
{
	struct shm_bench *b;
	pthread_rwlockattr_t attr;
	int rc = shm_bench_create(in, "shm_rwlock", sizeof(struct rwt_header),
				  offsetof(struct rwt_header, meta), &b);

	if (rc)
		return rc;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_rwlock_init(rwt_lock(&b->t), &attr);
	pthread_rwlockattr_destroy(&attr);
	in->priv = b;
	return 0;
}

static int rwt_run(struct instance *in, void *h, struct worker *w)
{
	(void)in;
	return BENCH_RUN(w, h, &rwt_ops);
}

const struct contender contender_shm_rwlock = {
	.name = "shm_rwlock",
	.what = "open-addressing table in POSIX shm under one process-shared pthread rwlock; "
		"processes",
	.processes = true,
	.bulk_how = "64 lookups under one read lock",
	.write_how = "write lock, store in place / backward-shift delete",
	.create = rwt_create,
	.destroy = shm_bench_destroy,
	.attach = shm_bench_attach,
	.detach = shm_bench_detach,
	.run = rwt_run,
};
