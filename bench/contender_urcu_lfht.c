/*
 * contender_urcu_lfht.c: liburcu's lock-free resizable hash table
 * (cds_lfht) with the urcu-memb flavour, in-process: readers and writer
 * are threads of the harness process (liburcu's grace periods cannot span
 * processes).
 *
 * Nodes {cds_lfht_node, key[16], value} come from one preallocated pool;
 * the table is created with a power-of-two bucket count >= n and no
 * auto-resize (so no resize or call_rcu thread competes for the two CPUs).
 * Lookups: urcu_memb_read_lock (inlined, _LGPL_SOURCE) + cds_lfht_lookup
 * with an XXH3-64 hash and a memcmp match function. Updates store the new
 * 64-bit value into the node atomically (what a user does for a word-sized
 * value; no copy). Churn: cds_lfht_del, and removed nodes are reused after
 * a synchronize_rcu once the spare pool runs out (batched, as connreg does).
 */
#define _GNU_SOURCE
#define _LGPL_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "loops.h"

struct lf_node {
	struct cds_lfht_node node;
	uint8_t key[ID_LEN];
	_Atomic uint64_t value;
};

struct lf_bench {
	struct cds_lfht *ht;
	struct lf_node *pool;
	uint64_t pool_len;
	uint32_t *free_idx;	/* writer-private stacks of pool indices */
	uint64_t n_free;
	uint32_t *retired_idx;
	uint64_t n_retired;
};

static inline unsigned long lf_hash(const uint8_t *id)
{
	return (unsigned long)XXH3_64bits(id, ID_LEN);
}

static int lf_match(struct cds_lfht_node *node, const void *key)
{
	const struct lf_node *n = caa_container_of(node, struct lf_node, node);

	return memcmp(n->key, key, ID_LEN) == 0;
}

static inline struct lf_node *lf_find(struct lf_bench *b, const uint8_t *id)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;

	cds_lfht_lookup(b->ht, lf_hash(id), lf_match, id, &it);
	node = cds_lfht_iter_get_node(&it);
	return node ? caa_container_of(node, struct lf_node, node) : NULL;
}

static bool lf_lookup(void *h, const uint8_t *id, uint64_t *val)
{
	struct lf_node *n;

	urcu_memb_read_lock();
	n = lf_find(h, id);
	if (n)
		*val = atomic_load_explicit(&n->value, memory_order_relaxed);
	urcu_memb_read_unlock();
	return n != NULL;
}

/* A batch inside one read-side critical section. */
static unsigned lf_bulk(void *h, const uint8_t *ids, unsigned cnt, uint64_t *vals)
{
	unsigned hits = 0;

	urcu_memb_read_lock();
	for (unsigned i = 0; i < cnt; i++) {
		struct lf_node *n = lf_find(h, ids + i * ID_LEN);

		if (n) {
			vals[i] = atomic_load_explicit(&n->value, memory_order_relaxed);
			hits++;
		}
	}
	urcu_memb_read_unlock();
	return hits;
}

static int lf_update(void *h, const uint8_t *id, uint64_t val)
{
	struct lf_node *n;

	urcu_memb_read_lock();
	n = lf_find(h, id);
	if (n)
		atomic_store_explicit(&n->value, val, memory_order_release);
	urcu_memb_read_unlock();
	return n ? 0 : -ENOENT;
}

/* A free node; waits for a grace period when only retired ones are left. */
static struct lf_node *lf_alloc(struct lf_bench *b)
{
	if (b->n_free == 0) {
		if (b->n_retired == 0)
			return NULL;
		urcu_memb_synchronize_rcu();
		memcpy(b->free_idx, b->retired_idx, b->n_retired * sizeof(uint32_t));
		b->n_free = b->n_retired;
		b->n_retired = 0;
	}
	return &b->pool[b->free_idx[--b->n_free]];
}

static int lf_insert(void *h, const uint8_t *id, uint64_t val)
{
	struct lf_bench *b = h;
	struct lf_node *n = lf_alloc(b);
	struct cds_lfht_node *got;

	if (!n)
		return -ENOSPC;
	cds_lfht_node_init(&n->node);
	memcpy(n->key, id, ID_LEN);
	atomic_store_explicit(&n->value, val, memory_order_relaxed);
	urcu_memb_read_lock();
	got = cds_lfht_add_unique(b->ht, lf_hash(id), lf_match, id, &n->node);
	if (got != &n->node) {
		/* Present already: update it, give the node back (never published). */
		struct lf_node *old = caa_container_of(got, struct lf_node, node);

		atomic_store_explicit(&old->value, val, memory_order_release);
		b->free_idx[b->n_free++] = (uint32_t)(n - b->pool);
	}
	urcu_memb_read_unlock();
	return 0;
}

static int lf_remove(void *h, const uint8_t *id)
{
	struct lf_bench *b = h;
	struct lf_node *n;

	urcu_memb_read_lock();
	n = lf_find(b, id);
	if (n && cds_lfht_del(b->ht, &n->node) == 0)
		b->retired_idx[b->n_retired++] = (uint32_t)(n - b->pool);
	urcu_memb_read_unlock();
	return 0;
}

static const struct bench_ops lf_ops = {
	.lookup = lf_lookup,
	.bulk = lf_bulk,
	.update = lf_update,
	.insert = lf_insert,
	.remove = lf_remove,
};

/* The harness's main thread registers once and stays registered (quiescent when idle). */
static void lf_register_main(void)
{
	static bool done;

	if (!done) {
		urcu_memb_register_thread();
		done = true;
	}
}

static void lf_free(struct lf_bench *b)
{
	free(b->pool);
	free(b->free_idx);
	free(b->retired_idx);
	free(b);
}

static int lf_create(struct instance *in)
{
	struct lf_bench *b = calloc(1, sizeof(*b));
	uint64_t spare = in->n / 8 > 4096 ? in->n / 8 : 4096;
	unsigned long buckets = 1;

	if (!b)
		return -ENOMEM;
	lf_register_main();
	b->pool_len = in->n + spare;
	b->pool = calloc(b->pool_len, sizeof(*b->pool));
	b->free_idx = calloc(b->pool_len, sizeof(uint32_t));
	b->retired_idx = calloc(b->pool_len, sizeof(uint32_t));
	while (buckets < in->n)
		buckets <<= 1;
	if (b->pool && b->free_idx && b->retired_idx)
		b->ht = cds_lfht_new_flavor(buckets, buckets, 0, 0, &urcu_memb_flavor, NULL);
	if (!b->ht) {
		lf_free(b);
		return -ENOMEM;
	}
	/* Pool order: node i holds hit id i; the spares are free. */
	for (uint64_t i = b->pool_len; i-- > in->n;)
		b->free_idx[b->n_free++] = (uint32_t)i;
	urcu_memb_read_lock();
	for (uint64_t i = 0; i < in->n; i++) {
		struct lf_node *n = &b->pool[i];
		const uint8_t *id = key_in(in->ks, POOL_HIT, i);

		cds_lfht_node_init(&n->node);
		memcpy(n->key, id, ID_LEN);
		atomic_init(&n->value, key_transport(i));
		cds_lfht_add(b->ht, lf_hash(id), &n->node);
	}
	urcu_memb_read_unlock();
	in->priv = b;
	return 0;
}

static void lf_destroy(struct instance *in)
{
	struct lf_bench *b = in->priv;
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;

	if (!b)
		return;
	urcu_memb_read_lock();
	cds_lfht_for_each(b->ht, &it, node)
		cds_lfht_del(b->ht, node);
	urcu_memb_read_unlock();
	urcu_memb_synchronize_rcu();
	if (cds_lfht_destroy(b->ht, NULL) != 0)
		fprintf(stderr, "bench: cds_lfht_destroy failed\n");
	lf_free(b);
	in->priv = NULL;
}

static int lf_attach(struct instance *in, void **h)
{
	urcu_memb_register_thread();
	*h = in->priv;
	return 0;
}

static void lf_detach(struct instance *in, void *h)
{
	(void)in;
	(void)h;
	urcu_memb_unregister_thread();
}

static int lf_run(struct instance *in, void *h, struct worker *w)
{
	(void)in;
	return BENCH_RUN(w, h, &lf_ops);
}

const struct contender contender_cds_lfht = {
	.name = "cds_lfht",
	.what = "liburcu cds_lfht, urcu-memb flavour, in-process: readers and writer are THREADS",
	.processes = false,
	.bulk_how = "64 cds_lfht_lookup in one read-side critical section",
	.write_how = "atomic store of the value into the node / cds_lfht_del + batched "
		     "synchronize_rcu",
	.create = lf_create,
	.destroy = lf_destroy,
	.attach = lf_attach,
	.detach = lf_detach,
	.run = lf_run,
};
