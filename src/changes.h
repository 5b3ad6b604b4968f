/*
 * changes.h: the change feed's writer side. One bit per index bucket
 * (the id's home) says "an id homed here changed since a mirror last
 * looked"; a summary word has one bit per 64 bitmap words, so a mirror
 * finds the dirty buckets without reading the whole bitmap. Writers set
 * the bits after their change lands (and a recoverer sets them for a dead
 * writer's change, through the notify note), never wait for a mirror, and
 * usually set nothing: a bit already set costs one load. changes.c has
 * the reader side (connreg_changes_drain, connreg_foreach_shard).
 */
#ifndef CONNREG_CHANGES_H
#define CONNREG_CHANGES_H

#include <stdatomic.h>

#include "handle.h"

static inline void cr_change_mark(struct connreg_handle *reg, uint32_t bucket)
{
	_Atomic uint64_t *word = &reg->changes[bucket / 64];
	_Atomic uint64_t *sum = &reg->changes[reg->n_change_words + bucket / 64 / 64];
	uint64_t bit = 1ull << (bucket % 64), sbit = 1ull << (bucket / 64 % 64);

	/*
	 * ORD-18(w): seq_cst, after the change's seq_cst CAS: a drainer whose
	 * exchange clears the bit after this load saw it set reads the change
	 * (design.md §14). A set bit means a drain is still to come.
	 */
	if (atomic_load_explicit(word, memory_order_seq_cst) & bit)
		return;
	/* ORD-18(w): seq_cst: the bit, then the summary bit, before any drain reads them. */
	atomic_fetch_or_explicit(word, bit, memory_order_seq_cst);
	/* ORD-18(w): seq_cst, as above. */
	if (!(atomic_load_explicit(sum, memory_order_seq_cst) & sbit))
		/* ORD-18(w): seq_cst, as above. */
		atomic_fetch_or_explicit(sum, sbit, memory_order_seq_cst);
}

#endif /* CONNREG_CHANGES_H */
