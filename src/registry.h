/*
 * registry.h: writer steps shared by registry.c and walk.c.
 */
#ifndef CONNREG_REGISTRY_H
#define CONNREG_REGISTRY_H

#include "index.h"

/*
 * Remove the id in hit's slot (inside a section); home is the id's home
 * bucket (woken, and marked in the change feed). 1 when this call's CAS
 * landed, 0 when the slot changed meanwhile (re-probe).
 */
int cr_remove_at(struct connreg_handle *reg, struct cr_thread *t, struct cr_hit *hit, uint32_t home);

/* Retire an entry this thread unlinked, then clear its recovery note. */
void cr_retire_unlinked(struct connreg_handle *reg, struct cr_thread *t, uint32_t old);

/* The unlinking step of every writer: note, CAS, retire (registry.c). */
int cr_unlink_cas(struct connreg_handle *reg, struct cr_thread *t, struct cr_hit *hit, uint64_t to);

/* Clear the unlink note when nothing was unlinked (inside the section). */
void cr_unlink_none(struct cr_thread *t);

#endif /* CONNREG_REGISTRY_H */
