/*
 * pool.h: position state transitions ("entries": a position is the
 * storage of one record, layout.h). Each position's state word (CR_ST_*)
 * is the single authority on who may fill it; there is no free list to
 * lose when a process dies. Claiming is cr_index_claim (index.h).
 */
#ifndef CONNREG_POOL_H
#define CONNREG_POOL_H

#include "handle.h"

/* Give back an entry t owns that was never published. */
void cr_entry_free_unpublished(struct connreg_handle *reg, struct cr_thread *t, uint32_t idx);

/* t published idx in the index: OWNED -> LIVE, unless already retired. */
void cr_entry_mark_live(struct connreg_handle *reg, struct cr_thread *t, uint32_t idx);

/*
 * The caller unlinked idx from the index (its compare-and-swap won): tag
 * it with the current epoch so it is reused only after a grace period.
 */
void cr_entry_retire(struct connreg_handle *reg, uint32_t idx);

/*
 * Retire entry idx if its state is still v (an unlinked entry found by
 * recovery); a CAS that carries the generation, so it is idempotent.
 */
void cr_entry_retire_state(struct connreg_handle *reg, uint32_t idx, uint64_t v);

/* Settle every entry owned by a dead thread's slot (recover.c calls this). */
void cr_pool_recover_slot(struct connreg_handle *reg, uint32_t slot_idx);

#endif /* CONNREG_POOL_H */
