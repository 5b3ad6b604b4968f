/*
 * walk.c: operations that walk the whole segment: connreg_foreach,
 * connreg_stats and connreg_reap. Each holds a read-side section for one
 * bucket at a time, so a long walk never pins reclamation for long, and
 * calls back user code outside any section.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "pool.h"
#include "count.h"
#include "owner.h"
#include "rcu.h"
#include "registry.h"
#include "walk.h"

int cr_walk_bucket(struct connreg_handle *reg, struct cr_thread *t, uint32_t b, uint32_t home,
		   uint8_t *keys, cr_walk_fn fn, void *arg)
{
	uint32_t lens[CR_BUCKET_SLOTS];
	uint64_t tr[CR_BUCKET_SLOTS];
	unsigned cnt = 0;
	int rc = 0;

	uint64_t outer = cr_read_lock(reg, t->slot);
	for (unsigned i = 0; i < CR_BUCKET_SLOTS; i++) {
		uint32_t pos = b * CR_BUCKET_SLOTS + i;
		/* ORD-5(r): acquire pairs with the publishing store. */
		uint32_t m = atomic_load_explicit(&reg->index[b].meta[i], memory_order_acquire);
		uint8_t *key = keys + (size_t)cnt * reg->key_max;

		if (!cr_meta_is_live(m))
			continue;
		/* Copy inside the section: the key is immutable until it ends (INV-2). */
		uint32_t len = cr_rec_key(reg, pos, m, key);

		if (len == 0)
			continue;	/* corrupt record: never copy past key_max */
		if (home != CR_IDX_NONE && cr_home(reg, cr_hash(reg, key, len)) != home)
			continue;	/* homed elsewhere */
		lens[cnt] = len;
		tr[cnt] = cr_rec_transport(reg, pos);
		cnt++;
	}
	cr_read_unlock(t->slot, outer);
	for (unsigned i = 0; i < cnt && rc == 0; i++)
		rc = fn(keys + (size_t)i * reg->key_max, lens[i], tr[i], arg);
	return rc;
}

int connreg_foreach(connreg_t *reg, cr_walk_fn fn, void *arg)
{
	struct cr_thread *t;
	uint8_t *keys;
	int rc;

	if (!reg || !fn)
		return -EINVAL;
	rc = cr_thread_get(reg, &t);
	if (rc)
		return rc;
	keys = malloc((size_t)CR_BUCKET_SLOTS * reg->key_max);
	if (!keys)
		return -ENOMEM;
	for (uint32_t b = 0; b < reg->n_buckets && rc == 0; b++)
		rc = cr_walk_bucket(reg, t, b, CR_IDX_NONE, keys, fn, arg);
	free(keys);
	return rc;
}

_Static_assert(sizeof(connreg_stats_t) == CONNREG_STATS_SIZE_VER0,
	       "connreg_stats_t grew: add CONNREG_STATS_SIZE_VER1, keep VER0");

int connreg_stats(connreg_t *reg, connreg_stats_t *user)
{
	struct cr_header *h;
	connreg_stats_t full, *st = &full;
	uint32_t hwm, max_bound = 0;
	size_t n;

	if (!reg || !user)
		return -EINVAL;
	/* Fill only as many bytes as the caller's header declared (connreg.h, "Sized structs"). */
	n = user->size ? user->size : CONNREG_STATS_SIZE_VER0;
	if (n < CONNREG_STATS_SIZE_VER0)
		return -EINVAL;
	if (n > sizeof(full))
		n = sizeof(full);
	/* Relaxed: a process-local word, set by our own atfork handler. */
	if (atomic_load_explicit(&cr_fork_gen, memory_order_relaxed) != reg->fork_gen)
		return -ECHILD;
	h = reg->hdr;
	memset(st, 0, sizeof(*st));
	/* Relaxed: a statistical snapshot; nothing is dereferenced from it. */
	for (uint32_t i = 0; i < reg->n_entries; i++) {
		uint64_t kind = cr_st_kind(atomic_load_explicit(&reg->states[i], memory_order_relaxed));

		st->free += kind == CR_ST_FREE;
		st->retired += kind == CR_ST_RETIRED;
	}
	for (uint32_t b = 0; b < reg->n_buckets; b++) {
		/* Relaxed (here and below): a statistical snapshot. */
		uint32_t bound = atomic_load_explicit(&reg->index[b].ctl, memory_order_relaxed) &
				 CR_BOUND_MASK;

		/* Relaxed: a statistical snapshot, as above. */
		for (unsigned i = 0; i < CR_BUCKET_SLOTS; i++)
			st->tombstones += cr_meta_is_tomb(
				atomic_load_explicit(&reg->index[b].meta[i], memory_order_relaxed));
		if (bound > max_bound)
			max_bound = bound;
	}
	/* Relaxed (here and below): a statistical snapshot. */
	hwm = atomic_load_explicit(&h->rslot_hwm, memory_order_relaxed);
	if (hwm > reg->n_rslots)
		hwm = reg->n_rslots;
	for (uint32_t i = 0; i < hwm; i++)
		st->readers += atomic_load_explicit(&reg->rslots[i].owner, memory_order_relaxed) != 0;
	st->capacity = reg->capacity;
	st->live = cr_count_snapshot(reg);
	/* Relaxed (here and below): snapshots for display. */
	st->epoch = atomic_load_explicit(&h->epoch, memory_order_relaxed);
	st->safe_epoch = atomic_load_explicit(&h->safe_epoch, memory_order_relaxed);
	st->max_probe = max_bound >= reg->n_buckets ? reg->n_buckets : max_bound + 1;
	st->entries = reg->n_entries;
	st->buckets = reg->n_buckets;
	st->segment_size = reg->size;
	st->key_max = reg->key_max;
	st->layout_version = CR_LAYOUT_VERSION;
	st->max_threads = reg->n_rslots;
	st->flags = reg->flags;
	/* Relaxed (here and below): statistics. */
	st->writer_eagain = atomic_load_explicit(&h->ctr_writer_eagain, memory_order_relaxed);
	st->slots_recovered = atomic_load_explicit(&h->ctr_slots_recovered, memory_order_relaxed);
	st->grace_periods = atomic_load_explicit(&h->ctr_grace_periods, memory_order_relaxed);
	st->size = (uint32_t)n;
	memcpy(user, st, n);
	return 0;
}

/* A tiny direct-mapped cache of liveness answers: reap asks per id, pids repeat. */
struct cr_dead_cache {
	uint64_t key[64];
	int dead[64];
};

static int cr_dead_cached(struct cr_dead_cache *c, uint32_t pid, uint32_t start_lo)
{
	uint64_t key = pid | (uint64_t)start_lo << 32 | 1ull << 63;	/* never 0 */
	unsigned k = (unsigned)((key * 0x9e3779b97f4a7c15ull) >> 58);

	if (c->key[k] != key) {
		c->key[k] = key;
		c->dead[k] = cr_pid_dead((pid_t)pid, start_lo);
	}
	return c->dead[k];
}

/* A record reap judged dead in a first pass, removed only if unchanged. */
struct cr_reap_cand {
	struct cr_hit hit;
	uint64_t transport;
	uint64_t pid_id;
	uint32_t len;
};

/*
 * Remove candidate c if its record is still what was judged: the same
 * id, transport and pid identity, under the id's stripe lock (updates
 * take it too, so nothing changes them while we compare and tomb). A
 * re-registration by a live transport is never removed.
 */
static int cr_reap_one(struct connreg_handle *reg, struct cr_thread *t, struct cr_reap_cand *c,
		       const uint8_t *key)
{
	uint64_t h = cr_hash(reg, key, c->len);
	struct cr_stripe *stripe = cr_stripe_for(reg, h);
	struct cr_hit hit;
	int n = 0;

	if (cr_stripe_lock(reg, stripe))
		return 0;	/* a stopped writer holds it: left for the next reap */
	uint64_t outer = cr_read_lock(reg, t->slot);
	if (cr_index_find(reg, key, c->len, h, &hit) && hit.pos == c->hit.pos &&
	    cr_rec_transport(reg, hit.pos) == c->transport &&
	    /* Relaxed: written under the stripe lock we hold. */
	    atomic_load_explicit(&cr_entry_at(reg, hit.pos)->pid_id, memory_order_relaxed) == c->pid_id)
		n = cr_remove_at(reg, t, &hit, cr_home(reg, h));
	cr_read_unlock(t->slot, outer);
	pthread_mutex_unlock(&stripe->mu);
	return n;
}

int connreg_reap(connreg_t *reg, uint64_t *removed)
{
	struct cr_dead_cache cache;
	struct cr_reap_cand cand[CR_BUCKET_SLOTS];
	struct cr_thread *t;
	uint8_t *keys;
	uint32_t my_ns;
	uint64_t n = 0;
	int rc;

	if (!reg)
		return -EINVAL;
	if (!(reg->flags & CONNREG_TRANSPORT_IS_PID))
		return -EOPNOTSUPP;
	rc = cr_thread_get(reg, &t);
	if (rc)
		return rc;
	keys = malloc((size_t)CR_BUCKET_SLOTS * reg->key_max);
	if (!keys)
		return -ENOMEM;
	memset(&cache, 0, sizeof(cache));
	my_ns = cr_pid_ns_self();
	for (uint32_t b = 0; b < reg->n_buckets; b++) {
		unsigned cnt = 0;

		uint64_t outer = cr_read_lock(reg, t->slot);
		for (unsigned i = 0; i < CR_BUCKET_SLOTS; i++) {
			uint32_t pos = b * CR_BUCKET_SLOTS + i;
			/* ORD-5(r): acquire pairs with the publishing store. */
			uint32_t m = atomic_load_explicit(&reg->index[b].meta[i], memory_order_acquire);
			const struct cr_entry *e = cr_entry_at(reg, pos);
			struct cr_reap_cand *c = &cand[cnt];

			if (!cr_meta_is_live(m))
				continue;
			c->len = cr_rec_key(reg, pos, m, keys + (size_t)cnt * reg->key_max);
			c->transport = cr_rec_transport(reg, pos);
			/* Relaxed: a first look; cr_reap_one compares again under the lock. */
			c->pid_id = atomic_load_explicit(&e->pid_id, memory_order_relaxed);
			uint32_t pid = (uint32_t)c->pid_id;
			/* Relaxed: as above. */
			uint32_t ns = atomic_load_explicit(&e->pid_ns, memory_order_relaxed);

			/*
			 * A pid means something only in the namespace of the
			 * process that registered it: never judge another's. An
			 * identity of another transport (a writer died midway) or
			 * none is "unknown".
			 */
			if (c->len == 0 || pid == 0 || pid != (uint32_t)c->transport || ns == 0 || ns != my_ns)
				continue;
			c->hit = (struct cr_hit){ cr_rec_at(reg, pos), pos, m };
			cnt++;
		}
		cr_read_unlock(t->slot, outer);
		for (unsigned i = 0; i < cnt; i++)
			if (cr_dead_cached(&cache, (uint32_t)cand[i].pid_id,
					   (uint32_t)(cand[i].pid_id >> 32)))
				n += cr_reap_one(reg, t, &cand[i], keys + (size_t)i * reg->key_max);
	}
	free(keys);
	if (removed)
		*removed = n;
	return 0;
}
