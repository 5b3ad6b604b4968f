/*
 * thread.h: which reader slot the calling thread uses for a handle.
 *
 * A thread claims a slot on its first call through a handle and holds that
 * slot's liveness lock (owner.h) until it lets the slot go: at thread exit
 * (a process-wide pthread key destructor), at connreg_close from the same
 * thread, or, when another thread closed the handle, at its next claim.
 * A fork child holds none of its parent's locks and never touches its
 * parent's records: the atfork child handler forgets them.
 */
#ifndef CONNREG_THREAD_H
#define CONNREG_THREAD_H

#include <stdatomic.h>
#include <urcu/compiler.h>

#include "handle.h"

/* Process-wide: bumped in the child after fork() (pthread_atfork). */
extern _Atomic uint64_t cr_fork_gen;

struct cr_tls_cache {
	const struct connreg_handle *reg;
	uint64_t handle_gen;
	struct cr_thread *thr;
	struct cr_rslot *slot;		/* thr->slot: the fast lookup's announce word, one load away */
	const struct cr_bucket *last;	/* reg's last bucket: the fast lookup's wrap test */
};
/* Initial-exec: one %fs-relative load, no __tls_get_addr, in the .so too. */
extern __thread struct cr_tls_cache cr_tls __attribute__((tls_model("initial-exec")));

/*
 * Empty the cache (handle closed, record freed, fork child): handle_gen 0
 * matches no handle (they count from 1), so the next call takes the slow path.
 */
static inline void cr_tls_forget(void)
{
	cr_tls.reg = NULL;
	cr_tls.handle_gen = 0;
}

/* Per-process set-up: the fork handlers and the thread-exit key. */
void cr_thread_process_init(void);

/* Slow path: look up or claim this thread's slot for reg. */
int cr_thread_attach(struct connreg_handle *reg, struct cr_thread **out);

/*
 * This thread's record for reg: one compare on a thread-local cache in the
 * common case. Returns 0, -ECHILD (handle from before fork), -EAGAIN (no
 * free reader slot) or -ENOMEM.
 */
static inline int cr_thread_get(struct connreg_handle *reg, struct cr_thread **out)
{
	/* Relaxed: a process-local word; no ordering needed beyond seeing the child's bump. */
	if (caa_unlikely(atomic_load_explicit(&cr_fork_gen, memory_order_relaxed) != reg->fork_gen))
		return -ECHILD;
	if (caa_likely(cr_tls.reg == reg && cr_tls.handle_gen == reg->handle_gen)) {
		*out = cr_tls.thr;
		return 0;
	}
	return cr_thread_attach(reg, out);
}

/*
 * connreg_close: give back every slot claimed through reg. The calling
 * thread's own slot is released at once; other threads' slots are freed
 * in the segment (owner 0) and their liveness locks are let go by those
 * threads (next claim or exit). Drops the user's reference.
 */
void cr_threads_close(struct connreg_handle *reg);

#endif /* CONNREG_THREAD_H */
