/*
 * thread.c: reader-slot claims and thread records (see thread.h).
 */
#define _GNU_SOURCE	/* gettid */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "owner.h"
#include "recover.h"
#include "thread.h"

_Atomic uint64_t cr_fork_gen;
__thread struct cr_tls_cache cr_tls __attribute__((tls_model("initial-exec")));

/* This thread's records, across all handles (only this thread touches the list). */
static __thread struct cr_thread *cr_mine __attribute__((tls_model("initial-exec")));
/* cr_close_gen when this thread last looked for orphaned records. */
static __thread uint64_t cr_swept_gen __attribute__((tls_model("initial-exec")));
/* Bumped by every close that orphaned another thread's record. */
static _Atomic uint64_t cr_close_gen;

static pthread_key_t cr_exit_key;
static pthread_once_t cr_once = PTHREAD_ONCE_INIT;

/* Free slot i in the segment (its owner is us, or promised idle by connreg_close). */
static void cr_slot_free(struct connreg_handle *reg, uint32_t i)
{
	struct cr_rslot *s = &reg->rslots[i];

	/* ORD-4(w): leave any section before giving the slot away. */
	atomic_store_explicit(&s->epoch, 0, memory_order_release);
	/* ORD-11(w): release pairs with the acquire loads of owner in owner.c and the claim. */
	atomic_store_explicit(&s->owner, 0, memory_order_release);
}

/* Let go of a record's slot and token: the slot first, so it never names a free token. */
static void cr_record_let_go(struct cr_thread *t, bool free_slot)
{
	if (free_slot)
		cr_slot_free(t->reg, t->slot_idx);
	cr_token_give(t->reg, t->token);
}

static void cr_mine_unlink(struct cr_thread *t)
{
	for (struct cr_thread **pp = &cr_mine; *pp; pp = &(*pp)->tnext) {
		if (*pp == t) {
			*pp = t->tnext;
			return;
		}
	}
}

static void cr_reg_unlink(struct connreg_handle *reg, struct cr_thread *t)
{
	for (struct cr_thread **pp = &reg->threads; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			return;
		}
	}
}

/* Drop one of this thread's records (not in cr_mine any more). */
static void cr_record_drop(struct cr_thread *t)
{
	struct connreg_handle *reg = t->reg;

	pthread_mutex_lock(&reg->threads_mu);
	if (!t->orphaned)
		cr_reg_unlink(reg, t);
	/* An orphaned slot was already freed in the segment by the closer. */
	cr_record_let_go(t, !t->orphaned);
	pthread_mutex_unlock(&reg->threads_mu);
	if (cr_tls.thr == t)
		cr_tls_forget();
	free(t);
	cr_handle_put(reg);
}

/* Records of handles that another thread closed: let their locks go. */
static void cr_sweep_orphans(void)
{
	/* Relaxed: a hint; the orphaned flag is read under the handle's mutex. */
	uint64_t g = atomic_load_explicit(&cr_close_gen, memory_order_relaxed);

	if (g == cr_swept_gen)
		return;
	cr_swept_gen = g;
	for (struct cr_thread *t = cr_mine, *next; t; t = next) {
		bool orphaned;

		next = t->tnext;
		pthread_mutex_lock(&t->reg->threads_mu);
		orphaned = t->orphaned;
		pthread_mutex_unlock(&t->reg->threads_mu);
		if (orphaned) {
			cr_mine_unlink(t);
			cr_record_drop(t);
		}
	}
}

/* pthread key destructor: the thread is exiting; let every slot go. */
static void cr_thread_exit(void *arg)
{
	(void)arg;
	while (cr_mine) {
		struct cr_thread *t = cr_mine;

		cr_mine = t->tnext;
		cr_record_drop(t);
	}
}

static void cr_after_fork_child(void)
{
	/* Relaxed: a process-local counter; handles compare it on every call. */
	atomic_fetch_add_explicit(&cr_fork_gen, 1, memory_order_relaxed);
	/*
	 * The records are the parent's thread's: this child holds none of
	 * their locks (glibc empties the child's robust list). Forget them
	 * (their memory is a private copy) so neither a claim nor this
	 * thread's exit touches the parent's slots.
	 */
	cr_mine = NULL;
	cr_tls_forget();
	pthread_setspecific(cr_exit_key, NULL);
}

static void cr_once_init(void)
{
	pthread_key_create(&cr_exit_key, cr_thread_exit);
	pthread_atfork(NULL, NULL, cr_after_fork_child);
}

void cr_thread_process_init(void)
{
	pthread_once(&cr_once, cr_once_init);
}

/*
 * Claim a free slot for token tok, which we hold: bind the token to it
 * first, so a taker of our token after our death finds the slot.
 */
static int cr_slot_claim(struct connreg_handle *reg, uint32_t tok, uint32_t *out)
{
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < reg->n_rslots; i++) {
			struct cr_rslot *s = &reg->rslots[i];
			/* Relaxed: a peek; the CAS below claims. */
			uint64_t expect = atomic_load_explicit(&s->owner, memory_order_relaxed);

			/* Second pass: a slot whose owner is gone is recovered and becomes free. */
			if (expect != 0 && (pass == 0 || cr_slot_alive_or_recover(reg, i)))
				continue;
			expect = 0;
			cr_token_bind(reg, tok, i);
			/*
			 * ORD-11(r): acquire pairs with the release store of 0 by the
			 * previous owner or recoverer (we inherit its ledger).
			 */
			if (!atomic_compare_exchange_strong_explicit(&s->owner, &expect,
								     cr_owner_ref(tok),
								     memory_order_acquire,
								     memory_order_relaxed))
				continue;
			s->tid = (uint32_t)gettid();
			s->pid = (uint32_t)getpid();
			/* Relaxed (here and below): this thread's own words, published by ORD-12. */
			atomic_store_explicit(&s->w_old, CR_IDX_NONE, memory_order_relaxed);
			atomic_store_explicit(&s->notify, 0, memory_order_relaxed);
			atomic_store_explicit(&s->flags, reg->light ? CR_RSLOT_LIGHT : 0,
					      memory_order_relaxed);
			if (reg->light)
				/* ORD-13(w): a writer without membarrier must see light readers. */
				atomic_store_explicit(&reg->hdr->light_readers, 1, memory_order_seq_cst);
			/*
			 * ORD-12(w) (here and below): release CAS-max: scans that read
			 * the new hwm see an initialised slot; the relaxed load seeds it.
			 */
			uint32_t hwm = atomic_load_explicit(&reg->hdr->rslot_hwm, memory_order_relaxed);
			while (hwm < i + 1 &&
			       !atomic_compare_exchange_weak_explicit(&reg->hdr->rslot_hwm, &hwm, i + 1,
								      memory_order_release,
								      memory_order_relaxed))
				;
			*out = i;
			return 0;
		}
	}
	return -EAGAIN;
}

/* A token, then a slot bound to it. 0, or -EAGAIN (counted) when either runs out. */
static int cr_claim(struct connreg_handle *reg, uint32_t *tok, uint32_t *slot)
{
	uint32_t dead_slot;
	int rc = cr_token_take_free(reg, tok, &dead_slot);

	if (!rc) {
		/* The token's last holder died owning a slot: recover it before reuse. */
		if (dead_slot != CR_IDX_NONE)
			cr_slot_recover(reg, dead_slot);
		cr_token_bind(reg, *tok, CR_IDX_NONE);
		rc = cr_slot_claim(reg, *tok, slot);
		if (rc)
			cr_token_give(reg, *tok);
	}
	if (rc)
		cr_counter_bump(&reg->hdr->ctr_writer_eagain);
	return rc;
}

int cr_thread_attach(struct connreg_handle *reg, struct cr_thread **out)
{
	struct cr_thread *t;
	uint32_t idx, tok;
	int rc;

	cr_sweep_orphans();
	for (t = cr_mine; t; t = t->tnext)
		if (t->reg == reg && t->handle_gen == reg->handle_gen)
			break;
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t)
			return -ENOMEM;
		rc = cr_claim(reg, &tok, &idx);
		if (rc) {
			free(t);
			return rc;
		}
		t->token = tok;
		t->reg = reg;
		t->handle_gen = reg->handle_gen;
		t->slot = &reg->rslots[idx];
		t->slot_idx = idx;
		/* Relaxed: a process-local reference count; the mutex below orders the list. */
		atomic_fetch_add_explicit(&reg->refs, 1, memory_order_relaxed);
		pthread_mutex_lock(&reg->threads_mu);
		t->next = reg->threads;
		reg->threads = t;
		pthread_mutex_unlock(&reg->threads_mu);
		t->tnext = cr_mine;
		cr_mine = t;
		/* Any non-NULL value makes the destructor run at thread exit. */
		pthread_setspecific(cr_exit_key, &cr_mine);
	}
	cr_tls.reg = reg;
	cr_tls.handle_gen = reg->handle_gen;
	cr_tls.thr = t;
	cr_tls.slot = t->slot;
	cr_tls.last = &reg->index[reg->n_buckets - 1];
	*out = t;
	return 0;
}

void cr_threads_close(struct connreg_handle *reg)
{
	bool orphaned_any = false;

	pthread_mutex_lock(&reg->threads_mu);
	for (struct cr_thread *t = reg->threads, *next; t; t = next) {
		bool mine = false;

		next = t->next;
		for (struct cr_thread *m = cr_mine; m; m = m->tnext)
			mine |= m == t;
		if (mine) {
			cr_mine_unlink(t);
			cr_record_let_go(t, true);
			if (cr_tls.thr == t)
				cr_tls_forget();
			free(t);
			/* Relaxed: the user's reference, dropped below, keeps reg alive. */
			atomic_fetch_sub_explicit(&reg->refs, 1, memory_order_relaxed);
			continue;
		}
		/*
		 * Another thread's slot: free it in the segment now (the caller
		 * promised that thread is not inside a call on reg); only that
		 * thread can let go of its token, which it does at its next
		 * claim or at exit.
		 */
		cr_slot_free(reg, t->slot_idx);
		t->orphaned = true;
		orphaned_any = true;
	}
	reg->threads = NULL;
	pthread_mutex_unlock(&reg->threads_mu);
	if (orphaned_any)
		/* Relaxed: a hint that makes the other threads sweep (cr_sweep_orphans). */
		atomic_fetch_add_explicit(&cr_close_gen, 1, memory_order_relaxed);
	cr_handle_put(reg);
}
