/*
 * rcu.h: read-side sections and grace periods that span processes.
 *
 * A reader announces itself in its own reader slot (one cache line in the
 * segment) by storing the global epoch it saw, and withdraws by storing 0.
 * A writer that wants to reuse entries unlinked at epoch r advances the
 * global epoch, makes every reader's announcement visible (membarrier(2)
 * GLOBAL_EXPEDITED, or a full fence on both sides when a process could not
 * register for it), and then scans the slots: once no slot holds an epoch
 * <= r, no reader can still hold such an entry. docs/design.md has the
 * whole argument (ORD-1..ORD-4 below refer to it).
 */
#ifndef CONNREG_RCU_H
#define CONNREG_RCU_H

#include <stdatomic.h>
#include <sys/types.h>
#include <urcu/compiler.h>

#include "handle.h"

/* Process-wide: bumped in the child after fork() (pthread_atfork). */
extern _Atomic uint64_t cr_fork_gen;

struct cr_tls_cache {
	const struct connreg *reg;
	uint64_t handle_gen;
	struct cr_thread *thr;
};
extern __thread struct cr_tls_cache cr_tls;

/* Create reg's pthread key; its destructor gives the slot back at thread exit. */
int cr_thread_key_create(struct connreg *reg);

/* Slow path: look up or claim this thread's slot for reg. */
int cr_thread_attach(struct connreg *reg, struct cr_thread **out);

/*
 * This thread's record for reg: one compare on a thread-local cache in the
 * common case. Returns 0, -ECHILD (handle from before fork) or -EAGAIN (no
 * free reader slot).
 */
static inline int cr_thread_get(struct connreg *reg, struct cr_thread **out)
{
	/* Process-local word; no ordering needed beyond seeing the child's bump. */
	if (caa_unlikely(atomic_load_explicit(&cr_fork_gen, memory_order_relaxed) != reg->fork_gen))
		return -ECHILD;
	if (caa_likely(cr_tls.reg == reg && cr_tls.handle_gen == reg->handle_gen)) {
		*out = cr_tls.thr;
		return 0;
	}
	return cr_thread_attach(reg, out);
}

/*
 * Enter a read-side section. Everything read from the index until
 * cr_read_unlock stays valid: no entry reachable at any moment of the
 * section is reused before it ends.
 */
static inline void cr_read_lock(const struct connreg *reg, struct cr_rslot *slot)
{
	/*
	 * ORD-1: seq_cst load of the global epoch, so an epoch newer than the
	 * one a writer read after unlinking (ORD-3) implies this section sees
	 * that unlink. Pairs with the seq_cst bump in cr_gp_poll.
	 */
	uint64_t e = atomic_load_explicit(&reg->hdr->epoch, memory_order_seq_cst);

	/*
	 * ORD-2 (announce): the slot store must be visible to a grace-period
	 * scan before any index load below can return an entry. Release so a
	 * scan that reads it also orders after the previous section's reads.
	 * Pairs with the acquire loads of the scan in cr_gp_poll.
	 */
	atomic_store_explicit(&slot->epoch, e, memory_order_release);
	if (caa_likely(reg->light)) {
		/*
		 * ORD-2: store->load order comes from the writer's
		 * membarrier(GLOBAL_EXPEDITED), which runs a full barrier on
		 * this thread if it is running; only the compiler must not
		 * reorder.
		 */
		atomic_signal_fence(memory_order_seq_cst);
	} else {
		/* ORD-2 fallback: full store->load fence, pairs with cr_gp_poll's fence. */
		atomic_thread_fence(memory_order_seq_cst);
	}
}

static inline void cr_read_unlock(struct cr_rslot *slot)
{
	/*
	 * ORD-4 (withdraw): every read of the section happens before the
	 * store of 0; a scan that reads it (acquire) may then reuse what the
	 * section saw. Pairs with the acquire loads in cr_gp_poll.
	 */
	atomic_store_explicit(&slot->epoch, 0, memory_order_release);
}

/*
 * Try to complete a grace period: advance the epoch, make every reader's
 * announcement visible, scan the reader slots (releasing slots of dead
 * processes), and raise the segment's safe epoch. Returns the safe epoch:
 * entries retired at an epoch below it can be reused. The caller must not
 * be inside a read-side section.
 */
uint64_t cr_gp_poll(struct connreg *reg, struct cr_thread *self);

/* Per-process set-up (membarrier registration, fork handler). 0 or -errno. */
int cr_rcu_process_init(bool *light);

/* Recover every reader slot whose owner has exited; returns how many. */
unsigned cr_slots_reap_dead(struct connreg *reg);

/* Give back every slot this handle claimed (connreg_close). */
void cr_threads_release_all(struct connreg *reg);

/*
 * 1 when the process recorded in an owner word (pid | start_lo << 32) has
 * certainly exited: no such pid, or a pid whose start time differs.
 */
int cr_owner_dead(uint64_t owner);

/* True when an owner word names the calling process (no system call). */
bool cr_owner_is_self(uint64_t owner);

/* Low 31 bits of pid's start time in clock ticks; 0 when unknown. */
uint32_t cr_pid_start_lo(pid_t pid);

#endif /* CONNREG_RCU_H */
