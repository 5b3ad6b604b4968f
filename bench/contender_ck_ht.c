/*
 * contender_ck_ht.c: Concurrency Kit's ck_ht in SPMC mode (one writer, any
 * number of concurrent readers), CK_HT_MODE_BYTESTRING, in-process: readers
 * and writer are threads of the harness process.
 *
 * The table stores a pointer to each key (the keyset array, which outlives
 * the table) and a 64-bit value; it is sized for 2n entries so it never
 * grows during a run. ck_ht's own MurmurHash64A is used. Updates:
 * ck_ht_set_spmc (in place); churn: ck_ht_remove_spmc + ck_ht_put_spmc.
 * No reclamation scheme is needed here because keys are never freed;
 * memory ck_ht asks to free with deferral (old maps after a grow) is kept
 * until the instance is destroyed. A real user freeing keys would add
 * ck_epoch, which this figure does not include.
 */
#define _GNU_SOURCE
#include <ck_ht.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loops.h"

struct ck_bench {
	ck_ht_t ht;
};

/* Frees ck_ht defers: kept on a list until no reader can hold them. */
struct ck_deferred {
	struct ck_deferred *next;
	void *p;
};

static struct ck_deferred *ck_deferred_list;

static void *ck_m_malloc(size_t r)
{
	return malloc(r);
}

static void *ck_m_realloc(void *p, size_t old, size_t r, bool defer)
{
	(void)old;
	(void)defer;
	return realloc(p, r);
}

static void ck_m_free(void *p, size_t b, bool defer)
{
	struct ck_deferred *d;

	(void)b;
	if (!defer) {
		free(p);
		return;
	}
	d = malloc(sizeof(*d));
	if (!d)
		return;	/* leak rather than free under a reader */
	d->p = p;
	d->next = ck_deferred_list;
	ck_deferred_list = d;
}

static struct ck_malloc ck_allocator = {
	.malloc = ck_m_malloc,
	.realloc = ck_m_realloc,
	.free = ck_m_free,
};

static bool ckb_lookup(void *h, const uint8_t *id, uint64_t *val)
{
	struct ck_bench *b = h;
	ck_ht_hash_t hh;
	ck_ht_entry_t e;

	ck_ht_hash(&hh, &b->ht, id, ID_LEN);
	ck_ht_entry_key_set(&e, id, ID_LEN);
	if (!ck_ht_get_spmc(&b->ht, hh, &e))
		return false;
	*val = (uint64_t)(uintptr_t)ck_ht_entry_value(&e);
	return true;
}

/* No read-side section to amortise: a loop of single lookups. */
static unsigned ckb_bulk(void *h, const uint8_t *ids, unsigned n, uint64_t *vals)
{
	unsigned hits = 0;

	for (unsigned i = 0; i < n; i++)
		hits += ckb_lookup(h, ids + i * ID_LEN, &vals[i]);
	return hits;
}

static int ckb_update(void *h, const uint8_t *id, uint64_t val)
{
	struct ck_bench *b = h;
	ck_ht_hash_t hh;
	ck_ht_entry_t e;

	ck_ht_hash(&hh, &b->ht, id, ID_LEN);
	ck_ht_entry_set(&e, hh, id, ID_LEN, (const void *)(uintptr_t)val);
	return ck_ht_set_spmc(&b->ht, hh, &e) ? 0 : -ENOMEM;
}

static int ckb_insert(void *h, const uint8_t *id, uint64_t val)
{
	struct ck_bench *b = h;
	ck_ht_hash_t hh;
	ck_ht_entry_t e;

	ck_ht_hash(&hh, &b->ht, id, ID_LEN);
	ck_ht_entry_set(&e, hh, id, ID_LEN, (const void *)(uintptr_t)val);
	if (ck_ht_put_spmc(&b->ht, hh, &e))
		return 0;
	/* Present already (or no memory): register semantics are insert-or-update. */
	return ck_ht_set_spmc(&b->ht, hh, &e) ? 0 : -ENOMEM;
}

static int ckb_remove(void *h, const uint8_t *id)
{
	struct ck_bench *b = h;
	ck_ht_hash_t hh;
	ck_ht_entry_t e;

	ck_ht_hash(&hh, &b->ht, id, ID_LEN);
	ck_ht_entry_key_set(&e, id, ID_LEN);
	ck_ht_remove_spmc(&b->ht, hh, &e);
	return 0;
}

static const struct bench_ops ckb_ops = {
	.lookup = ckb_lookup,
	.bulk = ckb_bulk,
	.update = ckb_update,
	.insert = ckb_insert,
	.remove = ckb_remove,
};

static int ckb_create(struct instance *in)
{
	struct ck_bench *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	if (!ck_ht_init(&b->ht, CK_HT_MODE_BYTESTRING, NULL, &ck_allocator, 2 * in->n,
			in->seed | 1)) {
		free(b);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < in->n; i++) {
		if (ckb_insert(b, key_in(in->ks, POOL_HIT, i), key_transport(i)) != 0) {
			ck_ht_destroy(&b->ht);
			free(b);
			return -ENOMEM;
		}
	}
	in->priv = b;
	return 0;
}

static void ckb_destroy(struct instance *in)
{
	struct ck_bench *b = in->priv;

	if (!b)
		return;
	ck_ht_destroy(&b->ht);
	free(b);
	in->priv = NULL;
	/* No reader runs now: deferred frees are safe. */
	while (ck_deferred_list) {
		struct ck_deferred *d = ck_deferred_list;

		ck_deferred_list = d->next;
		free(d->p);
		free(d);
	}
}

static int ckb_attach(struct instance *in, void **h)
{
	*h = in->priv;
	return 0;
}

static void ckb_detach(struct instance *in, void *h)
{
	(void)in;
	(void)h;
}

static int ckb_run(struct instance *in, void *h, struct worker *w)
{
	(void)in;
	return BENCH_RUN(w, h, &ckb_ops);
}

const struct contender contender_ck_ht = {
	.name = "ck_ht",
	.what = "Concurrency Kit ck_ht, SPMC, bytestring keys, in-process: readers and writer are "
		"THREADS",
	.processes = false,
	.bulk_how = "a loop of 64 ck_ht_get_spmc (no read-side section to amortise)",
	.write_how = "ck_ht_set_spmc / ck_ht_remove_spmc + ck_ht_put_spmc (single writer)",
	.create = ckb_create,
	.destroy = ckb_destroy,
	.attach = ckb_attach,
	.detach = ckb_detach,
	.run = ckb_run,
};
