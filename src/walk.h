/*
 * walk.h: visiting the ids of one bucket (walk.c), shared by
 * connreg_foreach and the change feed's connreg_foreach_shard.
 */
#ifndef CONNREG_WALK_H
#define CONNREG_WALK_H

#include "handle.h"

typedef int (*cr_walk_fn)(const void *id, size_t id_len, uint64_t transport, void *arg);

/*
 * Copy the live ids of bucket b (only those homed at `home`, unless home
 * is CR_IDX_NONE) into keys (CR_BUCKET_SLOTS * key_max bytes) inside one
 * read-side section, then call fn on each outside it, so fn may call
 * connreg. Returns fn's first non-zero result, else 0.
 */
int cr_walk_bucket(struct connreg_handle *reg, struct cr_thread *t, uint32_t b, uint32_t home,
		   uint8_t *keys, cr_walk_fn fn, void *arg);

#endif /* CONNREG_WALK_H */
