/*
 * registry.c: the public operations, composed from the index (index.h),
 * the position states (pool.h) and the read side (rcu.h).
 *
 * Writers that insert or change an id hold its home's stripe lock: inserts
 * of one id are serialized, so it is never live twice (INV-1), and an
 * update stores the new transport in place, one atomic store on the
 * record's transport word. An insert claims a record position, fills it
 * privately, and publishes it with one store of its meta word. A removal
 * takes no lock: one CAS turns the LIVE meta word into a tomb, and the
 * position is reused only after a grace period.
 */
#define _GNU_SOURCE	/* pthread_mutex_clocklock */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "index.h"
#include "owner.h"
#include "pool.h"
#include "count.h"
#include "rcu.h"
#include "recover.h"
#include "registry.h"
#include "notify.h"
#include "fault.h"

static inline int cr_check_id(const struct connreg_handle *reg, const void *id, size_t len)
{
	if (caa_unlikely(!reg || !id || len == 0))
		return -EINVAL;
	if (caa_unlikely(len > reg->key_max))
		return -ENAMETOOLONG;
	return 0;
}

/*
 * Every lookup the fast path below does not start: bad arguments, ids
 * longer than 16 bytes, a thread's first call (or a fork child's), a
 * process without membarrier, a lookup nested in one of the thread's own
 * (a signal handler's). flatten: XXH3's short-input code is inlined here
 * too; the true slow paths (thread attach, long ids) stay calls.
 */
static __attribute__((noinline, flatten)) int cr_get_slow(connreg_t *reg, const void *id,
							  size_t id_len, uint64_t *transport)
{
	struct cr_thread *t;
	struct cr_hit hit;
	uint32_t home;
	uint64_t h;
	int rc = cr_check_id(reg, id, id_len);

	if (caa_unlikely(rc || !transport))
		return rc ? rc : -EINVAL;
	rc = cr_thread_get(reg, &t);
	if (caa_unlikely(rc))
		return rc;
	h = cr_hash(reg, id, id_len);
	home = cr_home(reg, h);
	cr_bucket_prefetch(reg, home);
	uint64_t outer = cr_read_lock(reg, t->slot);
	if (cr_index_find_at(reg, id, (uint32_t)id_len, h, home, &hit)) {
		*transport = cr_hit_transport(&hit);
		rc = 0;
	} else {
		rc = -ENOENT;
	}
	cr_read_unlock(t->slot, outer);
	return rc;
}

/*
 * Where the fast path leaves off, still inside its read section: its
 * home bucket bk was full and held no candidate (on: the probe goes on
 * past it), or a tag matched and the key did not (the whole probe again
 * from home). The id is short (at most 16 bytes): its meta word want and
 * its words w say all about it. The handle and the slot are the cached
 * ones the fast path checked (cr_tls), so that it need not keep them.
 * The same steps as cr_get_slow, so the same answer.
 */
static __attribute__((noinline, flatten)) int cr_get_on(const struct cr_bucket *bk, uint32_t want,
							uint64_t lo, uint64_t hi,
							uint64_t *transport, bool on)
{
	const struct connreg_handle *reg = cr_tls.reg;
	struct cr_kw w = { lo, hi };
	uint32_t home = (uint32_t)(bk - reg->index), len = cr_meta_lenc(want);
	struct cr_hit hit;
	bool found;

	if (len == 0 || len > CR_KEY_INLINE)
		__builtin_unreachable();	/* want is the fast path's: a short id */

	if (caa_likely(on))
		found = cr_index_find_on(reg, want, w, NULL, len, home, &hit);
	else
		found = cr_index_find_kw(reg, want, w, NULL, len, home, &hit);
	if (found)
		*transport = cr_hit_transport(&hit);
	cr_read_unlock(cr_tls.slot, 0);
	return found ? 0 : -ENOENT;
}

/*
 * The common lookup, free of calls so that it needs no stack frame, once
 * the caller has checked its arguments and its thread cache: an id of
 * lo_len..hi_len bytes (a sub-range of 1..16, so that each copy carries
 * only its own length classes), this thread's record for reg in the cache
 * (a fork child's cache is emptied by the atfork handler, so the fork
 * check of cr_thread_get is the slow path's), a membarrier process
 * (fast_len_max is 0 otherwise), and a probe that the first two buckets
 * settle (cr_probe_short). Anything else is handed on, inside the
 * section, to cr_get_on. What stays live is kept to what fits the
 * call-clobbered registers: the handle and the id are not needed past
 * the hash, the meta words are not kept past the match.
 */
static inline __attribute__((always_inline)) int
cr_get_fast(connreg_t *reg, const void *id, size_t id_len, uint64_t *transport, uint32_t lo_len,
	    uint32_t hi_len)
{
	const struct cr_bucket *bk;
	const struct cr_rec *r;
	struct cr_rslot *slot;
	struct cr_kw w;
	uint32_t want;
	uint64_t h;

	if (id_len < lo_len || id_len > hi_len)
		__builtin_unreachable();
	w = cr_key_words(id, (uint32_t)id_len);
	h = cr_hash_short(&reg->hkeys, id, id_len);
	bk = &reg->index[cr_home(reg, h)];
	want = cr_meta_live(cr_lenc((uint32_t)id_len), cr_tag(h));
	slot = cr_tls.slot;
	cr_read_lock_light(reg, slot);
	switch (cr_probe_short(bk, &cr_tls.last, want, w, &r)) {
	case CR_PROBE_HIT:
		/* ORD-19(r): as cr_hit_transport. */
		*transport = atomic_load_explicit(&r->transport, memory_order_acquire);
		cr_read_unlock(slot, 0);
		return 0;
	case CR_PROBE_ABSENT:
		cr_read_unlock(slot, 0);
		return -ENOENT;
	case CR_PROBE_AGAIN:
		return cr_get_on(bk, want, w.lo, w.hi, transport, false);
	default:
		return cr_get_on(bk, want, w.lo, w.hi, transport, true);
	}
}

/* Ids of 1..7 bytes: the fast path's copy for their length classes. */
static __attribute__((noinline, flatten)) int cr_get_tiny(connreg_t *reg, const void *id,
							  size_t id_len, uint64_t *transport)
{
	return cr_get_fast(reg, id, id_len, transport, 1, 7);
}

/* Ids of 8..15 bytes (64-bit ids, short names). */
static __attribute__((noinline, flatten)) int cr_get_mid(connreg_t *reg, const void *id,
							 size_t id_len, uint64_t *transport)
{
	return cr_get_fast(reg, id, id_len, transport, 8, CR_KEY_INLINE - 1);
}

__attribute__((flatten)) int connreg_get_transport(connreg_t *reg, const void *id, size_t id_len,
						   uint64_t *transport)
{
	/* Each test apart (the empty asm keeps GCC from merging them): one fused compare-branch. */
	if (caa_unlikely(!reg))
		return -EINVAL;
	__asm__("");
	if (caa_unlikely(!id))
		return -EINVAL;
	__asm__("");
	if (caa_unlikely(!transport))
		return -EINVAL;
	if (caa_unlikely(cr_tls.handle_gen != reg->handle_gen))
		return cr_get_slow(reg, id, id_len, transport);
	/* A lookup nested in one of this thread's (from a signal handler): see cr_read_lock. */
	if (caa_unlikely(cr_read_nested(cr_tls.slot)))
		return cr_get_slow(reg, id, id_len, transport);
	/*
	 * 16 bytes (binary UUIDs) here, with the length a constant, when the
	 * fast path takes them (fast_len_max: 16, or less for a smaller
	 * key_max, 0 without membarrier); shorter ids in their own copies,
	 * one jump away.
	 */
	if (caa_likely(id_len == CR_KEY_INLINE)) {
		if (caa_unlikely(reg->fast_len_max != CR_KEY_INLINE))
			return cr_get_slow(reg, id, id_len, transport);
		return cr_get_fast(reg, id, CR_KEY_INLINE, transport, CR_KEY_INLINE, CR_KEY_INLINE);
	}
	/* One unsigned compare rejects an empty id and one too long for the fast path. */
	if (caa_unlikely(id_len - 1 >= reg->fast_len_max))
		return cr_get_slow(reg, id, id_len, transport);
	if (id_len >= 8)
		return cr_get_mid(reg, id, id_len, transport);
	return cr_get_tiny(reg, id, id_len, transport);
}

/* A transport's pid identity (CONNREG_TRANSPORT_IS_PID), worked out before any lock. */
struct cr_pid_ident {
	uint64_t pid_id;	/* pid_start << 32 | pid (the transport's low 32 bits); 0: none */
	uint32_t pid_ns;
};

static void cr_pid_identity(const struct connreg_handle *reg, uint64_t transport,
			    struct cr_pid_ident *pi)
{
	uint32_t pid = (uint32_t)transport;

	pi->pid_id = 0;
	pi->pid_ns = 0;
	if (!(reg->flags & CONNREG_TRANSPORT_IS_PID) || pid == 0 || pid > INT32_MAX)
		return;
	pi->pid_ns = cr_pid_ns_self();
	pi->pid_id = (uint64_t)cr_pid_start_lo((pid_t)pid) << 32 | pid;
}

/*
 * Set the transport of position pos (owned and unpublished, or LIVE under
 * the id's stripe lock) with its pid identity. The identity word is zeroed
 * first and set last, so a writer that dies midway leaves it "unknown"
 * (reap skips it), never a pid paired with another transport.
 */
static void cr_rec_store(struct connreg_handle *reg, uint32_t pos, uint64_t transport,
			 const struct cr_pid_ident *pi)
{
	bool is_pid = reg->flags & CONNREG_TRANSPORT_IS_PID;
	/* A side entry exists only with the pid flag or long ids (layout.c): not looked at otherwise. */
	struct cr_entry *e = is_pid ? cr_entry_at(reg, pos) : NULL;

	if (is_pid) {
		/* Relaxed: read only under the same stripe lock (reap), or by a recoverer-free reader. */
		atomic_store_explicit(&e->pid_id, 0, memory_order_relaxed);
		CR_FAULT();
		/* Relaxed: as above. */
		atomic_store_explicit(&e->pid_ns, pi->pid_ns, memory_order_relaxed);
	}
	/*
	 * ORD-19(w): pairs with the acquire transport load of a lookup
	 * (cr_rec_transport): an update is one store, seen whole. seq_cst,
	 * not release: the change feed's mark that follows loads its bit
	 * (ORD-18), and that load must not pass this store.
	 */
	atomic_store_explicit(&cr_rec_at(reg, pos)->transport, transport, memory_order_seq_cst);
	CR_FAULT();
	if (is_pid)
		/* Relaxed: as above. */
		atomic_store_explicit(&e->pid_id, pi->pid_id, memory_order_relaxed);
}

/* Fill claimed position pos with id (private until cr_index_publish, ORD-5). */
static void cr_rec_fill(struct connreg_handle *reg, uint32_t pos, const void *id, size_t len,
			uint64_t transport, const struct cr_pid_ident *pi)
{
	struct cr_kw w = cr_key_words(id, (uint32_t)len);

	/*
	 * Plain stores: no reader looks at a record that is not LIVE (ORD-5).
	 * The inline key is the id's first 16 bytes, zero-padded (cr_key_words).
	 */
	memcpy(cr_rec_at(reg, pos)->key, &w.lo, 8);
	memcpy(cr_rec_at(reg, pos)->key + 8, &w.hi, 8);
	if (len > CR_KEY_INLINE) {
		/* Only a long id reads its side entry's length (and there is one: key_max > 16). */
		struct cr_entry *e = cr_entry_at(reg, pos);

		e->key_len = (uint32_t)len;
		memcpy(e->tail, (const uint8_t *)id + CR_KEY_INLINE, len - CR_KEY_INLINE);
	}
	CR_FAULT();
	if (caa_likely(!cr_debug_publish_unfilled))
		cr_rec_store(reg, pos, transport, pi);
}

/*
 * Take a stripe lock, waiting at most CONNREG_RECLAIM_WAIT_MS: a holder
 * that is stopped (SIGSTOP, a debugger) must not wedge writers forever.
 */
int cr_stripe_lock(struct connreg_handle *reg, struct cr_stripe *s)
{
	struct timespec deadline;
	int rc;

#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer (GCC 12) does not intercept pthread_mutex_clocklock. */
	cr_deadline_after(&deadline, CLOCK_REALTIME, CONNREG_RECLAIM_WAIT_MS);
	rc = pthread_mutex_timedlock(&s->mu, &deadline);
#else
	/* CLOCK_MONOTONIC: a wall-clock step must not stretch or cut the bound. */
	cr_deadline_after(&deadline, CLOCK_MONOTONIC, CONNREG_RECLAIM_WAIT_MS);
	rc = pthread_mutex_clocklock(&s->mu, CLOCK_MONOTONIC, &deadline);
#endif
	if (rc == EOWNERDEAD) {
		/*
		 * The holder died mid-write. The index is consistent after
		 * any single store or CAS; its ledger and positions are settled
		 * when its reader slot is recovered (recover.c), whose
		 * decisions do not depend on this lock.
		 */
		pthread_mutex_consistent(&s->mu);
		rc = 0;
	}
	if (rc == ETIMEDOUT) {
		cr_counter_bump(&reg->hdr->ctr_writer_eagain);
		return -EAGAIN;
	}
	/* ENOTRECOVERABLE, EINVAL: only a corrupt segment gets here. */
	return rc ? -EPROTO : 0;
}

/*
 * Remove the id in hit's record, the one step every removal shares
 * (unregister, reap): notify note, ledger (its pending removal names the
 * position; the tomb is this slot's own), the unlink note, then one CAS of
 * the meta word from the LIVE value we saw to our tomb; on success the
 * position is retired and the notes cleared. 1 when it landed; 0 when the
 * record changed meanwhile (ledger restored; the caller re-probes). Call
 * inside a section, so the noted position cannot be reused while the note
 * names it (a recoverer reads it only while our epoch still pins it).
 */
int cr_remove_at(struct connreg_handle *reg, struct cr_thread *t, struct cr_hit *hit, uint32_t home)
{
	uint32_t tomb, seen = hit->meta;
	int landed;

	/* The notify note (see cr_notify_note): a removal feeds the change feed too. */
	/* Relaxed: only a recoverer reads it, after our death (ORD-15(w)). */
	atomic_store_explicit(&t->slot->notify, home + 1, memory_order_relaxed);
	tomb = cr_count_begin_remove(t, hit->pos);
	/*
	 * ORD-8(w): release: a settler that reads this note has seen our
	 * previous retire too; the seq_cst CAS below publishes the note before
	 * the unlink, and a recoverer reads it after our death (ORD-15(w)).
	 */
	atomic_store_explicit(&t->slot->w_old, hit->pos, memory_order_release);
	CR_FAULT();
	/*
	 * ORD-3(w) unlink: seq_cst, so the epoch read in cr_entry_retire
	 * comes after it. ORD-8(w): a settler that sees the tomb sees the
	 * note above. Fails only when another removal got there first.
	 */
	landed = atomic_compare_exchange_strong_explicit(cr_meta_at(reg, hit->pos), &seen, tomb,
							 memory_order_seq_cst, memory_order_relaxed);
	if (landed) {
		CR_FAULT();
		cr_entry_retire(reg, hit->pos);
		CR_FAULT();
	}
	/* ORD-8(w): release: the retire is visible to whoever no longer sees us unlinking. */
	atomic_store_explicit(&t->slot->w_old, CR_IDX_NONE, memory_order_release);
	if (landed) {
		cr_count_commit(t);
		cr_notify_bucket(reg, home);
		CR_FAULT();
	} else {
		cr_count_abort(t);
	}
	/* Relaxed: as above. */
	atomic_store_explicit(&t->slot->notify, 0, memory_order_relaxed);
	return landed;
}

/*
 * The notify note: before it changes anything a writer records the home
 * bucket it will wake, so that if it dies before waking it, its recoverer
 * wakes the waiters (recover.c). Relaxed: the change that follows is
 * ordered after it by its own release or seq_cst, and a recoverer reads
 * it only after the writer is dead.
 */
static inline void cr_notify_note(struct connreg_handle *reg, struct cr_thread *t, uint64_t h)
{
	/* Relaxed: as said above; ORD-15(w): read by our recoverer after our death. */
	atomic_store_explicit(&t->slot->notify, cr_home(reg, h) + 1, memory_order_relaxed);
}

static inline void cr_notify_done(struct connreg_handle *reg, struct cr_thread *t, uint64_t h,
				  bool changed)
{
	if (changed)
		cr_notify(reg, h);
	CR_FAULT();
	/* Relaxed: only recovery reads it, after our death. */
	atomic_store_explicit(&t->slot->notify, 0, memory_order_relaxed);
}

/* No position was reusable yet: returned by cr_insert_new, never to users. */
#define CR_NO_POSITION 1

/*
 * Insert a new id: claim a position, fill it, count it, publish it. The
 * caller holds the home's stripe lock and is inside a section, and has
 * found the id absent. 0, CR_NO_POSITION, -ENOSPC at capacity, or an error.
 */
static int cr_insert_new(struct connreg_handle *reg, struct cr_thread *t, const void *id,
			 size_t len, uint64_t h, uint64_t transport, const struct cr_pid_ident *pi,
			 bool *skipped)
{
	uint32_t pos;
	/*
	 * ORD-6(r): acquire pairs with the release CAS-max of safe_epoch in
	 * cr_gp_poll: the readers' withdrawals it saw come before our reuse.
	 */
	uint64_t safe = atomic_load_explicit(&reg->hdr->safe_epoch, memory_order_acquire);
	int rc;

	if (cr_index_claim(reg, t, h, safe, &pos, skipped))
		return CR_NO_POSITION;
	cr_rec_fill(reg, pos, id, len, transport, pi);
	/* Ledger first, then admission (ORD-9), then the publishing store. */
	cr_count_begin_insert(t, pos);
	rc = cr_count_admit(reg, t);
	if (rc) {
		cr_count_abort(t);
		cr_entry_free_unpublished(reg, t, pos);
		return rc;
	}
	cr_index_publish(reg, h, (uint32_t)len, pos);
	if (caa_unlikely(cr_debug_publish_unfilled)) {
		/* The broken build: fill after publishing (test_linearizability must catch it). */
		struct timespec nap = { 0, 200 * 1000 };

		nanosleep(&nap, NULL);
		cr_rec_store(reg, pos, transport, pi);
	}
	cr_count_commit(t);
	cr_entry_mark_live(reg, t, pos);
	return 0;
}

/*
 * No position could be claimed: every one in reach waits for a grace
 * period (a stopped reader), or a dead thread owns them. Run a grace
 * period, recover dead slots, nap; -EAGAIN once CONNREG_RECLAIM_WAIT_MS
 * has passed. Outside any section and lock.
 */
static int cr_wait_for_position(struct connreg_handle *reg, struct cr_thread *t, uint64_t *deadline)
{
	uint64_t now = cr_now_ms();

	cr_gp_poll(reg, t);
	if (*deadline == 0) {
		*deadline = now + CONNREG_RECLAIM_WAIT_MS;
		return 0;
	}
	if (now >= *deadline) {
		cr_counter_bump(&reg->hdr->ctr_writer_eagain);
		return -EAGAIN;
	}
	cr_slots_reap_dead(reg);
	struct timespec nap = { 0, 100 * 1000 };
	nanosleep(&nap, NULL);
	return 0;
}

/*
 * The operation a locked writer applies to the id's record: register
 * (insert or update), update (must exist), or compare-and-set.
 */
enum cr_op { CR_OP_REGISTER, CR_OP_UPDATE, CR_OP_CAS };

struct cr_write_args {
	enum cr_op op;
	uint64_t transport;	/* the new transport */
	uint64_t expected;	/* CR_OP_CAS: the transport it must have */
	uint64_t current;	/* CR_OP_CAS -EAGAIN: the transport it had */
};

/* Shared by register, update_transport and cas_transport. */
static int cr_write(connreg_t *reg, const void *id, size_t id_len, struct cr_write_args *w)
{
	struct cr_pid_ident pi;
	struct cr_thread *t;
	struct cr_hit hit;
	struct cr_stripe *stripe;
	uint64_t h, deadline = 0;
	bool skipped = false;
	int rc = cr_check_id(reg, id, id_len);

	if (rc)
		return rc;
	rc = cr_thread_get(reg, &t);
	if (rc)
		return rc;
	h = cr_hash(reg, id, id_len);
	stripe = cr_stripe_for(reg, h);
	cr_pid_identity(reg, w->transport, &pi);
	for (;;) {
		/* Taken outside a section: a stalled lock holder must not stall grace periods. */
		rc = cr_stripe_lock(reg, stripe);
		if (rc)
			return rc;
		CR_FAULT();
		cr_notify_note(reg, t, h);
		uint64_t outer = cr_read_lock(reg, t->slot);
		if (cr_index_find(reg, id, (uint32_t)id_len, h, &hit)) {
			uint64_t cur = cr_rec_transport(reg, hit.pos);

			if (w->op == CR_OP_CAS && cur != w->expected) {
				w->current = cur;
				rc = -EAGAIN;
			} else {
				/*
				 * Under the stripe lock no other writer changes the
				 * transport; a removal may tomb the record meanwhile,
				 * and then this update is ordered just before it.
				 */
				cr_rec_store(reg, hit.pos, w->transport, &pi);
				rc = 0;
			}
		} else if (w->op != CR_OP_REGISTER) {
			rc = -ENOENT;
		} else {
			rc = cr_insert_new(reg, t, id, id_len, h, w->transport, &pi, &skipped);
		}
		cr_read_unlock(t->slot, outer);
		pthread_mutex_unlock(&stripe->mu);
		if (rc != CR_NO_POSITION)
			break;
		cr_notify_done(reg, t, h, false);
		rc = cr_wait_for_position(reg, t, &deadline);
		if (rc)
			return rc;
	}
	cr_notify_done(reg, t, h, rc == 0);
	/*
	 * A retired position at home waited for a grace period and the id
	 * went further out: run one now, so the next insert homed here finds
	 * it reusable and misses stay one line.
	 */
	if (caa_unlikely(skipped))
		cr_gp_poll(reg, t);
	return rc;
}

int connreg_register(connreg_t *reg, const void *id, size_t id_len, uint64_t transport)
{
	struct cr_write_args w = { CR_OP_REGISTER, transport, 0, 0 };

	return cr_write(reg, id, id_len, &w);
}

int connreg_update_transport(connreg_t *reg, const void *id, size_t id_len, uint64_t transport)
{
	struct cr_write_args w = { CR_OP_UPDATE, transport, 0, 0 };

	return cr_write(reg, id, id_len, &w);
}

int connreg_cas_transport(connreg_t *reg, const void *id, size_t id_len, uint64_t expected,
			  uint64_t desired, uint64_t *current)
{
	struct cr_write_args w = { CR_OP_CAS, desired, expected, expected };
	int rc = cr_write(reg, id, id_len, &w);

	if (rc == -EAGAIN && current)
		*current = w.current;	/* `expected` when the stripe lock was not had */
	return rc;
}

int connreg_unregister(connreg_t *reg, const void *id, size_t id_len)
{
	struct cr_thread *t;
	struct cr_hit hit;
	uint64_t h;
	int rc = cr_check_id(reg, id, id_len);

	if (rc)
		return rc;
	rc = cr_thread_get(reg, &t);
	if (rc)
		return rc;
	h = cr_hash(reg, id, id_len);
	uint64_t outer = cr_read_lock(reg, t->slot);
	/* Lock-free: the CAS fails only when another removal took the record first. */
	while (cr_index_find(reg, id, (uint32_t)id_len, h, &hit))
		if (cr_remove_at(reg, t, &hit, cr_home(reg, h)))
			break;
	cr_read_unlock(t->slot, outer);
	return 0;
}
