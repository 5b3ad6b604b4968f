/*
 * pool.c: position state transitions: free, mark live, retire, and the
 * settlement of a dead thread's positions (see pool.h; claiming, in probe
 * order, is cr_index_claim in index.c). Every transition is one store or
 * CAS on the position's state word (INV-6); a published record's key is
 * not written again until its position is claimed anew (INV-2).
 */
#include "index.h"
#include "pool.h"
#include "fault.h"

void cr_entry_free_unpublished(struct connreg_handle *reg, struct cr_thread *t, uint32_t idx)
{
	_Atomic uint64_t *st = &reg->states[idx];
	/* Relaxed: an entry we own and never published; nobody else writes its state. */
	uint64_t v = atomic_load_explicit(st, memory_order_relaxed);

	if (cr_st_kind(v) != CR_ST_OWNED || cr_st_payload(v) != t->slot_idx)
		return;
	/* ORD-10(w): our writes to the entry come before the next owner's (cr_try_claim). */
	CR_FAULT();
	atomic_store_explicit(st, cr_st_make(CR_ST_FREE, cr_st_gen(v), 0), memory_order_release);
	CR_FAULT();
}

void cr_entry_mark_live(struct connreg_handle *reg, struct cr_thread *t, uint32_t idx)
{
	_Atomic uint64_t *st = &reg->states[idx];
	/* Relaxed: a peek; the CAS below decides. */
	uint64_t v = atomic_load_explicit(st, memory_order_relaxed);

	if (cr_st_kind(v) != CR_ST_OWNED || cr_st_payload(v) != t->slot_idx)
		return;		/* already unlinked and retired by another writer */
	/* Relaxed: the state only records ownership; the index CAS published the data. */
	atomic_compare_exchange_strong_explicit(st, &v, cr_st_make(CR_ST_LIVE, cr_st_gen(v), 0),
						memory_order_relaxed, memory_order_relaxed);
	CR_FAULT();
}

void cr_entry_retire(struct connreg_handle *reg, uint32_t idx)
{
	_Atomic uint64_t *st = &reg->states[idx];
	/*
	 * ORD-3(r): seq_cst load after our seq_cst unlink CAS: a reader that
	 * announces a later epoch cannot see the unlinked entry.
	 */
	uint64_t r = atomic_load_explicit(&reg->hdr->epoch, memory_order_seq_cst);
	/* Relaxed: a first guess for the CAS loop below. */
	uint64_t v = atomic_load_explicit(st, memory_order_relaxed);

	CR_FAULT();
	for (;;) {
		uint64_t kind = cr_st_kind(v);

		if (kind != CR_ST_LIVE && kind != CR_ST_OWNED)
			return;		/* a recoverer retired it already */
		/*
		 * ORD-10(w): release pairs with the acquire CAS in cr_try_claim
		 * (the next owner sees everything before the retirement).
		 */
		if (atomic_compare_exchange_weak_explicit(
			    st, &v, cr_st_make(CR_ST_RETIRED, cr_st_gen(v), r),
			    memory_order_release, memory_order_relaxed)) {
			CR_FAULT();
			return;
		}
	}
}

void cr_entry_retire_state(struct connreg_handle *reg, uint32_t idx, uint64_t v)
{
	/*
	 * ORD-3(r): the epoch is read after the unlink, whoever made it (the
	 * caller saw the entry unreachable after the unlink CAS).
	 */
	uint64_t r = atomic_load_explicit(&reg->hdr->epoch, memory_order_seq_cst);

	/* ORD-10(w): pairs with the acquire CAS in cr_try_claim. Fails harmlessly if v moved on. */
	atomic_compare_exchange_strong_explicit(&reg->states[idx], &v,
						cr_st_make(CR_ST_RETIRED, cr_st_gen(v), r),
						memory_order_release, memory_order_relaxed);
}

/* An entry OWNED by a dead slot: LIVE if it was published, else retired. */
static void cr_settle_owned(struct connreg_handle *reg, uint32_t idx, uint64_t v)
{
	if (cr_index_reaches(reg, idx)) {
		/* Relaxed: ownership bookkeeping only, as in cr_entry_mark_live. */
		atomic_compare_exchange_strong_explicit(
			&reg->states[idx], &v, cr_st_make(CR_ST_LIVE, cr_st_gen(v), 0),
			memory_order_relaxed, memory_order_relaxed);
		return;
	}
	/*
	 * Unreachable: never published, or published and unlinked and not yet
	 * retired. Both are safe to retire now; readers may still hold the
	 * second kind, which the retirement epoch accounts for.
	 */
	cr_entry_retire_state(reg, idx, v);
}

void cr_pool_recover_slot(struct connreg_handle *reg, uint32_t slot_idx)
{
	for (uint32_t i = 0; i < reg->n_entries; i++) {
		/*
		 * ORD-15(r): the dead owner's writes to the entry are visible
		 * before we hash its key (we hold its token; acquire is extra).
		 */
		uint64_t v = atomic_load_explicit(&reg->states[i], memory_order_acquire);

		if (cr_st_kind(v) == CR_ST_OWNED && cr_st_payload(v) == slot_idx)
			cr_settle_owned(reg, i, v);
	}
}
