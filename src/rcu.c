/*
 * rcu.c: reader slots, thread attach/detach, and grace periods that span
 * processes. See rcu.h for the read side and docs/design.md for the
 * memory-ordering argument.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pool.h"
#include "rcu.h"
#include "fault.h"

_Atomic uint64_t cr_fork_gen;
__thread struct cr_tls_cache cr_tls;

/* Process-local membarrier state; re-established after fork (the child's mm starts unregistered). */
static pthread_mutex_t cr_proc_mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t cr_proc_pid;
static bool cr_proc_membarrier;		/* this process may issue GLOBAL_EXPEDITED */
static uint32_t cr_proc_start_lo;	/* low bits of our start time, for owner words */
static pthread_once_t cr_atfork_once = PTHREAD_ONCE_INIT;

#define CR_OWNER_RECOVER	(1ull << 63)

static void cr_after_fork_child(void)
{
	/* Process-local counter; handles compare it on every call. */
	atomic_fetch_add_explicit(&cr_fork_gen, 1, memory_order_relaxed);
	cr_tls.reg = NULL;
}

static void cr_install_atfork(void)
{
	pthread_atfork(NULL, NULL, cr_after_fork_child);
}

static int cr_membarrier(int cmd)
{
	return (int)syscall(__NR_membarrier, cmd, 0, 0);
}

/*
 * Start time of pid in clock ticks since boot (field 22 of /proc/PID/stat)
 * and its state letter (field 3: 'Z' zombie, 'X' dead, ...).
 */
static int cr_proc_stat(pid_t pid, uint64_t *start, char *state)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: skip to the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -EIO;
	if (state)
		*state = p[2];
	/* After ") " come fields 3.. ; starttime is field 22, the 20th after it. */
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EIO;
	}
	*start = strtoull(p + 1, NULL, 10);
	return 0;
}

static int cr_proc_start_time(pid_t pid, uint64_t *start)
{
	return cr_proc_stat(pid, start, NULL);
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
	uint64_t start = 0;

	pthread_once(&cr_atfork_once, cr_install_atfork);
	pthread_mutex_lock(&cr_proc_mu);
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
		if (cr_proc_start_time(pid, &start) != 0)
			start = 0;
		cr_proc_start_lo = (uint32_t)(start & 0x7fffffff);
		cr_proc_pid = pid;
	}
	*light = cr_proc_membarrier;
	pthread_mutex_unlock(&cr_proc_mu);
	return 0;
}

uint32_t cr_pid_start_lo(pid_t pid)
{
	uint64_t start;

	if (pid <= 0)
		return 0;
	if (pid == cr_proc_pid)
		return cr_proc_start_lo;
	return cr_proc_start_time(pid, &start) == 0 ? (uint32_t)(start & 0x7fffffff) : 0;
}

static uint64_t cr_owner_self(void)
{
	return (uint64_t)(uint32_t)cr_proc_pid | ((uint64_t)cr_proc_start_lo << 32);
}

bool cr_owner_is_self(uint64_t owner)
{
	return owner == cr_owner_self();
}

int cr_owner_dead(uint64_t owner)
{
	pid_t pid = (pid_t)(uint32_t)owner;
	uint32_t start_lo = (uint32_t)((owner >> 32) & 0x7fffffff);
	uint64_t start;
	char state;

	if (pid <= 0)
		return 0;
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return 1;
	if (cr_proc_stat(pid, &start, &state) != 0)
		return 0;	/* cannot tell (hidepid, another namespace): assume alive */
	/* Exited but not yet waited for: it will never run again. */
	if (state == 'Z' || state == 'X')
		return 1;
	/* The pid exists; it is the same process only if it started at the same time. */
	return start_lo != 0 && (uint32_t)(start & 0x7fffffff) != start_lo;
}

/* ------------------------------------------------------------------ */
/* Reader slots                                                        */
/* ------------------------------------------------------------------ */

/*
 * Return a dead thread's slot to the pool: settle the entries it owned,
 * then clear its epoch and owner. One recoverer at a time: the owner word
 * is first swapped to our identity with CR_OWNER_RECOVER set.
 */
static void cr_slot_recover(struct connreg *reg, uint32_t i, uint64_t dead_owner)
{
	struct cr_rslot *s = &reg->rslots[i];
	uint64_t mine = cr_owner_self() | CR_OWNER_RECOVER;

	/* Claim the recovery; acquire pairs with the dead owner's last stores (visible once it exited). */
	if (!atomic_compare_exchange_strong_explicit(&s->owner, &dead_owner, mine,
						     memory_order_acq_rel, memory_order_relaxed))
		return;
	CR_FAULT();
	cr_pool_recover_slot(reg, i);
	cr_counter_bump(&reg->hdr->ctr_slots_recovered);
	CR_FAULT();
	/* Release: the settled states are visible before the slot can be claimed again. */
	atomic_store_explicit(&s->w_old, CR_IDX_NONE, memory_order_relaxed);
	atomic_store_explicit(&s->epoch, 0, memory_order_release);
	/* Pairs with the acquire CAS of a claimer in cr_slot_claim. */
	atomic_store_explicit(&s->owner, 0, memory_order_release);
}

/* Recover every slot whose owner (or whose recoverer) has exited. */
unsigned cr_slots_reap_dead(struct connreg *reg)
{
	uint32_t hwm = atomic_load_explicit(&reg->hdr->rslot_hwm, memory_order_acquire);
	unsigned n = 0;

	if (hwm > reg->n_rslots)
		hwm = reg->n_rslots;
	for (uint32_t i = 0; i < hwm; i++) {
		/* Acquire: see the owner's published identity (pairs with the claim CAS). */
		uint64_t o = atomic_load_explicit(&reg->rslots[i].owner, memory_order_acquire);

		if (o != 0 && cr_owner_dead(o & ~CR_OWNER_RECOVER)) {
			cr_slot_recover(reg, i, o);
			n++;
		}
	}
	return n;
}

static int cr_slot_claim(struct connreg *reg, uint32_t *out)
{
	uint64_t me = cr_owner_self();

	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < reg->n_rslots; i++) {
			struct cr_rslot *s = &reg->rslots[i];
			uint64_t expect = 0;

			/* Relaxed peek; the CAS below claims. */
			if (atomic_load_explicit(&s->owner, memory_order_relaxed) != 0)
				continue;
			/* Acquire: pairs with the release store of 0 by the previous owner or recoverer. */
			if (!atomic_compare_exchange_strong_explicit(&s->owner, &expect, me,
								     memory_order_acquire,
								     memory_order_relaxed))
				continue;
			s->tid = (uint32_t)syscall(SYS_gettid);
			atomic_store_explicit(&s->w_old, CR_IDX_NONE, memory_order_relaxed);
			/* Relaxed: informational (stat); ordering comes from light_readers below. */
			atomic_store_explicit(&s->flags, reg->light ? CR_RSLOT_LIGHT : 0,
					      memory_order_relaxed);
			if (reg->light)
				/* seq_cst: a writer without membarrier must see light readers (design.md). */
				atomic_store_explicit(&reg->hdr->light_readers, 1, memory_order_seq_cst);
			/* Release: scans that read the new hwm see an initialised slot. */
			uint32_t hwm = atomic_load_explicit(&reg->hdr->rslot_hwm, memory_order_relaxed);
			while (hwm < i + 1 &&
			       !atomic_compare_exchange_weak_explicit(&reg->hdr->rslot_hwm, &hwm, i + 1,
								      memory_order_release,
								      memory_order_relaxed))
				;
			*out = i;
			return 0;
		}
		if (cr_slots_reap_dead(reg) == 0)
			break;
	}
	cr_counter_bump(&reg->hdr->ctr_writer_eagain);
	return -EAGAIN;
}

static void cr_slot_release(struct cr_rslot *s)
{
	/* ORD-4: leave any section before giving the slot away. */
	atomic_store_explicit(&s->epoch, 0, memory_order_release);
	/* Pairs with the acquire CAS of the next claimer in cr_slot_claim. */
	atomic_store_explicit(&s->owner, 0, memory_order_release);
}

static void cr_thread_unlink(struct connreg *reg, struct cr_thread *t)
{
	struct cr_thread **pp;

	for (pp = &reg->threads; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
}

/* pthread key destructor: the thread is exiting. */
static void cr_thread_exit(void *arg)
{
	struct cr_thread *t = arg;
	struct connreg *reg = t->reg;

	pthread_mutex_lock(&reg->threads_mu);
	cr_thread_unlink(reg, t);
	pthread_mutex_unlock(&reg->threads_mu);
	cr_slot_release(t->slot);
	if (cr_tls.thr == t)
		cr_tls.reg = NULL;
	free(t);
}

int cr_thread_key_create(struct connreg *reg)
{
	return -pthread_key_create(&reg->tls_key, cr_thread_exit);
}

int cr_thread_attach(struct connreg *reg, struct cr_thread **out)
{
	struct cr_thread *t = pthread_getspecific(reg->tls_key);
	uint32_t idx;
	int rc;

	if (!t) {
		rc = cr_slot_claim(reg, &idx);
		if (rc)
			return rc;
		t = calloc(1, sizeof(*t));
		if (!t) {
			cr_slot_release(&reg->rslots[idx]);
			return -ENOMEM;
		}
		t->reg = reg;
		t->slot = &reg->rslots[idx];
		t->slot_idx = idx;
		/* Spread the entry scans of different threads over the pool. */
		t->alloc_cursor = (uint32_t)(((uint64_t)idx * 0x9e3779b97f4a7c15ull >> 32) %
					     reg->n_entries);
		rc = pthread_setspecific(reg->tls_key, t);
		if (rc) {
			cr_slot_release(t->slot);
			free(t);
			return -rc;
		}
		pthread_mutex_lock(&reg->threads_mu);
		t->next = reg->threads;
		reg->threads = t;
		pthread_mutex_unlock(&reg->threads_mu);
	}
	cr_tls.reg = reg;
	cr_tls.handle_gen = reg->handle_gen;
	cr_tls.thr = t;
	*out = t;
	return 0;
}

void cr_threads_release_all(struct connreg *reg)
{
	struct cr_thread *t, *next;

	pthread_key_delete(reg->tls_key);
	pthread_mutex_lock(&reg->threads_mu);
	for (t = reg->threads; t; t = next) {
		next = t->next;
		cr_slot_release(t->slot);
		free(t);
	}
	reg->threads = NULL;
	pthread_mutex_unlock(&reg->threads_mu);
	if (cr_tls.reg == reg)
		cr_tls.reg = NULL;
}

/* ------------------------------------------------------------------ */
/* Grace periods                                                       */
/* ------------------------------------------------------------------ */

/*
 * Make every reader's announcement (ORD-2) visible to the scan that
 * follows. false when that cannot be guaranteed.
 */
static bool cr_barrier_all_readers(void)
{
	if (cr_proc_membarrier)
		/* Runs a full barrier on every running thread of every registered process. */
		return cr_membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
	/* ORD-2 fallback pair: our fence against each fenced reader's fence. */
	atomic_thread_fence(memory_order_seq_cst);
	return true;
}

uint64_t cr_gp_poll(struct connreg *reg, struct cr_thread *self)
{
	struct cr_header *h = reg->hdr;
	uint64_t e, g, min, cur;
	uint32_t hwm;

	(void)self;
	/* ORD-3: seq_cst bump; readers that load the new value (ORD-1) see every earlier unlink. */
	e = atomic_load_explicit(&h->epoch, memory_order_seq_cst);
	atomic_compare_exchange_strong_explicit(&h->epoch, &e, e + 1, memory_order_seq_cst,
						memory_order_seq_cst);
	CR_FAULT();
	if (!cr_barrier_all_readers() ||
	    (!cr_proc_membarrier && atomic_load_explicit(&h->light_readers, memory_order_seq_cst)))
		/* Acquire: pairs with the release CAS-max below, done by others. */
		return atomic_load_explicit(&h->safe_epoch, memory_order_acquire);

	g = atomic_load_explicit(&h->epoch, memory_order_seq_cst);
	/*
	 * Now and then, recover slots of dead processes even when they do not
	 * hold back this grace period: their entries and ledgers come back
	 * without anyone calling a repair function.
	 */
	if ((g & 63) == 0)
		cr_slots_reap_dead(reg);
	min = g;
	/* Acquire: pairs with the release CAS-max in cr_slot_claim. */
	hwm = atomic_load_explicit(&h->rslot_hwm, memory_order_acquire);
	if (hwm > reg->n_rslots)
		hwm = reg->n_rslots;
	for (uint32_t i = 0; i < hwm; i++) {
		struct cr_rslot *s = &reg->rslots[i];
		/* ORD-2/ORD-4: acquire pairs with the reader's release stores of its epoch. */
		uint64_t re = atomic_load_explicit(&s->epoch, memory_order_acquire);

		if (re == 0 || re >= min)
			continue;
		if (re + 2 <= g) {
			/* In one section across two grace periods: stopped, slow, or dead. */
			uint64_t o = atomic_load_explicit(&s->owner, memory_order_acquire);

			if (o != 0 && cr_owner_dead(o & ~CR_OWNER_RECOVER)) {
				cr_slot_recover(reg, i, o);
				continue;
			}
		}
		min = re;
	}
	/* Release: whoever reuses an entry after reading this sees the readers' withdrawals (ORD-4). */
	cur = atomic_load_explicit(&h->safe_epoch, memory_order_relaxed);
	while (cur < min && !atomic_compare_exchange_weak_explicit(&h->safe_epoch, &cur, min,
								   memory_order_release,
								   memory_order_relaxed))
		;
	cr_counter_bump(&h->ctr_grace_periods);
	return cur > min ? cur : min;
}
