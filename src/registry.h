/*
 * registry.h: the writer steps shared beyond registry.c (reap in walk.c).
 */
#ifndef CONNREG_REGISTRY_H
#define CONNREG_REGISTRY_H

#include "index.h"

/*
 * Remove the id in hit's record (LIVE meta hit->meta at hit->pos, homed at
 * home): 1 when the tomb landed, 0 when the record changed meanwhile.
 * Inside a read-side section.
 */
int cr_remove_at(struct connreg_handle *reg, struct cr_thread *t, struct cr_hit *hit, uint32_t home);

/*
 * Take a stripe lock, waiting at most CONNREG_RECLAIM_WAIT_MS. 0, -EAGAIN
 * (a stopped holder), -EPROTO (a corrupt segment).
 */
int cr_stripe_lock(struct connreg_handle *reg, struct cr_stripe *s);

#endif /* CONNREG_REGISTRY_H */
