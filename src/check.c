/*
 * check.c: connreg_readers and connreg_check, the operator's view of the
 * segment's health. Both only read; check holds a read-side section for
 * one bucket at a time while it dereferences entries.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "count.h"
#include "index.h"
#include "owner.h"
#include "rcu.h"
#include "recover.h"

int connreg_readers(connreg_t *reg, int (*fn)(const connreg_reader_t *r, void *arg), void *arg)
{
	uint32_t hwm;

	if (!reg || !fn)
		return -EINVAL;
	/* Relaxed: a process-local word, set by our own atfork handler. */
	if (atomic_load_explicit(&cr_fork_gen, memory_order_relaxed) != reg->fork_gen)
		return -ECHILD;
	/* ORD-12(r): acquire pairs with the release CAS-max in cr_slot_claim. */
	hwm = atomic_load_explicit(&reg->hdr->rslot_hwm, memory_order_acquire);
	if (hwm > reg->n_rslots)
		hwm = reg->n_rslots;
	for (uint32_t i = 0; i < hwm; i++) {
		struct cr_rslot *s = &reg->rslots[i];
		/* Relaxed: a snapshot for display. */
		uint64_t o = atomic_load_explicit(&s->owner, memory_order_relaxed);
		connreg_reader_t r;
		int rc;

		if (o == 0)
			continue;
		r.slot = i;
		r.pid = (int32_t)s->pid;
		r.tid = s->tid;
		/*
		 * Relaxed: display only; read before the liveness probe, which
		 * recovers a dead owner's slot.
		 */
		r.epoch = atomic_load_explicit(&s->epoch, memory_order_relaxed);
		r.alive = cr_slot_alive_or_recover(reg, i);
		rc = fn(&r, arg);
		if (rc)
			return rc;
	}
	return 0;
}

struct cr_checker {
	struct connreg_handle *reg;
	void (*report)(const char *problem, void *arg);
	void *arg;
	int problems;
};

__attribute__((format(printf, 2, 3)))
static void cr_problem(struct cr_checker *c, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	c->problems++;
	if (!c->report)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->report(line, c->arg);
}

/* Buckets from home to b, walking forward with wrap-around. */
static uint32_t cr_distance(const struct connreg_handle *reg, uint32_t home, uint32_t b)
{
	return b >= home ? b - home : b + reg->n_buckets - home;
}

/*
 * One live slot: entry sound, fingerprint right, within reach (INV-4),
 * found by a lookup, the only live slot of its id (INV-1).
 */
static void cr_check_slot(struct cr_checker *c, uint32_t b, unsigned i, uint64_t v,
			  uint8_t *seen)
{
	struct connreg_handle *reg = c->reg;
	uint32_t idx = cr_slot_idx(v);

	if (idx >= reg->n_entries) {
		cr_problem(c, "bucket %u slot %u: entry index %u out of range", b, i, idx);
		return;
	}
	if (seen[idx])
		cr_problem(c, "entry %u is reachable from more than one slot", idx);
	seen[idx] = 1;
	const struct cr_entry *e = cr_entry_at(reg, idx);
	uint32_t len = e->key_len;
	if (len == 0 || len > reg->key_max) {
		cr_problem(c, "entry %u (bucket %u slot %u): key length %u invalid", idx, b, i, len);
		return;
	}
	uint64_t h = cr_hash(reg, e->key, len);
	uint32_t home = cr_home(reg, h);
	if (cr_fp(h) != cr_slot_fp(v))
		cr_problem(c, "bucket %u slot %u: fingerprint does not match entry %u's key", b, i, idx);
	if (cr_distance(reg, home, b) > cr_bound(reg, home))
		cr_problem(c, "bucket %u slot %u: entry %u lies beyond its home bucket %u's probe bound",
			   b, i, idx, home);
	/* Relaxed: a diagnostic reading; the entry is held by our section anyway. */
	uint64_t kind = cr_st_kind(atomic_load_explicit(&reg->states[idx], memory_order_relaxed));
	if (kind != CR_ST_LIVE && kind != CR_ST_OWNED)
		cr_problem(c, "entry %u is reachable but its state is %s", idx,
			   kind == CR_ST_FREE ? "FREE" : "RETIRED");
	struct cr_hit hit;
	if (!cr_index_find(reg, e->key, len, h, &hit))
		cr_problem(c, "entry %u (bucket %u slot %u) is not found by a lookup of its own id", idx,
			   b, i);
	else if (hit.slot != &reg->index[b].slot[i])
		cr_problem(c, "id of entry %u is live in two slots (duplicate id)", idx);
}

static void cr_check_entries(struct cr_checker *c, const uint8_t *seen)
{
	struct connreg_handle *reg = c->reg;
	/* Relaxed: a diagnostic snapshot; nothing is written from it. */
	uint64_t epoch = atomic_load_explicit(&reg->hdr->epoch, memory_order_relaxed);

	for (uint32_t i = 0; i < reg->n_entries; i++) {
		/* Relaxed: a diagnostic snapshot, as above. */
		uint64_t st = atomic_load_explicit(&reg->states[i], memory_order_relaxed);
		uint64_t kind = cr_st_kind(st), pay = cr_st_payload(st);

		if (kind == CR_ST_LIVE && !seen[i])
			cr_problem(c, "entry %u is LIVE but no slot reaches it (lost)", i);
		if (kind == CR_ST_RETIRED && pay > epoch)
			cr_problem(c, "entry %u retired at epoch %llu, after the current epoch %llu", i,
				   (unsigned long long)pay, (unsigned long long)epoch);
		if (kind == CR_ST_OWNED) {
			if (pay >= reg->n_rslots || !cr_owner_alive(reg, (uint32_t)pay))
				cr_problem(c, "entry %u is owned by reader slot %llu, whose thread is gone", i,
					   (unsigned long long)pay);
		}
	}
}

static void cr_check_header(struct cr_checker *c)
{
	struct cr_header *h = c->reg->hdr;
	/* Relaxed (here and below): a diagnostic snapshot; nothing is written from them. */
	uint64_t epoch = atomic_load_explicit(&h->epoch, memory_order_relaxed);
	uint64_t safe = atomic_load_explicit(&h->safe_epoch, memory_order_relaxed);
	uint32_t hwm = atomic_load_explicit(&h->rslot_hwm, memory_order_relaxed);

	if (epoch == 0 || safe == 0 || safe > epoch)
		cr_problem(c, "epochs inconsistent: epoch %llu, safe epoch %llu",
			   (unsigned long long)epoch, (unsigned long long)safe);
	if (hwm > c->reg->n_rslots)
		cr_problem(c, "reader high-water mark %u exceeds %u slots", hwm, c->reg->n_rslots);
	for (uint32_t i = 0; i < hwm && i < c->reg->n_rslots; i++) {
		struct cr_rslot *s = &c->reg->rslots[i];
		/* Relaxed (here and below): a diagnostic snapshot, as above. */
		uint64_t o = atomic_load_explicit(&s->owner, memory_order_relaxed);	/* snapshot */
		uint64_t e = atomic_load_explicit(&s->epoch, memory_order_relaxed);	/* snapshot */

		if (e > epoch)
			cr_problem(c, "reader slot %u: epoch %llu is ahead of the global epoch", i,
				   (unsigned long long)e);
		if (o != 0 && !cr_slot_alive_or_recover(c->reg, i))
			cr_problem(c, "reader slot %u: owner (pid %u in its namespace) is gone (stale slot)",
				   i, c->reg->rslots[i].pid);
		else if (o == 0 && e != 0)
			cr_problem(c, "reader slot %u: free but marked inside a lookup", i);
	}
}

int connreg_check(connreg_t *reg, void (*report)(const char *problem, void *arg), void *arg)
{
	struct cr_checker c = { reg, report, arg, 0 };
	struct cr_thread *t;
	uint64_t live_slots = 0;
	uint8_t *seen;
	int rc;

	if (!reg)
		return -EINVAL;
	rc = cr_thread_get(reg, &t);
	if (rc)
		return rc;
	seen = calloc(reg->n_entries, 1);
	if (!seen)
		return -ENOMEM;
	/* What any writer would do on its own: settle the slots of dead processes first. */
	cr_slots_reap_dead(reg);
	cr_check_header(&c);
	for (uint32_t b = 0; b < reg->n_buckets; b++) {
		cr_read_lock(reg, t->slot);
		for (unsigned i = 0; i < CR_BUCKET_SLOTS; i++) {
			/* ORD-5(r): acquire pairs with the publishing CAS. */
			uint64_t v = atomic_load_explicit(&reg->index[b].slot[i], memory_order_acquire);

			if (cr_slot_is_live(v)) {
				live_slots++;
				cr_check_slot(&c, b, i, v, seen);
			} else if (v != CR_SLOT_EMPTY && v != CR_SLOT_TOMB &&
				   !(cr_slot_is_tomb(v) && (uint32_t)(v >> 32) % 2 == 0 &&
				     (v & 0xffffffffull) >= 2 &&
				     cr_slot_tomb_maker(v) < reg->n_rslots)) {
				cr_problem(&c, "bucket %u slot %u: invalid value %#llx", b, i,
					   (unsigned long long)v);
			}
		}
		cr_read_unlock(t->slot);
	}
	cr_check_entries(&c, seen);
	/* The settled ledgers equal the live slots (INV-5). */
	uint64_t live = cr_count_snapshot(reg);
	if (live != live_slots)
		cr_problem(&c, "live count %llu disagrees with %llu live slots in the index",
			   (unsigned long long)live, (unsigned long long)live_slots);
	/* Relaxed: compared with a snapshot, for a report only. */
	uint64_t hint = atomic_load_explicit(&reg->hdr->live_hint, memory_order_relaxed);
	if (hint < live)
		cr_problem(&c, "admission hint %llu is below the live count %llu",
			   (unsigned long long)hint, (unsigned long long)live);
	if (live > reg->capacity)
		cr_problem(&c, "live count %llu exceeds capacity %llu", (unsigned long long)live,
			   (unsigned long long)reg->capacity);
	free(seen);
	return c.problems;
}
