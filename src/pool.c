/*
 * pool.c: entry allocation, retirement and reuse (see pool.h).
 */
#include <errno.h>
#include <time.h>

#include "clock.h"
#include "count.h"
#include "index.h"
#include "pool.h"
#include "rcu.h"
#include "fault.h"

/* States examined before a grace period is attempted. */
#define CR_ALLOC_WINDOW 256u

/* Try to claim entry i for slot `owner`; 1 on success. */
static int cr_try_claim(_Atomic uint64_t *st, uint64_t safe, uint64_t owner)
{
	/* Relaxed peek; the CAS below is what decides. */
	uint64_t v = atomic_load_explicit(st, memory_order_relaxed);
	uint64_t kind = cr_st_kind(v);

	if (kind == CR_ST_FREE ||
	    (kind == CR_ST_RETIRED && cr_st_payload(v) < safe)) {
		uint64_t claimed = cr_st_make(CR_ST_OWNED, cr_st_gen(v) + 1, owner);

		/*
		 * Acquire: pairs with the release of the retire/free that wrote
		 * v, so that writer's last touches come before our refill.
		 */
		return atomic_compare_exchange_strong_explicit(st, &v, claimed, memory_order_acquire,
							       memory_order_relaxed);
	}
	return 0;
}

int cr_entry_alloc(struct connreg *reg, struct cr_thread *t, uint32_t *idx)
{
	uint32_t n = reg->n_entries, cur = t->alloc_cursor;
	uint64_t scanned = 0, next_gp = CR_ALLOC_WINDOW, deadline = 0;
	/*
	 * ORD-6: acquire pairs with the release CAS-max of safe_epoch in
	 * cr_gp_poll: the readers' withdrawals it saw come before our reuse.
	 */
	uint64_t safe = atomic_load_explicit(&reg->hdr->safe_epoch, memory_order_acquire);

	for (;;) {
		for (unsigned k = 0; k < CR_ALLOC_WINDOW; k++) {
			uint32_t i = cur;

			cur = cur + 1 == n ? 0 : cur + 1;
			if (cr_try_claim(&reg->states[i], safe, t->slot_idx)) {
				CR_FAULT();
				t->alloc_cursor = cur;
				*idx = i;
				return 0;
			}
		}
		scanned += CR_ALLOC_WINDOW;
		if (scanned >= next_gp) {
			/* A window found nothing: a grace period, then at most one per pass. */
			uint64_t now_safe = cr_gp_poll(reg, t);

			if (now_safe > safe)
				safe = now_safe;
			next_gp = scanned + n;
		}
		if (scanned < n || scanned % n >= CR_ALLOC_WINDOW)
			continue;

		/*
		 * A whole pass found nothing: reclamation is held back (a stopped
		 * reader) or a dead thread owns entries. Recover dead slots, then
		 * wait, bounded by CONNREG_RECLAIM_WAIT_MS.
		 */
		cr_slots_reap_dead(reg);
		uint64_t now = cr_now_ms();
		if (deadline == 0) {
			deadline = now + CONNREG_RECLAIM_WAIT_MS;
		} else if (now >= deadline) {
			t->alloc_cursor = cur;
			cr_counter_bump(&reg->hdr->ctr_writer_eagain);
			return -EAGAIN;
		}
		struct timespec nap = { 0, 100 * 1000 };
		nanosleep(&nap, NULL);
		/* ORD-6 again: another writer may have completed a grace period meanwhile. */
		uint64_t now_safe = atomic_load_explicit(&reg->hdr->safe_epoch, memory_order_acquire);
		if (now_safe > safe)
			safe = now_safe;
	}
}

void cr_entry_free_unpublished(struct connreg *reg, struct cr_thread *t, uint32_t idx)
{
	_Atomic uint64_t *st = &reg->states[idx];
	/* Relaxed: an entry we own and never published; nobody else writes its state. */
	uint64_t v = atomic_load_explicit(st, memory_order_relaxed);

	if (cr_st_kind(v) != CR_ST_OWNED || cr_st_payload(v) != t->slot_idx)
		return;
	/* Release: our writes to the entry come before the next owner's (pairs with cr_try_claim). */
	CR_FAULT();
	atomic_store_explicit(st, cr_st_make(CR_ST_FREE, cr_st_gen(v), 0), memory_order_release);
	CR_FAULT();
}

void cr_entry_mark_live(struct connreg *reg, struct cr_thread *t, uint32_t idx)
{
	_Atomic uint64_t *st = &reg->states[idx];
	/* Relaxed peek; the CAS below decides. */
	uint64_t v = atomic_load_explicit(st, memory_order_relaxed);

	if (cr_st_kind(v) != CR_ST_OWNED || cr_st_payload(v) != t->slot_idx)
		return;		/* already unlinked and retired by another writer */
	/* Relaxed is enough: the state only records ownership; the index CAS published the data. */
	atomic_compare_exchange_strong_explicit(st, &v, cr_st_make(CR_ST_LIVE, cr_st_gen(v), 0),
						memory_order_relaxed, memory_order_relaxed);
	CR_FAULT();
}

void cr_entry_retire(struct connreg *reg, uint32_t idx)
{
	_Atomic uint64_t *st = &reg->states[idx];
	/*
	 * ORD-3: seq_cst load after our seq_cst unlink CAS: a reader that
	 * announces a later epoch cannot see the unlinked entry.
	 */
	uint64_t r = atomic_load_explicit(&reg->hdr->epoch, memory_order_seq_cst);
	uint64_t v = atomic_load_explicit(st, memory_order_relaxed);

	CR_FAULT();
	for (;;) {
		uint64_t kind = cr_st_kind(v);

		if (kind != CR_ST_LIVE && kind != CR_ST_OWNED)
			return;		/* a recoverer retired it already */
		/*
		 * Release: pairs with the acquire CAS in cr_try_claim (the next
		 * owner sees everything before the retirement).
		 */
		if (atomic_compare_exchange_weak_explicit(
			    st, &v, cr_st_make(CR_ST_RETIRED, cr_st_gen(v), r),
			    memory_order_release, memory_order_relaxed)) {
			CR_FAULT();
			return;
		}
	}
}

/* Retire idx if it is still in state v and no slot reaches it. */
static void cr_settle_unreachable(struct connreg *reg, uint32_t idx, uint64_t v)
{
	if (cr_index_reaches(reg, idx)) {
		if (cr_st_kind(v) == CR_ST_OWNED)
			/* Relaxed: ownership bookkeeping only, as in cr_entry_mark_live. */
			atomic_compare_exchange_strong_explicit(
				&reg->states[idx], &v, cr_st_make(CR_ST_LIVE, cr_st_gen(v), 0),
				memory_order_relaxed, memory_order_relaxed);
		return;
	}
	/*
	 * Unreachable: never published, or unlinked and not yet retired. Both
	 * are safe to retire now; readers may still hold the second kind.
	 * ORD-3: the epoch is read after the unlink, whoever made it.
	 */
	uint64_t r = atomic_load_explicit(&reg->hdr->epoch, memory_order_seq_cst);
	/* Release: pairs with the acquire CAS in cr_try_claim. */
	atomic_compare_exchange_strong_explicit(&reg->states[idx], &v,
						cr_st_make(CR_ST_RETIRED, cr_st_gen(v), r),
						memory_order_release, memory_order_relaxed);
}

void cr_pool_recover_slot(struct connreg *reg, uint32_t slot_idx)
{
	struct cr_rslot *s = &reg->rslots[slot_idx];
	/* Acquire: the dead owner's note; its stores are all visible once it exited. */
	uint32_t old = atomic_load_explicit(&s->w_old, memory_order_acquire);

	/* The ledger first: it asks whether our entries are still OWNED by the dead slot. */
	cr_count_recover_slot(reg, slot_idx);

	for (uint32_t i = 0; i < reg->n_entries; i++) {
		/* Acquire: the dead owner's writes to the entry are visible before we hash its key. */
		uint64_t v = atomic_load_explicit(&reg->states[i], memory_order_acquire);

		if (cr_st_kind(v) == CR_ST_OWNED && cr_st_payload(v) == slot_idx)
			cr_settle_unreachable(reg, i, v);
	}
	/* The entry it was unlinking: retire it if the unlink happened and nobody retired it. */
	if (old < reg->n_entries) {
		uint64_t v = atomic_load_explicit(&reg->states[old], memory_order_acquire);

		if (cr_st_kind(v) == CR_ST_LIVE)
			cr_settle_unreachable(reg, old, v);
	}
}
