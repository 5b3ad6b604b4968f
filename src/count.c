/*
 * count.c: the live-id count (see count.h and docs/design.md, "Capacity"):
 * the settled ledgers sum to the live ids, live_hint is never below that
 * sum, and it never exceeds capacity (INV-5).
 */
#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "clock.h"
#include "count.h"
#include "index.h"
#include "owner.h"
#include "fault.h"

static void cr_ledger_store(struct cr_rslot *s, uint32_t delta, uint32_t pend)
{
	/*
	 * ORD-7(w): release: this store comes before the index CAS it announces
	 * (the CAS is seq_cst and follows in program order), and whoever reads
	 * the ledger with acquire also sees what came before it. Pairs with
	 * the acquire loads in cr_ledger_resolve's callers.
	 */
	CR_FAULT();
	atomic_store_explicit(&s->ledger, cr_ledger_make(delta, pend), memory_order_release);
	CR_FAULT();
}

static uint32_t cr_own_delta(struct cr_thread *t)
{
	/* Relaxed: we are the only writer of our own ledger (an inherited one came with ORD-11). */
	return cr_ledger_delta(atomic_load_explicit(&t->slot->ledger, memory_order_relaxed));
}

void cr_count_begin_insert(struct cr_thread *t, uint32_t pos)
{
	cr_ledger_store(t->slot, cr_own_delta(t) + 1u, 1u + pos);
}

uint32_t cr_count_begin_remove(struct cr_thread *t, uint32_t pos)
{
	cr_ledger_store(t->slot, cr_own_delta(t) - 1u, CR_PEND_DEL | pos);
	return cr_meta_tomb_by(t->slot_idx);
}

void cr_count_commit(struct cr_thread *t)
{
	cr_ledger_store(t->slot, cr_own_delta(t), CR_PEND_NONE);
}

void cr_count_abort(struct cr_thread *t)
{
	/* Relaxed: we are the only writer of our own ledger. */
	uint64_t l = atomic_load_explicit(&t->slot->ledger, memory_order_relaxed);
	uint32_t pend = cr_ledger_pend(l);

	if (pend == CR_PEND_NONE)
		return;
	/* Modulo 2^32, like every ledger delta (layout.h). */
	cr_ledger_store(t->slot, cr_ledger_delta(l) + ((pend & CR_PEND_DEL) ? 1u : UINT32_MAX),
			CR_PEND_NONE);
}


/* Is some slot about to retire position e (its w_old)? */
static bool cr_someone_unlinking(struct connreg_handle *reg, uint32_t e, uint32_t hwm)
{
	for (uint32_t i = 0; i < hwm; i++)
		/* ORD-8(r): acquire pairs with the release clear in cr_remove_at. */
		if (atomic_load_explicit(&reg->rslots[i].w_old, memory_order_acquire) == e)
			return true;
	return false;
}

/*
 * Did the dead (or lock-excluded) inserter in slot s publish position e?
 * Published positions are LIVE, or were tombed by someone who noted them
 * in w_old before the CAS and retires them before clearing it. The
 * checks run in that order so that each one's "no" is reliable for the next.
 */
static bool cr_insert_landed(struct connreg_handle *reg, uint32_t s, uint32_t e, uint32_t hwm)
{
	if (e >= reg->n_entries)
		return false;
	if (cr_index_reaches(reg, e) || cr_someone_unlinking(reg, e, hwm))
		return true;
	/*
	 * ORD-8(r): a cleared note we read with acquire shows its retire here
	 * (state no longer ours).
	 */
	uint64_t st = atomic_load_explicit(&reg->states[e], memory_order_acquire);
	return !(cr_st_kind(st) == CR_ST_OWNED && cr_st_payload(st) == s);
}

/*
 * Net delta of slot s with its pending operation settled. A removal counts
 * as done only once its tomb is in place; an insert counts as done unless
 * its thread is dead and never published (a live inserter may still).
 * owner_dead: the caller is recovering s (it holds s's liveness lock, so a
 * liveness probe would answer "alive" for its own hold).
 */
static uint32_t cr_ledger_resolve(struct connreg_handle *reg, uint32_t s, uint64_t l, uint32_t hwm,
				  bool owner_dead)
{
	uint32_t d = cr_ledger_delta(l);	/* modulo 2^32 */
	uint32_t pend = cr_ledger_pend(l);

	if (pend == CR_PEND_NONE)
		return d;
	if (pend & CR_PEND_DEL) {
		uint32_t pos = pend & ~CR_PEND_DEL;
		uint32_t m = pos < reg->n_entries ?
			/* ORD-5(r): acquire, as every meta load; only the value is compared. */
			atomic_load_explicit(cr_meta_at(reg, pos), memory_order_acquire) : 0;

		/*
		 * Only slot s makes tomb 2 + s, and a position is not reused while
		 * s's ledger names it: the tomb there means our removal landed.
		 */
		return m == cr_meta_tomb_by(s) ? d : d + 1u;
	}
	/*
	 * A live inserter may still publish: count it. The liveness lock
	 * answers (owner.h); our own thread's hold reads as alive too (an
	 * insert at capacity sums with its own pending insert).
	 */
	if (!owner_dead && cr_owner_alive(reg, s))
		return d;
	return cr_insert_landed(reg, s, pend - 1u, hwm) ? d : d - 1u;
}

static uint32_t cr_hwm(struct connreg_handle *reg)
{
	/* ORD-12(r): acquire pairs with the release CAS-max in cr_slot_claim. */
	uint32_t hwm = atomic_load_explicit(&reg->hdr->rslot_hwm, memory_order_acquire);

	return hwm > reg->n_rslots ? reg->n_rslots : hwm;
}

static uint64_t cr_ledger_sum(struct connreg_handle *reg)
{
	uint32_t hwm = cr_hwm(reg);
	uint32_t sum = 0;	/* modulo 2^32: exact, since the live count is below it */

	for (uint32_t s = 0; s < hwm; s++) {
		/* ORD-7(r): acquire pairs with cr_ledger_store. */
		uint64_t l = atomic_load_explicit(&reg->rslots[s].ledger, memory_order_acquire);

		sum += cr_ledger_resolve(reg, s, l, hwm, false);
	}
	return sum;
}

/*
 * The hint is at capacity: under count_mu (so two inserters at the
 * boundary never both count the other's pending insert and both fail, nor
 * both skip it and both pass), sum the ledgers and reset the hint.
 */
static int cr_count_admit_exact(struct connreg_handle *reg, struct cr_thread *t)
{
	_Atomic uint64_t *hint = &reg->hdr->live_hint;
	pthread_mutex_t *mu = &reg->hdr->count_mu.mu;
	struct timespec deadline;
	int rc;

	/* pthread_mutex_timedlock takes a CLOCK_REALTIME deadline. */
	cr_deadline_after(&deadline, CLOCK_REALTIME, CONNREG_RECLAIM_WAIT_MS + 1000);
	rc = pthread_mutex_timedlock(mu, &deadline);
	if (rc == EOWNERDEAD) {
		/* Nothing to repair: the sum is recomputed from the ledgers every time. */
		pthread_mutex_consistent(mu);
		rc = 0;
	}
	if (rc == ETIMEDOUT) {
		cr_counter_bump(&reg->hdr->ctr_writer_eagain);
		return -EAGAIN;
	}
	if (rc)
		return -rc;
	CR_FAULT();
	/* ORD-9(r): acquire, as in cr_count_admit. */
	uint64_t n = atomic_load_explicit(hint, memory_order_acquire);
	for (;;) {
		uint64_t want;

		if (n < reg->capacity) {
			want = n + 1;	/* someone made room meanwhile */
		} else {
			/*
			 * Every admitted insert is in the sum (ORD-9), ours too; so are
			 * others that are about to ask: they wait for this lock or go
			 * on the fast path only if we leave room.
			 */
			uint64_t exact = cr_ledger_sum(reg);

			if (exact > reg->capacity) {
				/*
				 * Capacity ids are live besides ours. Withdraw our +1
				 * before the next inserter sums, or it would count us.
				 */
				cr_count_abort(t);
				rc = -ENOSPC;
				break;
			}
			want = exact;
		}
		/* ORD-9(rw): acq_rel, as in cr_count_admit. */
		if (atomic_compare_exchange_strong_explicit(hint, &n, want, memory_order_acq_rel,
							    memory_order_acquire))
			break;
	}
	pthread_mutex_unlock(mu);
	return rc;
}

int cr_count_admit(struct connreg_handle *reg, struct cr_thread *t)
{
	_Atomic uint64_t *hint = &reg->hdr->live_hint;
	/*
	 * ORD-9(r): acquire pairs with the acq_rel CAS of earlier admissions:
	 * their ledger +1 (stored before their CAS) is visible to a later sum.
	 */
	uint64_t n = atomic_load_explicit(hint, memory_order_acquire);

	while (n < reg->capacity) {
		/* ORD-9(rw): acq_rel: our ledger +1 goes out before the unit we take. */
		if (atomic_compare_exchange_weak_explicit(hint, &n, n + 1, memory_order_acq_rel,
							  memory_order_acquire)) {
			CR_FAULT();
			return 0;
		}
	}
	return cr_count_admit_exact(reg, t);
}

uint64_t cr_count_snapshot(struct connreg_handle *reg)
{
	return cr_ledger_sum(reg);
}

void cr_count_recover_slot(struct connreg_handle *reg, uint32_t slot_idx)
{
	struct cr_rslot *s = &reg->rslots[slot_idx];
	/* ORD-7(r) ORD-15(r): acquire; the dead owner's last store is its final word. */
	uint64_t l = atomic_load_explicit(&s->ledger, memory_order_acquire);

	if (cr_ledger_pend(l) == CR_PEND_NONE)
		return;
	cr_ledger_store(s, cr_ledger_resolve(reg, slot_idx, l, cr_hwm(reg), true), CR_PEND_NONE);
}
