/*
 * rcu.c: grace periods that span processes, and the per-process set-up
 * they need (membarrier registration). See rcu.h for the read side and
 * docs/design.md §7 for the memory-ordering argument (INV-3).
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "owner.h"
#include "rcu.h"
#include "recover.h"
#include "fault.h"

/* Process-local membarrier state; re-established after fork (the child's mm starts unregistered). */
static pthread_mutex_t cr_proc_mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t cr_proc_pid;
static bool cr_proc_membarrier;		/* this process may issue GLOBAL_EXPEDITED */
static pthread_once_t cr_atfork_once = PTHREAD_ONCE_INIT;

/*
 * A child forked while another thread held cr_proc_mu would find it held
 * forever: hold it across fork(), then release it on both sides.
 */
static void cr_proc_mu_prepare(void)
{
	pthread_mutex_lock(&cr_proc_mu);
}

static void cr_proc_mu_after(void)
{
	pthread_mutex_unlock(&cr_proc_mu);
}

static void cr_install_atfork(void)
{
	pthread_atfork(cr_proc_mu_prepare, cr_proc_mu_after, cr_proc_mu_after);
}

static int cr_membarrier(int cmd)
{
	return (int)syscall(__NR_membarrier, cmd, 0, 0);
}

static bool cr_sanitizer_thread(void)
{
#if defined(__SANITIZE_THREAD__)
	return true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
	return true;
#else
	return false;
#endif
#else
	return false;
#endif
}

int cr_rcu_process_init(bool *light)
{
	pid_t pid = getpid();

	cr_thread_process_init();
	pthread_once(&cr_atfork_once, cr_install_atfork);
	pthread_mutex_lock(&cr_proc_mu);
	cr_pid_process_init();
	if (cr_proc_pid != pid) {
		int q = cr_membarrier(MEMBARRIER_CMD_QUERY);
		const char *off = getenv("CONNREG_NO_MEMBARRIER");

		cr_proc_membarrier = false;
		/* TSan cannot see membarrier's ordering: keep the fence path there. */
		if (q > 0 && (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
		    (q & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) && !(off && *off == '1') &&
		    !cr_sanitizer_thread())
			cr_proc_membarrier =
				cr_membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
		cr_proc_pid = pid;
	}
	*light = cr_proc_membarrier;
	pthread_mutex_unlock(&cr_proc_mu);
	return 0;
}

/*
 * Make every reader's announcement (ORD-2) visible to the scan that
 * follows. false when that cannot be guaranteed.
 */
static bool cr_barrier_all_readers(void)
{
	if (cr_proc_membarrier)
		/* Runs a full barrier on every running thread of every registered process. */
		return cr_membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
	/* ORD-2(r) fallback pair: our fence against each fenced reader's fence. */
	atomic_thread_fence(memory_order_seq_cst);
	return true;
}

uint64_t cr_gp_poll(struct connreg_handle *reg, struct cr_thread *self)
{
	struct cr_header *h = reg->hdr;
	uint64_t e, g, min, cur;
	uint32_t hwm;

	(void)self;
	/*
	 * ORD-1(w): seq_cst load and bump (the CAS below); readers that load
	 * the new value see every unlink before it (with ORD-3).
	 */
	e = atomic_load_explicit(&h->epoch, memory_order_seq_cst);
	/*
	 * ORD-1(w): the bump. g is the epoch from BEFORE the barrier: the one we set, or the newer
	 * one our failed CAS saw. An epoch read after the barrier could come
	 * from a concurrent grace period whose readers' announcements our
	 * barrier did not cover (design.md §7, "Which epoch").
	 */
	if (atomic_compare_exchange_strong_explicit(&h->epoch, &e, e + 1, memory_order_seq_cst,
						    memory_order_seq_cst))
		g = e + 1;
	else
		g = e;
	CR_FAULT();
	/* ORD-13(r): seq_cst, after our fence: a light reader claimed before it is seen. */
	if (!cr_barrier_all_readers() ||
	    (!cr_proc_membarrier && atomic_load_explicit(&h->light_readers, memory_order_seq_cst)))
		/* ORD-6(r): acquire pairs with the release CAS-max below, done by others. */
		return atomic_load_explicit(&h->safe_epoch, memory_order_acquire);

	/*
	 * Now and then, recover slots of dead threads even when they do not
	 * hold back this grace period: their entries and ledgers come back
	 * without anyone calling a repair function.
	 */
	if ((g & 63) == 0)
		cr_slots_reap_dead(reg);
	min = g;
	/* ORD-12(r): acquire pairs with the release CAS-max of a claimer (thread.c). */
	hwm = atomic_load_explicit(&h->rslot_hwm, memory_order_acquire);
	if (hwm > reg->n_rslots)
		hwm = reg->n_rslots;
	for (uint32_t i = 0; i < hwm; i++) {
		struct cr_rslot *s = &reg->rslots[i];
		/* ORD-2(r) ORD-4(r): acquire pairs with the reader's release stores of its epoch. */
		uint64_t re = atomic_load_explicit(&s->epoch, memory_order_acquire);

		if (re == 0 || re >= min)
			continue;
		/* In one section across two grace periods: stopped, slow, or dead. */
		if (re + 2 <= g && !cr_slot_alive_or_recover(reg, i))
			continue;	/* its owner is gone: recovered (epoch cleared) */
		min = re;
	}
	/*
	 * ORD-6(r): acquire: when another grace period's value is higher and
	 * is what we return, our caller reuses entries below it, so it must
	 * see the withdrawals that grace period saw (its release CAS-max).
	 */
	cur = atomic_load_explicit(&h->safe_epoch, memory_order_acquire);
	/*
	 * ORD-6(w): release CAS-max: whoever reuses an entry after reading this
	 * sees the withdrawals our scan saw (ORD-4); acquire on failure, as
	 * the load above (the value seen may be returned).
	 */
	while (cur < min && !atomic_compare_exchange_weak_explicit(&h->safe_epoch, &cur, min,
								   memory_order_acq_rel,
								   memory_order_acquire))
		;
	cr_counter_bump(&h->ctr_grace_periods);
	return cur > min ? cur : min;
}
