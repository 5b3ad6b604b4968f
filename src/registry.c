/*
 * registry.c: the public operations, composed from the index (index.h),
 * the entry pool (pool.h) and the read side (rcu.h).
 *
 * Every writer follows the same shape: allocate and fill an entry outside
 * any read-side section (allocation may wait for a grace period, which
 * must not wait for us), enter a section, publish or unlink with one CAS on
 * an index slot, leave, then retire what was unlinked. Inserts of one id
 * are serialized by its home's stripe lock, so it is never live twice
 * (INV-1).
 */
#define _GNU_SOURCE	/* pthread_mutex_clocklock */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "index.h"
#include "owner.h"
#include "pool.h"
#include "count.h"
#include "rcu.h"
#include "registry.h"
#include "notify.h"
#include "fault.h"

static inline int cr_check_id(const struct connreg_handle *reg, const void *id, size_t len)
{
	if (caa_unlikely(!reg || !id || len == 0))
		return -EINVAL;
	if (caa_unlikely(len > reg->key_max))
		return -ENAMETOOLONG;
	return 0;
}

__attribute__((flatten)) int connreg_get_transport(connreg_t *reg, const void *id, size_t id_len,
						   uint64_t *transport)
{
	struct cr_thread *t;
	struct cr_hit hit;
	uint64_t h;
	int rc = cr_check_id(reg, id, id_len);

	if (caa_unlikely(rc || !transport))
		return rc ? rc : -EINVAL;
	rc = cr_thread_get(reg, &t);
	if (caa_unlikely(rc))
		return rc;
	h = cr_hash(reg, id, id_len);
	cr_index_prefetch(reg, h);
	cr_read_lock(reg, t->slot);
	if (cr_index_find(reg, id, (uint32_t)id_len, h, &hit)) {
		*transport = cr_entry_at(reg, cr_slot_idx(hit.val))->transport;
		rc = 0;
	} else {
		rc = -ENOENT;
	}
	cr_read_unlock(t->slot);
	return rc;
}

/* IS_PID registries record the transport process's start time and pid namespace. */
static void cr_pid_identity(const struct connreg_handle *reg, uint64_t transport, struct cr_entry *e)
{
	uint32_t pid = (uint32_t)transport;

	e->pid_start = 0;
	e->pid_ns = 0;
	if (!(reg->flags & CONNREG_TRANSPORT_IS_PID) || pid == 0 || pid > INT32_MAX)
		return;
	e->pid_ns = cr_pid_ns_self();
	e->pid_start = cr_pid_start_lo((pid_t)pid);
}

/* Allocate an entry and fill it privately with (id, transport). */
static int cr_entry_prepare(struct connreg_handle *reg, struct cr_thread *t, const void *id,
			    size_t len, uint64_t transport, uint32_t *idx)
{
	int rc = cr_entry_alloc(reg, t, idx);

	if (rc)
		return rc;
	struct cr_entry *e = cr_entry_at(reg, *idx);
	/*
	 * Private until the publishing CAS (ORD-5): plain stores; never
	 * changed after it (INV-2). A recoverer reads them after our death (ORD-15).
	 */
	if (caa_likely(!cr_debug_publish_unfilled))
		e->transport = transport;
	CR_FAULT();
	e->key_len = (uint32_t)len;
	cr_pid_identity(reg, transport, e);
	memcpy(e->key, id, len);
	return 0;
}

/*
 * The unlinking step, written once for every writer (replace, cas,
 * unregister, reap): note the entry about to be unlinked in w_old, CAS the
 * index slot from hit->val to `to`, and on success retire the unlinked
 * entry and clear the note. Call inside a read-side section, so the noted
 * entry cannot be recycled while the note names it (a recoverer reads the
 * note only while the dead thread's epoch still pins it, recover.c).
 * Returns 1 when the CAS landed (hit->val unlinked), 0 when the slot had
 * changed (the note is left for cr_unlink_none or the next attempt).
 */
int cr_unlink_cas(struct connreg_handle *reg, struct cr_thread *t, struct cr_hit *hit, uint64_t to)
{
	/*
	 * ORD-8(w): release: a settler that reads this note has seen our
	 * previous retire too (not only in C11's release sequence); the
	 * seq_cst CAS below publishes the note before the unlink, and a
	 * recoverer reads it after our death (ORD-15(w)).
	 */
	atomic_store_explicit(&t->slot->w_old, cr_slot_idx(hit->val), memory_order_release);
	CR_FAULT();
	/*
	 * ORD-5(w) publish (when `to` is live) + ORD-3(w) unlink in one seq_cst
	 * CAS: a new entry's contents are released to readers, and the epoch
	 * read in cr_entry_retire comes after the unlink. ORD-8(w): a settler
	 * that sees the unlink sees the note above.
	 */
	if (!atomic_compare_exchange_strong_explicit(hit->slot, &hit->val, to,
						     memory_order_seq_cst, memory_order_relaxed))
		return 0;
	CR_FAULT();
	cr_retire_unlinked(reg, t, cr_slot_idx(hit->val));
	return 1;
}

/*
 * Nothing was unlinked: clear the note while still inside the section, so
 * it can never name an entry that is later recycled.
 */
void cr_unlink_none(struct cr_thread *t)
{
	/* ORD-8(w): release, as in cr_retire_unlinked. */
	atomic_store_explicit(&t->slot->w_old, CR_IDX_NONE, memory_order_release);
}

/*
 * Swap entry idx in for the live slot of id, if there is one. Lock-free:
 * the CAS fails only when another writer changed that slot. Returns 1 and
 * *old when replaced, 0 when id is absent. Call inside a section.
 */
static int cr_replace_live(struct connreg_handle *reg, struct cr_thread *t, const void *id, size_t len,
			   uint64_t h, uint32_t idx, uint32_t *old)
{
	struct cr_hit hit;

	while (cr_index_find(reg, id, (uint32_t)len, h, &hit)) {
		if (cr_unlink_cas(reg, t, &hit, cr_slot_live(cr_fp(h), idx))) {
			*old = cr_slot_idx(hit.val);
			return 1;
		}
	}
	cr_unlink_none(t);
	return 0;
}

/*
 * Take a stripe lock, waiting at most CONNREG_RECLAIM_WAIT_MS: a holder
 * that is stopped (SIGSTOP, a debugger) must not wedge inserts forever.
 */
static int cr_stripe_lock(struct connreg_handle *reg, struct cr_stripe *s)
{
	struct timespec deadline;
	int rc;

#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer (GCC 12) does not intercept pthread_mutex_clocklock. */
	cr_deadline_after(&deadline, CLOCK_REALTIME, CONNREG_RECLAIM_WAIT_MS);
	rc = pthread_mutex_timedlock(&s->mu, &deadline);
#else
	/* CLOCK_MONOTONIC: a wall-clock step must not stretch or cut the bound. */
	cr_deadline_after(&deadline, CLOCK_MONOTONIC, CONNREG_RECLAIM_WAIT_MS);
	rc = pthread_mutex_clocklock(&s->mu, CLOCK_MONOTONIC, &deadline);
#endif
	if (rc == EOWNERDEAD) {
		/*
		 * The holder died mid-insert. The index is consistent after
		 * any single CAS; its ledger and entries are settled when its
		 * reader slot is recovered (recover.c).
		 */
		pthread_mutex_consistent(&s->mu);
		rc = 0;
	}
	if (rc == ETIMEDOUT) {
		cr_counter_bump(&reg->hdr->ctr_writer_eagain);
		return -EAGAIN;
	}
	/* ENOTRECOVERABLE, EINVAL: only a corrupt segment gets here. */
	return rc ? -EPROTO : 0;
}

/* Retire what a replace or remove unlinked, and clear the recovery note. */
void cr_retire_unlinked(struct connreg_handle *reg, struct cr_thread *t, uint32_t old)
{
	cr_entry_retire(reg, old);
	/* ORD-8(w): release: the retire is visible to whoever no longer sees us unlinking. */
	atomic_store_explicit(&t->slot->w_old, CR_IDX_NONE, memory_order_release);
}

/*
 * Insert (or, when id appeared meanwhile, replace) under the stripe lock,
 * which rules out a second insert of the same id. Returns 1 when it
 * replaced, 0 when it inserted, -ENOSPC at capacity, or an error.
 */
static int cr_insert_locked(struct connreg_handle *reg, struct cr_thread *t, const void *id,
			    size_t len, uint64_t h, uint32_t idx, uint32_t *old)
{
	struct cr_stripe *stripe = cr_stripe_for(reg, h);
	int rc = cr_stripe_lock(reg, stripe);

	if (rc)
		return rc;
	CR_FAULT();
	cr_read_lock(reg, t->slot);
	if (cr_replace_live(reg, t, id, len, h, idx, old)) {
		rc = 1;
	} else {
		/* Ledger first, then admission (ORD-9), then the publishing CAS. */
		cr_count_begin_insert(t, idx);
		rc = cr_count_admit(reg, t);
		if (!rc)
			rc = cr_index_insert(reg, h, idx);
		if (rc)
			cr_count_abort(t);
		else
			cr_count_commit(t);
	}
	cr_read_unlock(t->slot);
	pthread_mutex_unlock(&stripe->mu);
	return rc;
}

/*
 * Remove the id in hit's slot: ledger first (count.h, its pending removal
 * names a tomb unique to this removal), then the unlinking step. 1 when it
 * landed; 0 when the slot changed meanwhile (ledger restored; the caller
 * re-probes). Call inside a section.
 */
int cr_remove_at(struct connreg_handle *reg, struct cr_thread *t, struct cr_hit *hit, uint32_t home)
{
	uint64_t tomb;

	/* The notify note (see cr_notify_note): a removal feeds the change feed too. */
	/* Relaxed: only a recoverer reads it, after our death (ORD-15(w)). */
	atomic_store_explicit(&t->slot->notify, home + 1, memory_order_relaxed);
	tomb = cr_count_begin_remove(t, hit->pos);
	if (cr_unlink_cas(reg, t, hit, tomb)) {
		cr_count_commit(t);
		cr_notify_bucket(reg, home);
		CR_FAULT();
		/* Relaxed: as above. */
		atomic_store_explicit(&t->slot->notify, 0, memory_order_relaxed);
		return 1;
	}
	cr_count_abort(t);
	/* Relaxed: as above. */
	atomic_store_explicit(&t->slot->notify, 0, memory_order_relaxed);
	return 0;
}

/*
 * The notify note: before its first publishing CAS a writer records the
 * home bucket it will wake, so that if it dies before waking it, its
 * recoverer wakes the waiters (recover.c). Relaxed: the seq_cst CAS that
 * follows orders the note before the change, and a recoverer reads it
 * only after the writer is dead.
 */
static inline void cr_notify_note(struct connreg_handle *reg, struct cr_thread *t, uint64_t h)
{
	/* Relaxed: as said above; ORD-15(w): read by our recoverer after our death. */
	atomic_store_explicit(&t->slot->notify, cr_home(reg, h) + 1, memory_order_relaxed);
}

static inline void cr_notify_done(struct connreg_handle *reg, struct cr_thread *t, uint64_t h,
				  bool changed)
{
	if (changed)
		cr_notify(reg, h);
	CR_FAULT();
	/* Relaxed: only recovery reads it, after our death. */
	atomic_store_explicit(&t->slot->notify, 0, memory_order_relaxed);
}

/* Shared by register and update_transport. */
static int cr_write(connreg_t *reg, const void *id, size_t id_len, uint64_t transport,
		    bool insert)
{
	struct cr_thread *t;
	uint32_t idx, old = CR_IDX_NONE;
	uint64_t h;
	int rc = cr_check_id(reg, id, id_len), replaced;

	if (rc)
		return rc;
	rc = cr_thread_get(reg, &t);
	if (rc)
		return rc;
	h = cr_hash(reg, id, id_len);
	rc = cr_entry_prepare(reg, t, id, id_len, transport, &idx);
	if (rc)
		return rc;

	cr_notify_note(reg, t, h);
	cr_read_lock(reg, t->slot);
	replaced = cr_replace_live(reg, t, id, id_len, h, idx, &old);
	cr_read_unlock(t->slot);

	if (!replaced && insert) {
		/* Taken outside a section: a stalled lock holder must not stall grace periods. */
		rc = cr_insert_locked(reg, t, id, id_len, h, idx, &old);
		if (rc < 0) {
			cr_entry_free_unpublished(reg, t, idx);
			cr_notify_done(reg, t, h, false);
			return rc;
		}
		replaced = rc == 1;
	} else if (!replaced) {
		cr_entry_free_unpublished(reg, t, idx);
		cr_notify_done(reg, t, h, false);
		return -ENOENT;
	}
	if (caa_unlikely(cr_debug_publish_unfilled)) {
		/* The broken build: fill after publishing (test_linearizability must catch it). */
		struct timespec nap = { 0, 200 * 1000 };

		nanosleep(&nap, NULL);
		cr_entry_at(reg, idx)->transport = transport;
	}
	cr_entry_mark_live(reg, t, idx);
	cr_notify_done(reg, t, h, true);
	return 0;
}

int connreg_register(connreg_t *reg, const void *id, size_t id_len, uint64_t transport)
{
	return cr_write(reg, id, id_len, transport, true);
}

int connreg_update_transport(connreg_t *reg, const void *id, size_t id_len, uint64_t transport)
{
	return cr_write(reg, id, id_len, transport, false);
}

int connreg_cas_transport(connreg_t *reg, const void *id, size_t id_len, uint64_t expected,
			  uint64_t desired, uint64_t *current)
{
	struct cr_thread *t;
	struct cr_hit hit;
	uint32_t idx, old = CR_IDX_NONE;
	uint64_t h, cur = expected;
	int rc = cr_check_id(reg, id, id_len);

	if (rc)
		return rc;
	rc = cr_thread_get(reg, &t);
	if (rc)
		return rc;
	h = cr_hash(reg, id, id_len);

	/* Cheap early answer for a lost race: no entry is allocated for it. */
	cr_read_lock(reg, t->slot);
	if (!cr_index_find(reg, id, (uint32_t)id_len, h, &hit))
		rc = -ENOENT;
	else if ((cur = cr_entry_at(reg, cr_slot_idx(hit.val))->transport) != expected)
		rc = -EAGAIN;
	cr_read_unlock(t->slot);
	if (rc)
		goto out;

	rc = cr_entry_prepare(reg, t, id, id_len, desired, &idx);
	if (rc)
		goto out;
	cr_notify_note(reg, t, h);
	cr_read_lock(reg, t->slot);
	for (;;) {
		if (!cr_index_find(reg, id, (uint32_t)id_len, h, &hit)) {
			rc = -ENOENT;
			break;
		}
		/*
		 * Inside the section the entry behind hit.val cannot be
		 * recycled, so "slot still holds hit.val" (the CAS) implies
		 * "transport is still cur": compare and swap are one step.
		 */
		cur = cr_entry_at(reg, cr_slot_idx(hit.val))->transport;
		if (cur != expected) {
			rc = -EAGAIN;
			break;
		}
		if (cr_unlink_cas(reg, t, &hit, cr_slot_live(cr_fp(h), idx))) {
			old = cr_slot_idx(hit.val);
			break;
		}
	}
	if (old == CR_IDX_NONE)
		cr_unlink_none(t);
	cr_read_unlock(t->slot);
	if (old == CR_IDX_NONE) {
		cr_entry_free_unpublished(reg, t, idx);
		cr_notify_done(reg, t, h, false);
		goto out;
	}
	cr_entry_mark_live(reg, t, idx);
	cr_notify_done(reg, t, h, true);
	return 0;
out:
	if (rc == -EAGAIN && current)
		*current = cur;
	return rc;
}

int connreg_unregister(connreg_t *reg, const void *id, size_t id_len)
{
	struct cr_thread *t;
	struct cr_hit hit;
	uint32_t old = CR_IDX_NONE;
	uint64_t h;
	int rc = cr_check_id(reg, id, id_len);

	if (rc)
		return rc;
	rc = cr_thread_get(reg, &t);
	if (rc)
		return rc;
	h = cr_hash(reg, id, id_len);
	cr_read_lock(reg, t->slot);
	while (cr_index_find(reg, id, (uint32_t)id_len, h, &hit)) {
		if (cr_remove_at(reg, t, &hit, cr_home(reg, h))) {
			old = cr_slot_idx(hit.val);
			break;
		}
	}
	if (old == CR_IDX_NONE)
		cr_unlink_none(t);
	cr_read_unlock(t->slot);
	return 0;
}
