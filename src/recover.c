/*
 * recover.c: what happens when a thread dies at any instruction.
 *
 * A thread's death is seen through its reader slot's liveness lock
 * (owner.h); whoever takes the lock of a dead owner recovers the slot here,
 * while holding it (so recoverers are serialized, and one that dies is
 * itself recovered). Every step below reads the segment, never the dead
 * thread's memory, and is idempotent: CAS on state words that carry a
 * generation, ledger settlement recomputed from the index.
 *
 * The writer protocol that makes this possible (registry.c), in order:
 *   notify note  slot.notify = 1 + home           (before any change)
 *   insert       claim position p (state OWNED(s)), fill it, ledger +1
 *                pending insert p, publish: one store of p's LIVE meta
 *   update       one store of the transport in place (stripe lock held)
 *   removal      ledger -1 pending removal p, slot.w_old = p, tomb CAS on
 *                p's meta, p -> RETIRED(epoch), w_old cleared
 *   ledger       pending none
 *   notify       waiters woken, then slot.notify = 0
 *
 * Death table: died after ... -> left behind -> what recovery does
 *   claiming / filling position p       p OWNED(s), not LIVE          -> retired
 *   ledger +1 pending insert p          insert not landed             -> ledger -1, p retired
 *   the publishing store                insert landed                 -> ledger keeps +1, p LIVE
 *   an update's transport store         the update landed             -> nothing (pid identity
 *                                                                        "unknown" until rewritten)
 *   ledger -1 pending removal at p      p still LIVE                  -> ledger +1 (not landed)
 *   noting w_old                        same                          -> same
 *   the tomb CAS                        p = TOMB(s), in w_old         -> ledger keeps -1, p retired
 *   retiring p                          w_old still set               -> nothing (not LIVE)
 *   any change, before notify           waiters asleep                -> home bucket woken
 *   holding a stripe lock               EOWNERDEAD for the next locker -> made consistent
 *   inside a lookup                     slot epoch pinned             -> epoch cleared
 *   recovering another slot             that slot's lock owner-dead   -> recovered again
 * docs/design.md §9 has the argument for each line.
 */
#include "count.h"
#include "index.h"
#include "owner.h"
#include "pool.h"
#include "recover.h"
#include "notify.h"
#include "fault.h"

/*
 * The position a dead slot was removing (its w_old). It was LIVE when
 * noted, inside the dead thread's read-side section, whose epoch still
 * pins it: it cannot have been claimed again. If it is not LIVE now, it was
 * tombed (by the dead thread or by someone else) and must be retired,
 * whether its inserter already marked it LIVE or still holds it OWNED
 * (then that inserter's mark-live CAS fails, as after any retire).
 */
static void cr_recover_unlinking(struct connreg_handle *reg, uint32_t old)
{
	if (old >= reg->n_entries)
		return;
	/* ORD-10(r): acquire pairs with the release of whoever retired or freed it. */
	uint64_t v = atomic_load_explicit(&reg->states[old], memory_order_acquire);
	uint64_t kind = cr_st_kind(v);

	if ((kind == CR_ST_LIVE || kind == CR_ST_OWNED) && !cr_index_reaches(reg, old))
		cr_entry_retire_state(reg, old, v);
}

/* A change the dead thread published but may not have announced. */
static void cr_recover_notify(struct connreg_handle *reg, uint32_t note)
{
	if (note != 0 && note - 1 < reg->n_buckets)
		cr_notify_bucket(reg, note - 1);	/* a spurious wake-up is harmless */
}

void cr_slot_recover(struct connreg_handle *reg, uint32_t i)
{
	struct cr_rslot *s = &reg->rslots[i];
	/*
	 * ORD-15(r) (here and below): the dead owner's last stores, visible
	 * once its token was taken (the acquire itself adds nothing).
	 */
	uint32_t old = atomic_load_explicit(&s->w_old, memory_order_acquire);
	uint32_t note = atomic_load_explicit(&s->notify, memory_order_acquire);

	CR_FAULT();
	/* The ledger first: it asks whether our entries are still OWNED by the dead slot. */
	cr_count_recover_slot(reg, i);
	CR_FAULT();
	cr_pool_recover_slot(reg, i);
	CR_FAULT();
	cr_recover_unlinking(reg, old);
	CR_FAULT();
	cr_recover_notify(reg, note);
	/*
	 * ORD-8(w): release, as in cr_remove_at: a settler that no
	 * longer sees this note also sees the retire above.
	 */
	atomic_store_explicit(&s->w_old, CR_IDX_NONE, memory_order_release);
	/* Relaxed: only a recoverer reads it; the release store of owner below publishes it (ORD-11). */
	atomic_store_explicit(&s->notify, 0, memory_order_relaxed);
	/* ORD-4(w): leave the dead thread's section: release, after the settlement above. */
	atomic_store_explicit(&s->epoch, 0, memory_order_release);
	/* ORD-11(w): release pairs with the acquire loads of owner in owner.c and thread.c. */
	atomic_store_explicit(&s->owner, 0, memory_order_release);
	cr_counter_bump(&reg->hdr->ctr_slots_recovered);
	CR_FAULT();
}

bool cr_slot_alive_or_recover(struct connreg_handle *reg, uint32_t i)
{
	uint32_t k;
	enum cr_take r = cr_owner_take(reg, i, &k);

	if (r != CR_TAKE_DEAD)
		return cr_take_alive(r);
	cr_slot_recover(reg, i);
	cr_token_give(reg, k);
	return false;
}

unsigned cr_slots_reap_dead(struct connreg_handle *reg)
{
	/* ORD-12(r): acquire pairs with the release CAS-max of a claimer (thread.c). */
	uint32_t hwm = atomic_load_explicit(&reg->hdr->rslot_hwm, memory_order_acquire);
	unsigned n = 0;

	if (hwm > reg->n_rslots)
		hwm = reg->n_rslots;
	for (uint32_t i = 0; i < hwm; i++) {
		/* Relaxed: a peek; cr_owner_take decides. */
		if (atomic_load_explicit(&reg->rslots[i].owner, memory_order_relaxed) == 0)
			continue;
		n += !cr_slot_alive_or_recover(reg, i);
	}
	return n;
}
