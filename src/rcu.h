/*
 * rcu.h: read-side sections and grace periods that span processes.
 *
 * A reader announces itself in its own reader slot (one cache line in the
 * segment) by storing the global epoch it saw, and withdraws by storing 0.
 * A writer that wants to reuse entries unlinked at epoch r advances the
 * global epoch, makes every reader's announcement visible (membarrier(2)
 * GLOBAL_EXPEDITED, or a full fence on both sides when a process could not
 * register for it), and then scans the slots: once no slot holds an epoch
 * <= r, no reader can still hold such an entry. A slot pinned across two
 * grace periods is checked for a dead owner (owner.h) and recovered. docs/design.md has the
 * whole argument (INV-3; ORD-1..ORD-4 below refer to it, §14 lists both sides of each).
 */
#ifndef CONNREG_RCU_H
#define CONNREG_RCU_H

#include <stdatomic.h>
#include <sys/types.h>
#include <urcu/compiler.h>

#include "handle.h"
#include "thread.h"

/*
 * Enter a read-side section. Everything read from the index until
 * cr_read_unlock stays valid: no entry reachable at any moment of the
 * section is reused before it ends. Returns what the slot held: 0, or the
 * epoch of an outer section of this thread on this slot that the call is
 * nested in (a lookup from a signal handler that interrupted one). Such a
 * section is left announced: it began earlier, so its epoch protects all
 * the nested one reads, and the nested one must not end it. Pass the
 * value to cr_read_unlock.
 */
static inline uint64_t cr_read_lock(const struct connreg_handle *reg, struct cr_rslot *slot)
{
	/*
	 * Relaxed: the slot is written only by this thread (and the handlers
	 * it runs, which finish before it goes on), so program order is enough.
	 */
	uint64_t outer = atomic_load_explicit(&slot->epoch, memory_order_relaxed);

	if (caa_unlikely(outer != 0))
		return outer;
	/*
	 * ORD-1(r): seq_cst load of the global epoch, so an epoch newer than the
	 * one a writer read after unlinking (ORD-3) implies this section sees
	 * that unlink. Pairs with the seq_cst bump in cr_gp_poll.
	 */
	uint64_t e = atomic_load_explicit(&reg->hdr->epoch, memory_order_seq_cst);

	/*
	 * ORD-2(w) (announce): the slot store must be visible to a grace-period
	 * scan before any index load below can return an entry. Release so a
	 * scan that reads it also orders after the previous section's reads.
	 * Pairs with the acquire loads of the scan in cr_gp_poll.
	 */
	atomic_store_explicit(&slot->epoch, e, memory_order_release);
	if (caa_likely(reg->light)) {
		/*
		 * ORD-2(w): store->load order comes from the writer's
		 * membarrier(GLOBAL_EXPEDITED), which runs a full barrier on
		 * this thread if it is running; only the compiler must not
		 * reorder.
		 */
		atomic_signal_fence(memory_order_seq_cst);
	} else {
		/* ORD-2(w) fallback: full store->load fence, pairs with cr_gp_poll's fence. */
		atomic_thread_fence(memory_order_seq_cst);
	}
	return 0;
}

/*
 * Is this thread inside a section on slot already? The fast lookup asks
 * before it announces, and leaves a nested lookup to the slow path.
 */
static inline bool cr_read_nested(const struct cr_rslot *slot)
{
	/* Relaxed: as cr_read_lock's first load. */
	return atomic_load_explicit(&slot->epoch, memory_order_relaxed) != 0;
}

/*
 * cr_read_lock for a process known to be light (the fast lookup checks
 * reg->fast_len_max, which is 0 otherwise) and a section known not to be
 * nested (cr_read_nested): no test, no fence. End it with outer 0.
 */
static inline void cr_read_lock_light(const struct connreg_handle *reg, struct cr_rslot *slot)
{
	/* ORD-1(r): as cr_read_lock; pairs with the seq_cst bump in cr_gp_poll. */
	uint64_t e = atomic_load_explicit(&reg->hdr->epoch, memory_order_seq_cst);

	/* ORD-2(w) (announce): as cr_read_lock; pairs with cr_gp_poll's acquire scan. */
	atomic_store_explicit(&slot->epoch, e, memory_order_release);
	/* ORD-2(w): the writer's membarrier orders store->load; only the compiler must not. */
	atomic_signal_fence(memory_order_seq_cst);
}

/* Leave a section: outer is what cr_read_lock returned (0 for the fast lookup's). */
static inline void cr_read_unlock(struct cr_rslot *slot, uint64_t outer)
{
	/*
	 * ORD-4(w) (withdraw): every read of the section happens before the
	 * store of 0; a scan that reads it (acquire) may then reuse what the
	 * section saw. Pairs with the acquire loads in cr_gp_poll. A nested
	 * section stores the outer one's epoch back, unchanged.
	 */
	atomic_store_explicit(&slot->epoch, outer, memory_order_release);
}

/*
 * Try to complete a grace period: advance the epoch, make every reader's
 * announcement visible, scan the reader slots (releasing slots of dead
 * threads), and raise the segment's safe epoch. Returns the safe epoch:
 * entries retired at an epoch below it can be reused. The caller must not
 * be inside a read-side section.
 */
uint64_t cr_gp_poll(struct connreg_handle *reg, struct cr_thread *self);

/* Per-process set-up (membarrier registration, fork handlers, pid identity). */
int cr_rcu_process_init(bool *light);

#endif /* CONNREG_RCU_H */
