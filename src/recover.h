/*
 * recover.h: taking back what a dead thread held. See recover.c, which
 * opens with the death table.
 */
#ifndef CONNREG_RECOVER_H
#define CONNREG_RECOVER_H

#include "handle.h"

/*
 * Recover reader slot i, whose owner is gone. The caller holds the token
 * the slot names (owner.h). On return the slot is free (owner 0, epoch 0)
 * and the token is still the caller's to give back.
 */
void cr_slot_recover(struct connreg_handle *reg, uint32_t i);

/*
 * Is slot i claimed by a live thread? If its owner is gone, recover it
 * first (taking its token obliges us to) and answer false.
 */
bool cr_slot_alive_or_recover(struct connreg_handle *reg, uint32_t i);

/* Recover every claimed slot whose owner is gone; returns how many were dead. */
unsigned cr_slots_reap_dead(struct connreg_handle *reg);

#endif /* CONNREG_RECOVER_H */
