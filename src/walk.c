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

	cr_read_lock(reg, t->slot);
	for (unsigned i = 0; i < CR_BUCKET_SLOTS; i++) {
		/* ORD-5(r): acquire pairs with the publishing CAS. */
		uint64_t v = atomic_load_explicit(&reg->index[b].slot[i], memory_order_acquire);

		if (!cr_slot_is_live(v) || cr_slot_idx(v) >= reg->n_entries)
			continue;
		const struct cr_entry *e = cr_entry_at(reg, cr_slot_idx(v));
		uint32_t len = e->key_len;

		if (len == 0 || len > reg->key_max)
			continue;	/* corrupt entry: never copy past key_max */
		if (home != CR_IDX_NONE && cr_home(reg, cr_hash(reg, e->key, len)) != home)
			continue;	/* homed elsewhere */
		/* Copy inside the section: the entry is immutable until it ends (INV-2). */
		memcpy(keys + (size_t)cnt * reg->key_max, e->key, len);
		lens[cnt] = len;
		tr[cnt] = e->transport;
		cnt++;
	}
	cr_read_unlock(t->slot);
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
			st->tombstones += cr_slot_is_tomb(
				atomic_load_explicit(&reg->index[b].slot[i], memory_order_relaxed));
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

int connreg_reap(connreg_t *reg, uint64_t *removed)
{
	struct cr_dead_cache cache;
	struct cr_thread *t;
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
	memset(&cache, 0, sizeof(cache));
	my_ns = cr_pid_ns_self();
	for (uint32_t b = 0; b < reg->n_buckets; b++) {
		cr_read_lock(reg, t->slot);
		for (unsigned i = 0; i < CR_BUCKET_SLOTS; i++) {
			_Atomic uint64_t *slot = &reg->index[b].slot[i];
			/* ORD-5(r): acquire pairs with the publishing CAS. */
			uint64_t v = atomic_load_explicit(slot, memory_order_acquire);

			if (!cr_slot_is_live(v) || cr_slot_idx(v) >= reg->n_entries)
				continue;
			const struct cr_entry *e = cr_entry_at(reg, cr_slot_idx(v));
			uint32_t pid = (uint32_t)e->transport;

			/*
			 * A pid means something only in the namespace of the
			 * process that registered it: never judge another's.
			 */
			if (e->key_len == 0 || e->key_len > reg->key_max)
				continue;	/* corrupt entry: never hash past key_max */
			if (pid == 0 || pid > INT32_MAX || e->pid_ns == 0 || e->pid_ns != my_ns ||
			    !cr_dead_cached(&cache, pid, e->pid_start))
				continue;
			struct cr_hit hit = { slot, v, b * CR_BUCKET_SLOTS + i };

			/*
			 * Remove only if the slot still holds the entry we judged
			 * (no ABA inside the section): a re-registration by a
			 * live transport is never removed.
			 */
			if (cr_remove_at(reg, t, &hit,
					 cr_home(reg, cr_hash(reg, e->key, e->key_len))))
				n++;
			else
				cr_unlink_none(t);
		}
		cr_read_unlock(t->slot);
	}
	if (removed)
		*removed = n;
	return 0;
}
