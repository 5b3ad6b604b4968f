/*
 * pool.h: the entry pool. Each entry's state word (layout.h, CR_ST_*) is
 * the single authority on who may touch it; there is no free list to lose
 * when a process dies. Allocation scans the state words from a per-thread
 * cursor and claims a FREE entry, or a RETIRED one whose epoch the safe
 * epoch has passed, with one compare-and-swap.
 */
#ifndef CONNREG_POOL_H
#define CONNREG_POOL_H

#include "handle.h"

/*
 * Claim an entry for t (state OWNED by t's slot). Runs grace periods when
 * none is free, waiting up to CONNREG_RECLAIM_WAIT_MS. Must be called
 * outside a read-side section. Returns 0 and *idx, or -EAGAIN.
 */
int cr_entry_alloc(struct connreg *reg, struct cr_thread *t, uint32_t *idx);

/* Give back an entry t owns that was never published. */
void cr_entry_free_unpublished(struct connreg *reg, struct cr_thread *t, uint32_t idx);

/* t published idx in the index: OWNED -> LIVE, unless already retired. */
void cr_entry_mark_live(struct connreg *reg, struct cr_thread *t, uint32_t idx);

/*
 * The caller unlinked idx from the index (its compare-and-swap won): tag
 * it with the current epoch so it is reused only after a grace period.
 */
void cr_entry_retire(struct connreg *reg, uint32_t idx);

/* Settle every entry owned by a dead thread's slot (rcu.c calls this). */
void cr_pool_recover_slot(struct connreg *reg, uint32_t slot_idx);

#endif /* CONNREG_POOL_H */
