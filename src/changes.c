/*
 * changes.c: the change feed's reader side (connreg.h, "Change feed").
 * A mirror drains the dirty bits (summary word, then bitmap word, each
 * taken with one exchange) and re-reads each dirty bucket whole: a change
 * that lands after the exchange sets the bit again, so none is missed, and
 * the writers never wait for the mirror.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "changes.h"
#include "index.h"
#include "rcu.h"
#include "walk.h"

uint32_t connreg_shards(connreg_t *reg)
{
	return reg ? reg->n_buckets : 0;
}

int connreg_changes_drain(connreg_t *reg, int (*fn)(uint32_t shard, void *arg), void *arg)
{
	uint32_t n_sum, rc = 0;

	if (!reg || !fn)
		return -EINVAL;
	/* Relaxed: a process-local word, set by our own atfork handler. */
	if (atomic_load_explicit(&cr_fork_gen, memory_order_relaxed) != reg->fork_gen)
		return -ECHILD;
	n_sum = (reg->n_change_words + 63) / 64;
	for (uint32_t s = 0; s < n_sum; s++) {
		/* ORD-18(r): seq_cst exchange: pairs with the writers' seq_cst marks. */
		uint64_t sum = atomic_exchange_explicit(&reg->changes[reg->n_change_words + s], 0,
							memory_order_seq_cst);

		while (sum) {
			uint32_t w = s * 64 + (uint32_t)__builtin_ctzll(sum);
			/* ORD-18(r): seq_cst exchange, as above. */
			uint64_t bits = w < reg->n_change_words ?
				atomic_exchange_explicit(&reg->changes[w], 0, memory_order_seq_cst) : 0;

			sum &= sum - 1;
			/*
			 * ORD-18(r): the caller's reads of these buckets come after
			 * every change whose mark our exchanges cleared or saw.
			 */
			atomic_thread_fence(memory_order_seq_cst);
			while (bits) {
				uint32_t b = w * 64 + (uint32_t)__builtin_ctzll(bits);

				bits &= bits - 1;
				if (b >= reg->n_buckets)
					continue;
				rc = (uint32_t)fn(b, arg);
				if (rc) {
					/* Put back what we took and did not report. */
					cr_change_mark(reg, b);
					while (bits) {
						cr_change_mark(reg, w * 64 + (uint32_t)__builtin_ctzll(bits));
						bits &= bits - 1;
					}
					while (sum) {
						uint32_t w2 = s * 64 + (uint32_t)__builtin_ctzll(sum);

						sum &= sum - 1;
						if (w2 < reg->n_change_words)
							/* Relaxed: re-arm a summary bit we took; the words keep their bits. */
							atomic_fetch_or_explicit(
								&reg->changes[reg->n_change_words + s],
								1ull << (w2 % 64), memory_order_relaxed);
					}
					return (int)rc;
				}
			}
		}
	}
	return 0;
}

int connreg_foreach_shard(connreg_t *reg, uint32_t shard, cr_walk_fn fn, void *arg)
{
	struct cr_thread *t;
	uint8_t *keys;
	int rc;

	if (!reg || !fn || shard >= (reg ? reg->n_buckets : 0))
		return -EINVAL;
	rc = cr_thread_get(reg, &t);
	if (rc)
		return rc;
	keys = malloc((size_t)CR_BUCKET_SLOTS * reg->key_max);
	if (!keys)
		return -ENOMEM;
	/* INV-4: every id homed at `shard` lies within its bound. */
	uint32_t bound = cr_bound(reg, shard), b = shard;

	for (uint32_t d = 0; d <= bound && rc == 0; d++, b = b + 1 == reg->n_buckets ? 0 : b + 1)
		rc = cr_walk_bucket(reg, t, b, shard, keys, fn, arg);
	free(keys);
	return rc;
}
