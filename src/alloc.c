/*
 * alloc.c: entry allocation. Scans the state words from a per-thread
 * cursor and claims a FREE entry, or a RETIRED one whose epoch the safe
 * epoch has passed, with one compare-and-swap (INV-6: the state word is
 * the only authority; INV-3: no reuse before the safe epoch); when none is
 * found it runs grace periods and recovers dead threads' slots, bounded in
 * time.
 */
#include <errno.h>
#include <time.h>

#include "alloc.h"
#include "clock.h"
#include "rcu.h"
#include "recover.h"
#include "fault.h"

/* States examined before a grace period is attempted. */
#define CR_ALLOC_WINDOW 256u

/* Try to claim entry i for slot `owner`; 1 on success. */
static int cr_try_claim(_Atomic uint64_t *st, uint64_t safe, uint64_t owner)
{
	/* Relaxed: a peek; the CAS below is what decides. */
	uint64_t v = atomic_load_explicit(st, memory_order_relaxed);
	uint64_t kind = cr_st_kind(v);

	if (kind == CR_ST_FREE ||
	    (kind == CR_ST_RETIRED && cr_st_payload(v) < safe)) {
		uint64_t claimed = cr_st_make(CR_ST_OWNED, cr_st_gen(v) + 1, owner);

		/*
		 * ORD-10(r): acquire pairs with the release of the retire/free that
		 * wrote v, so that writer's last touches come before our refill.
		 */
		return atomic_compare_exchange_strong_explicit(st, &v, claimed, memory_order_acquire,
							       memory_order_relaxed);
	}
	return 0;
}

int cr_entry_alloc(struct connreg_handle *reg, struct cr_thread *t, uint32_t *idx)
{
	uint32_t n = reg->n_entries, cur = t->alloc_cursor;
	uint64_t scanned = 0, next_gp = CR_ALLOC_WINDOW, deadline = 0;
	/*
	 * ORD-6(r): acquire pairs with the release CAS-max of safe_epoch in
	 * cr_gp_poll: the readers' withdrawals it saw come before our reuse.
	 */
	uint64_t safe = atomic_load_explicit(&reg->hdr->safe_epoch, memory_order_acquire);

	for (;;) {
		for (unsigned k = 0; k < CR_ALLOC_WINDOW; k++) {
			uint32_t i = cur;

			cur = cur + 1 == n ? 0 : cur + 1;
			if (cr_try_claim(&reg->states[i], safe, t->slot_idx)) {
				CR_FAULT();
				t->alloc_cursor = cur;
				*idx = i;
				return 0;
			}
		}
		scanned += CR_ALLOC_WINDOW;
		if (scanned >= next_gp) {
			/* A window found nothing: a grace period, then at most one per pass. */
			uint64_t now_safe = cr_gp_poll(reg, t);

			if (now_safe > safe)
				safe = now_safe;
			next_gp = scanned + n;
		}
		if (scanned < n || scanned % n >= CR_ALLOC_WINDOW)
			continue;

		/*
		 * A whole pass found nothing: reclamation is held back (a stopped
		 * reader) or a dead thread owns entries. Recover dead slots, then
		 * wait, bounded by CONNREG_RECLAIM_WAIT_MS.
		 */
		cr_slots_reap_dead(reg);
		uint64_t now = cr_now_ms();
		if (deadline == 0) {
			deadline = now + CONNREG_RECLAIM_WAIT_MS;
		} else if (now >= deadline) {
			t->alloc_cursor = cur;
			cr_counter_bump(&reg->hdr->ctr_writer_eagain);
			return -EAGAIN;
		}
		struct timespec nap = { 0, 100 * 1000 };
		nanosleep(&nap, NULL);
		/* ORD-6(r) again: another writer may have completed a grace period meanwhile. */
		uint64_t now_safe = atomic_load_explicit(&reg->hdr->safe_epoch, memory_order_acquire);
		if (now_safe > safe)
			safe = now_safe;
	}
}
