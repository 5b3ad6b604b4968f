/*
 * shm_table.c: the shm_table segment's life cycle (shm_table.h): created
 * and populated by the parent, mapped by name by every worker process.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm_table.h"

static int shm_table_map(const struct shm_bench *b, bool create, uint64_t slots,
			 struct shm_table *t)
{
	size_t bytes = b->hdr_size + slots * sizeof(struct shm_slot);
	int fd = shm_open(b->name, create ? O_RDWR | O_CREAT | O_EXCL : O_RDWR, 0600);
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
	t->base = p;
	t->meta = (struct shm_meta *)((char *)p + b->meta_off);
	t->slot = (struct shm_slot *)((char *)p + b->hdr_size);
	t->bytes = bytes;
	return 0;
}

int shm_bench_create(struct instance *in, const char *what, size_t hdr_size, size_t meta_off,
		     struct shm_bench **out)
{
	struct shm_bench *b = calloc(1, sizeof(*b));
	uint64_t slots = 1024;
	int rc;

	if (!b)
		return -ENOMEM;
	while (slots < 2 * in->n)
		slots <<= 1;
	snprintf(b->name, sizeof(b->name), "/connreg-bench-%s", in->tag);
	b->hdr_size = hdr_size;
	b->meta_off = meta_off;
	shm_unlink(b->name);	/* a leftover of a killed run */
	rc = shm_table_map(b, true, slots, &b->t);
	if (rc) {
		fprintf(stderr, "bench: %s: %s: %s\n", what, b->name, strerror(-rc));
		free(b);
		return rc;
	}
	b->t.meta->mask = slots - 1;
	for (uint64_t i = 0; i < in->n; i++)
		shm_put(&b->t, key_in(in->ks, POOL_HIT, i), key_transport(i), false);
	*out = b;
	return 0;
}

void shm_bench_destroy(struct instance *in)
{
	struct shm_bench *b = in->priv;

	if (!b)
		return;
	munmap(b->t.base, b->t.bytes);
	shm_unlink(b->name);
	free(b);
	in->priv = NULL;
}

int shm_bench_attach(struct instance *in, void **h)
{
	struct shm_table *t = malloc(sizeof(*t));
	int rc;

	if (!t)
		return -ENOMEM;
	rc = shm_table_map(in->priv, false, 0, t);
	if (rc) {
		free(t);
		return rc;
	}
	*h = t;
	return 0;
}

void shm_bench_detach(struct instance *in, void *h)
{
	struct shm_table *t = h;

	(void)in;
	munmap(t->base, t->bytes);
	free(t);
}
