/*
 * registry.h: writer steps shared by registry.c and walk.c.
 */
#ifndef CONNREG_REGISTRY_H
#define CONNREG_REGISTRY_H

#include "index.h"

/*
 * Remove the id in hit's slot (inside a section). 1 when this call's CAS
 * landed, 0 when the slot changed meanwhile (re-probe).
 */
int cr_remove_at(struct connreg_handle *reg, struct cr_thread *t, struct cr_hit *hit);

/* Retire an entry this thread unlinked, then clear its recovery note. */
void cr_retire_unlinked(struct connreg_handle *reg, struct cr_thread *t, uint32_t old);

#endif /* CONNREG_REGISTRY_H */
