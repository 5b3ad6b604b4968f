/*
 * keys.h: connection ids and access sequences, all generated before any
 * timing starts.
 *
 * A keyset holds 3n random 16-byte ids (seeded, so every contender and every
 * run sees the same ones):
 *   [0, n)     registered at populate time ("hit" ids)
 *   [n, 2n)    never registered ("miss" ids)
 *   [2n, 3n)   spares that the churn scenario swaps in for hit ids
 * Initial transport of id i: key_transport(i), i.e. transport i % BENCH_TRANSPORTS
 * (the reconnect storm re-points one transport's ids at a time).
 *
 * An access sequence is a private copy of the ids to look up, in random
 * order, laid out contiguously so that reading the next id is a
 * sequential, prefetched access and not a cache miss of its own.
 */
#ifndef BENCH_KEYS_H
#define BENCH_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define ID_LEN 16u
#define BENCH_TRANSPORTS 16u

struct keyset {
	uint64_t n;	/* registered ids */
	uint8_t *ids;	/* 3n * ID_LEN bytes */
};

enum key_pool { POOL_HIT, POOL_MISS, POOL_SPARE };

int keys_init(struct keyset *ks, uint64_t n, uint64_t seed);
void keys_free(struct keyset *ks);

static inline const uint8_t *key_at(const struct keyset *ks, uint64_t i)
{
	return ks->ids + i * ID_LEN;
}

static inline const uint8_t *key_in(const struct keyset *ks, enum key_pool pool, uint64_t i)
{
	return key_at(ks, (uint64_t)pool * ks->n + i);
}

static inline uint64_t key_transport(uint64_t i)
{
	return (i % BENCH_TRANSPORTS) + 1;
}

struct sequence {
	uint8_t *ids;	/* len * ID_LEN bytes */
	size_t len;	/* a multiple of SEQ_ALIGN */
};

#define SEQ_ALIGN 64u

/*
 * len ids drawn uniformly (with repetition) from pool, shuffled. len is
 * rounded up to a multiple of SEQ_ALIGN.
 */
int sequence_init(struct sequence *s, const struct keyset *ks, enum key_pool pool, size_t len,
		  uint64_t seed);
void sequence_free(struct sequence *s);

/* splitmix64: the harness's only random number generator. */
static inline uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, bound). */
static inline uint64_t rng_below(uint64_t *state, uint64_t bound)
{
	return (uint64_t)(((unsigned __int128)rng_next(state) * bound) >> 64);
}

#endif /* BENCH_KEYS_H */
