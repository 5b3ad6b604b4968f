/*
 * keys.c: id generation and access sequences.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "keys.h"

/*
 * Large arrays come from mmap so that they are page-aligned, zero-cost to
 * free, and shared copy-on-write (read-only in practice) with forked readers.
 */
static void *big_alloc(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void big_free(void *p, size_t bytes)
{
	if (p)
		munmap(p, bytes);
}

int keys_init(struct keyset *ks, uint64_t n, uint64_t seed)
{
	uint64_t st = seed ^ 0x6b657973ull;	/* "keys" */
	size_t bytes = (size_t)(3 * n) * ID_LEN;

	ks->n = n;
	ks->ids = big_alloc(bytes);
	if (!ks->ids)
		return -ENOMEM;
	/*
	 * 128 random bits per id: among 3 million ids a collision has
	 * probability ~1e-26, so uniqueness is not checked.
	 */
	for (uint64_t i = 0; i < 3 * n; i++) {
		uint64_t w[2] = { rng_next(&st), rng_next(&st) };

		memcpy(ks->ids + i * ID_LEN, w, ID_LEN);
	}
	return 0;
}

void keys_free(struct keyset *ks)
{
	big_free(ks->ids, (size_t)(3 * ks->n) * ID_LEN);
	ks->ids = NULL;
	ks->n = 0;
}

int sequence_init(struct sequence *s, const struct keyset *ks, enum key_pool pool, size_t len,
		  uint64_t seed)
{
	uint64_t st = seed ^ ((uint64_t)pool << 56) ^ 0x73657175ull;	/* "sequ" */

	len = (len + SEQ_ALIGN - 1) / SEQ_ALIGN * SEQ_ALIGN;
	s->len = len;
	s->ids = big_alloc(len * ID_LEN);
	if (!s->ids)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++)
		memcpy(s->ids + i * ID_LEN, key_in(ks, pool, rng_below(&st, ks->n)), ID_LEN);
	return 0;
}

void sequence_free(struct sequence *s)
{
	big_free(s->ids, s->len * ID_LEN);
	s->ids = NULL;
	s->len = 0;
}
