/*
 * count.h: the live-id count, kept so that no process death can leak or
 * invent a unit of capacity.
 *
 * Each reader slot carries a ledger (layout.h): its net count of inserts
 * minus removals, and the one operation in flight. A thread changes its
 * ledger with a single store before the index CAS that makes the change
 * real, so after any death a recoverer only has to decide whether that
 * CAS landed, which the index and the entry states tell it unambiguously.
 * The exact count is the sum of the ledgers; header->live_hint is a cheap
 * upper bound used to admit inserts without summing: each admitted insert
 * takes a unit; removals never give one back; when it reaches capacity,
 * the inserter sums the ledgers and puts the exact count in its place.
 */
#ifndef CONNREG_COUNT_H
#define CONNREG_COUNT_H

#include "handle.h"

/* Ledger transitions of the calling thread (single writer of its slot). */
void cr_count_begin_insert(struct cr_thread *t, uint32_t pos);
/* Returns the tomb (this slot's own, 2 + slot) that the removing CAS must write. */
uint32_t cr_count_begin_remove(struct cr_thread *t, uint32_t pos);
void cr_count_commit(struct cr_thread *t);
void cr_count_abort(struct cr_thread *t);

/*
 * Admit one more live id. Call after cr_count_begin_insert (our +1 is in
 * the ledger). Takes a unit of live_hint (lock-free); when the hint is at
 * capacity, sums the ledgers under count_mu and resets the hint to the
 * exact count. 0; -ENOSPC when capacity ids are live besides ours (our
 * ledger is already restored); -EAGAIN when count_mu's holder is stopped.
 */
int cr_count_admit(struct connreg_handle *reg, struct cr_thread *t);

/* Sum of the ledgers without locks: a snapshot for stats and check. */
uint64_t cr_count_snapshot(struct connreg_handle *reg);

/* A dead thread's slot: settle its pending operation into its delta. */
void cr_count_recover_slot(struct connreg_handle *reg, uint32_t slot_idx);


#endif /* CONNREG_COUNT_H */
