/*
 * alloc.h: claiming an entry from the pool (alloc.c).
 */
#ifndef CONNREG_ALLOC_H
#define CONNREG_ALLOC_H

#include "handle.h"

/*
 * Claim an entry for t (state OWNED by t's slot). Runs grace periods when
 * none is free, waiting up to CONNREG_RECLAIM_WAIT_MS. Must be called
 * outside a read-side section. Returns 0 and *idx, or -EAGAIN.
 */
int cr_entry_alloc(struct connreg_handle *reg, struct cr_thread *t, uint32_t *idx);

#endif /* CONNREG_ALLOC_H */
