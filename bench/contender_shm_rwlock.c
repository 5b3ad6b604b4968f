/*
 * contender_shm_rwlock.c: the table a user writes by hand in an afternoon.
 *
 * One POSIX shm segment: a header with one process-shared pthread rwlock
 * (default attributes otherwise), then a power-of-two array of 32-byte
 * slots {key[16], value, used}, linear probing, at most half full, deletion
 * by backward shift (so churn leaves no tombstones). Hash: XXH3-64 of the
 * id, unkeyed. Every lookup takes the read lock; every write the write lock.
 * Readers and writer are processes that shm_open + mmap it by name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "loops.h"

struct rwt_header {
	pthread_rwlock_t lock;
	uint64_t mask;		/* slots - 1 */
	uint64_t count;
} __attribute__((aligned(64)));

struct rwt_slot {
	uint8_t key[ID_LEN];
	uint64_t value;
	uint64_t used;
};

struct rwt {
	struct rwt_header *hdr;
	struct rwt_slot *slot;
	size_t bytes;
};

struct rwt_bench {
	char name[96];
	struct rwt t;		/* the parent's mapping */
};

static inline uint64_t rwt_hash(const uint8_t *id)
{
	return XXH3_64bits(id, ID_LEN);
}

/* Slot holding id, or the empty slot that ends its probe. */
static inline uint64_t rwt_find(const struct rwt *t, const uint8_t *id)
{
	uint64_t mask = t->hdr->mask, i = rwt_hash(id) & mask;

	while (t->slot[i].used && memcmp(t->slot[i].key, id, ID_LEN) != 0)
		i = (i + 1) & mask;
	return i;
}

static bool rwt_lookup(void *h, const uint8_t *id, uint64_t *val)
{
	struct rwt *t = h;
	uint64_t i;
	bool found;

	pthread_rwlock_rdlock(&t->hdr->lock);
	i = rwt_find(t, id);
	found = t->slot[i].used;
	if (found)
		*val = t->slot[i].value;
	pthread_rwlock_unlock(&t->hdr->lock);
	return found;
}

/* A batch under one read lock. */
static unsigned rwt_bulk(void *h, const uint8_t *ids, unsigned n, uint64_t *vals)
{
	struct rwt *t = h;
	unsigned hits = 0;

	pthread_rwlock_rdlock(&t->hdr->lock);
	for (unsigned k = 0; k < n; k++) {
		uint64_t i = rwt_find(t, ids + k * ID_LEN);

		if (t->slot[i].used) {
			vals[k] = t->slot[i].value;
			hits++;
		}
	}
	pthread_rwlock_unlock(&t->hdr->lock);
	return hits;
}

/* Insert or update; caller holds the write lock. */
static int rwt_put_locked(struct rwt *t, const uint8_t *id, uint64_t val)
{
	uint64_t i = rwt_find(t, id);

	if (!t->slot[i].used) {
		if (t->hdr->count + 1 > (t->hdr->mask + 1) / 2)
			return -ENOSPC;
		memcpy(t->slot[i].key, id, ID_LEN);
		t->slot[i].used = 1;
		t->hdr->count++;
	}
	t->slot[i].value = val;
	return 0;
}

static int rwt_update(void *h, const uint8_t *id, uint64_t val)
{
	struct rwt *t = h;
	int rc = 0;
	uint64_t i;

	pthread_rwlock_wrlock(&t->hdr->lock);
	i = rwt_find(t, id);
	if (t->slot[i].used)
		t->slot[i].value = val;
	else
		rc = -ENOENT;
	pthread_rwlock_unlock(&t->hdr->lock);
	return rc;
}

static int rwt_insert(void *h, const uint8_t *id, uint64_t val)
{
	struct rwt *t = h;
	int rc;

	pthread_rwlock_wrlock(&t->hdr->lock);
	rc = rwt_put_locked(t, id, val);
	pthread_rwlock_unlock(&t->hdr->lock);
	return rc;
}

/* Backward-shift deletion: pull later members of the cluster into the hole. */
static int rwt_remove(void *h, const uint8_t *id)
{
	struct rwt *t = h;
	uint64_t mask, hole, j;

	pthread_rwlock_wrlock(&t->hdr->lock);
	mask = t->hdr->mask;
	hole = rwt_find(t, id);
	if (!t->slot[hole].used) {
		pthread_rwlock_unlock(&t->hdr->lock);
		return 0;
	}
	for (j = (hole + 1) & mask; t->slot[j].used; j = (j + 1) & mask) {
		uint64_t home = rwt_hash(t->slot[j].key) & mask;

		/* Move j into the hole unless its home lies cyclically in (hole, j]. */
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			t->slot[hole] = t->slot[j];
			hole = j;
		}
	}
	t->slot[hole].used = 0;
	t->hdr->count--;
	pthread_rwlock_unlock(&t->hdr->lock);
	return 0;
}

static const struct bench_ops rwt_ops = {
	.lookup = rwt_lookup,
	.bulk = rwt_bulk,
	.update = rwt_update,
	.insert = rwt_insert,
	.remove = rwt_remove,
};

static int rwt_map(const char *name, bool create, uint64_t slots, struct rwt *t)
{
	size_t bytes = sizeof(struct rwt_header) + slots * sizeof(struct rwt_slot);
	int fd = shm_open(name, create ? O_RDWR | O_CREAT | O_EXCL : O_RDWR, 0600);
	void *p;

	if (fd < 0)
		return -errno;
	if (create && ftruncate(fd, (off_t)bytes) != 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	if (!create) {
		struct stat st;

		if (fstat(fd, &st) != 0) {
			int e = -errno;

			close(fd);
			return e;
		}
		bytes = (size_t)st.st_size;
	}
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -errno;
	t->hdr = p;
	t->slot = (struct rwt_slot *)(t->hdr + 1);
	t->bytes = bytes;
	return 0;
}

static int rwt_create(struct instance *in)
{
	struct rwt_bench *b = calloc(1, sizeof(*b));
	pthread_rwlockattr_t attr;
	uint64_t slots = 1024;
	int rc;

	if (!b)
		return -ENOMEM;
	while (slots < 2 * in->n)
		slots <<= 1;
	snprintf(b->name, sizeof(b->name), "/connreg-bench-%s", in->tag);
	shm_unlink(b->name);
	rc = rwt_map(b->name, true, slots, &b->t);
	if (rc) {
		fprintf(stderr, "bench: shm_rwlock: %s: %s\n", b->name, strerror(-rc));
		free(b);
		return rc;
	}
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_rwlock_init(&b->t.hdr->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	b->t.hdr->mask = slots - 1;
	for (uint64_t i = 0; i < in->n; i++)
		rwt_put_locked(&b->t, key_in(in->ks, POOL_HIT, i), key_transport(i));
	in->priv = b;
	return 0;
}

static void rwt_destroy(struct instance *in)
{
	struct rwt_bench *b = in->priv;

	if (!b)
		return;
	munmap(b->t.hdr, b->t.bytes);
	shm_unlink(b->name);
	free(b);
	in->priv = NULL;
}

static int rwt_attach(struct instance *in, void **h)
{
	struct rwt_bench *b = in->priv;
	struct rwt *t = malloc(sizeof(*t));
	int rc;

	if (!t)
		return -ENOMEM;
	rc = rwt_map(b->name, false, 0, t);
	if (rc) {
		free(t);
		return rc;
	}
	*h = t;
	return 0;
}

static void rwt_detach(struct instance *in, void *h)
{
	struct rwt *t = h;

	(void)in;
	munmap(t->hdr, t->bytes);
	free(t);
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
	.destroy = rwt_destroy,
	.attach = rwt_attach,
	.detach = rwt_detach,
	.run = rwt_run,
};
