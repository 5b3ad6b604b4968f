/*
 * notify.h: the writers' side of connreg_wait_transport: after a change,
 * move the home bucket's event count (ck_ec32).
 */
#ifndef CONNREG_NOTIFY_H
#define CONNREG_NOTIFY_H

#include <ck_ec.h>

#include "changes.h"
#include "index.h"

extern const struct ck_ec_mode cr_ec_mode;

/*
 * After a publishing CAS for hash h: move the home bucket's event count.
 * ORD-17(w): ck_ec32_inc is a locked increment preceded by a store->atomic
 * fence (ordering our CAS before it; pairs with the waiter's acquire
 * snapshot in connreg_wait_transport) and makes the futex call only when a
 * waiter set the count's flag bit.
 */
static inline void cr_notify_bucket(struct connreg_handle *reg, uint32_t b)
{
	/* The change feed first: a mirror never waits, and the mark is one load when already set. */
	cr_change_mark(reg, b);
	ck_ec32_inc(&reg->index[b].wake, &cr_ec_mode);
}

static inline void cr_notify(struct connreg_handle *reg, uint64_t h)
{
	cr_notify_bucket(reg, cr_home(reg, h));
}

#endif /* CONNREG_NOTIFY_H */
