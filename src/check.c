/*
 * check.c: connreg_readers and connreg_check, the operator's view of the
 * segment's health. Both only read; check holds a read-side section for
 * one bucket at a time while it reads records.
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
 * One live record: key sound, tag right, within reach (INV-4), found by a
 * lookup, the only live record of its id (INV-1), state LIVE or OWNED.
 */
static void cr_check_rec(struct cr_checker *c, uint32_t b, unsigned i, uint32_t m, uint8_t *key)
{
	struct connreg_handle *reg = c->reg;
	uint32_t pos = b * CR_BUCKET_SLOTS + i;
	uint32_t len = cr_rec_key(reg, pos, m, key);

	if (len == 0) {
		cr_problem(c, "bucket %u record %u: key length invalid (meta %#x)", b, i, m);
		return;
	}
	const struct cr_rec *r = cr_rec_at(reg, pos);
	for (uint32_t k = len; k < CR_KEY_INLINE; k++)
		if (r->key[k] != 0) {
			/* lookups compare 16 zero-padded bytes (cr_key_words): this id is unreachable */
			cr_problem(c, "bucket %u record %u: inline key not zero past its %u bytes", b, i,
				   len);
			break;
		}
	uint64_t h = cr_hash(reg, key, len);
	uint32_t home = cr_home(reg, h);
	if (cr_meta_live(cr_lenc(len), cr_tag(h)) != m)
		cr_problem(c, "bucket %u record %u: meta %#x does not match its key", b, i, m);
	if (cr_distance(reg, home, b) > cr_bound(reg, home))
		cr_problem(c, "bucket %u record %u lies beyond its home bucket %u's probe bound", b, i,
			   home);
	/* Relaxed: a diagnostic reading; the record is held by our section anyway. */
	uint64_t kind = cr_st_kind(atomic_load_explicit(&reg->states[pos], memory_order_relaxed));
	if (kind != CR_ST_LIVE && kind != CR_ST_OWNED)
		cr_problem(c, "position %u is LIVE in the index but its state is %s", pos,
			   kind == CR_ST_FREE ? "FREE" : "RETIRED");
	struct cr_hit hit;
	if (!cr_index_find(reg, key, len, h, &hit))
		cr_problem(c, "position %u (bucket %u record %u) is not found by a lookup of its own id",
			   pos, b, i);
	else if (hit.pos != pos)
		cr_problem(c, "id of position %u is live in two records (duplicate id)", pos);
}

static void cr_check_states(struct cr_checker *c)
{
	struct connreg_handle *reg = c->reg;
	/* Relaxed: a diagnostic snapshot; nothing is written from it. */
	uint64_t epoch = atomic_load_explicit(&reg->hdr->epoch, memory_order_relaxed);

	for (uint32_t i = 0; i < reg->n_entries; i++) {
		/* Relaxed: a diagnostic snapshot, as above. */
		uint64_t st = atomic_load_explicit(&reg->states[i], memory_order_relaxed);
		uint64_t kind = cr_st_kind(st), pay = cr_st_payload(st);

		if (kind == CR_ST_LIVE && !cr_index_reaches(reg, i))
			cr_problem(c, "position %u is LIVE but its record is not (lost)", i);
		if (kind == CR_ST_RETIRED && pay > epoch)
			cr_problem(c, "position %u retired at epoch %llu, after the current epoch %llu", i,
				   (unsigned long long)pay, (unsigned long long)epoch);
		if (kind == CR_ST_OWNED) {
			if (pay >= reg->n_rslots || !cr_owner_alive(reg, (uint32_t)pay))
				cr_problem(c, "position %u is owned by reader slot %llu, whose thread is gone", i,
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
	uint8_t *key;
	int rc;

	if (!reg)
		return -EINVAL;
	rc = cr_thread_get(reg, &t);
	if (rc)
		return rc;
	key = malloc(reg->key_max);
	if (!key)
		return -ENOMEM;
	/* What any writer would do on its own: settle the slots of dead processes first. */
	cr_slots_reap_dead(reg);
	cr_check_header(&c);
	for (uint32_t b = 0; b < reg->n_buckets; b++) {
		uint64_t outer = cr_read_lock(reg, t->slot);
		for (unsigned i = 0; i < CR_BUCKET_SLOTS; i++) {
			/* ORD-5(r): acquire pairs with the publishing store. */
			uint32_t m = atomic_load_explicit(&reg->index[b].meta[i], memory_order_acquire);

			if (cr_meta_is_live(m)) {
				live_slots++;
				cr_check_rec(&c, b, i, m, key);
			} else if (m != CR_META_EMPTY && m != CR_META_TOMB &&
				   cr_meta_tomb_maker(m) >= reg->n_rslots) {
				cr_problem(&c, "bucket %u record %u: invalid meta %#x", b, i, m);
			}
		}
		cr_read_unlock(t->slot, outer);
	}
	cr_check_states(&c);
	/* The settled ledgers equal the live slots (INV-5). */
	uint64_t live = cr_count_snapshot(reg);
	if (live != live_slots)
		cr_problem(&c, "live count %llu disagrees with %llu live records in the index",
			   (unsigned long long)live, (unsigned long long)live_slots);
	/* Relaxed: compared with a snapshot, for a report only. */
	uint64_t hint = atomic_load_explicit(&reg->hdr->live_hint, memory_order_relaxed);
	if (hint < live)
		cr_problem(&c, "admission hint %llu is below the live count %llu",
			   (unsigned long long)hint, (unsigned long long)live);
	if (live > reg->capacity)
		cr_problem(&c, "live count %llu exceeds capacity %llu", (unsigned long long)live,
			   (unsigned long long)reg->capacity);
	free(key);
	return c.problems;
}
