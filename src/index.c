/*
 * index.c: the writer side of the hash index (see index.h).
 */
#include <errno.h>

#include "index.h"
#include "fault.h"

/*
 * May an insert reuse tomb v at position pos? Not while the removal that
 * made it is pending in its maker's ledger: a recoverer of that maker
 * decides whether the removal landed by finding this very tomb here
 * (count.c, design.md §6a).
 */
static bool cr_tomb_reusable(struct connreg_handle *reg, uint64_t v, uint32_t pos)
{
	uint32_t maker = cr_slot_tomb_maker(v);

	if (maker >= reg->n_rslots)
		return true;
	/* ORD-7(r): acquire pairs with cr_ledger_store of the tomb's maker. */
	uint64_t l = atomic_load_explicit(&reg->rslots[maker].ledger, memory_order_acquire);

	return cr_ledger_pend(l) != (CR_PEND_DEL | pos);
}

/* Raise the home bucket's probe bound to d (only the stripe holder writes it). */
static void cr_bound_raise(struct connreg_handle *reg, uint32_t home, uint32_t d)
{
	_Atomic uint32_t *ctl = &reg->index[home].ctl;
	uint32_t want = d >= CR_BOUND_UNBOUNDED ? CR_BOUND_UNBOUNDED : d;
	/* Relaxed: only the stripe holder writes the bound; the CAS below decides. */
	uint32_t cur = atomic_load_explicit(ctl, memory_order_relaxed);

	/*
	 * ORD-16(w): the raise comes before the publishing CAS (INV-4).
	 * CAS loop: the high half of ctl belongs to waiters. Release, though
	 * the publishing CAS after it is seq_cst anyway: a reader that sees the
	 * new slot may see the old bound, which is harmless (design.md).
	 */
	while ((cur & CR_BOUND_MASK) < want &&
	       !atomic_compare_exchange_weak_explicit(ctl, &cur, (cur & ~CR_BOUND_MASK) | want,
						      memory_order_release, memory_order_relaxed))
		;
}

/*
 * Lower the home bucket's probe bound to the farthest id homed there that
 * is still live (INV-4 holds with the lower bound). The caller holds the
 * home's stripe lock (no id homed here can appear meanwhile; ids never
 * move) and is inside a read-side section (the entries it reads stay
 * valid). One CAS: a reader that read the old, larger bound only looks
 * further than it must.
 */
static void cr_bound_shrink(struct connreg_handle *reg, uint32_t home)
{
	_Atomic uint32_t *ctl = &reg->index[home].ctl;
	/* Relaxed: only the stripe holder writes the bound; the CAS below decides. */
	uint32_t cur = atomic_load_explicit(ctl, memory_order_relaxed);
	uint32_t bound = cur & CR_BOUND_MASK, need = 0, b = home;

	if (bound == 0 || bound == CR_BOUND_UNBOUNDED || bound >= reg->n_buckets)
		return;
	for (uint32_t d = 1; d <= bound; d++) {
		b = b + 1 == reg->n_buckets ? 0 : b + 1;
		for (unsigned i = 0; i < CR_BUCKET_SLOTS; i++) {
			/* ORD-5(r): acquire pairs with the publishing CAS: the entry is filled. */
			uint64_t v = atomic_load_explicit(&reg->index[b].slot[i], memory_order_acquire);

			if (!cr_slot_is_live(v) || cr_slot_idx(v) >= reg->n_entries)
				continue;
			const struct cr_entry *e = cr_entry_at(reg, cr_slot_idx(v));
			uint32_t len = e->key_len;

			if (len && len <= reg->key_max && cr_home(reg, cr_hash(reg, e->key, len)) == home)
				need = d;
		}
	}
	/*
	 * ORD-16(w): release, like cr_bound_raise; if the CAS fails the word changed under
	 * us (it cannot, while we hold the stripe) and the old bound stays.
	 */
	if (need < bound)
		atomic_compare_exchange_strong_explicit(ctl, &cur, (cur & ~CR_BOUND_MASK) | need,
							memory_order_release, memory_order_relaxed);
}

int cr_index_insert(struct connreg_handle *reg, uint64_t h, uint32_t idx)
{
	uint32_t home = cr_home(reg, h), b = home;
	uint64_t live = cr_slot_live(cr_fp(h), idx);

	for (uint32_t d = 0; d < reg->n_buckets; d++) {
		struct cr_bucket *bk = &reg->index[b];

		for (unsigned i = 0; i < CR_BUCKET_SLOTS; i++) {
			/*
			 * ORD-7(r): acquire: a tomb seen here comes with its maker's
			 * ledger (stored before the tomb CAS), which cr_tomb_reusable
			 * then reads: a pending removal's tomb is never reused. The
			 * CAS below decides; the first non-live slot (INV-4).
			 */
			uint64_t v = atomic_load_explicit(&bk->slot[i], memory_order_acquire);

			if (cr_slot_is_live(v) ||
			    (v != CR_SLOT_EMPTY &&
			     !cr_tomb_reusable(reg, v, b * CR_BUCKET_SLOTS + i)))
				continue;	/* live, or a tomb its unregister's ledger still names */
			if (d > 0) {
				cr_bound_raise(reg, home, d);
				CR_FAULT();
			}
			/*
			 * ORD-5(w) publish: seq_cst (release for the filled entry,
			 * pairs with the readers' acquire slot loads; seq_cst for
			 * the unlink/epoch argument). Fails only when another
			 * inserter, homed elsewhere, took this slot first.
			 */
			if (atomic_compare_exchange_strong_explicit(&bk->slot[i], &v, live,
								    memory_order_seq_cst,
								    memory_order_relaxed)) {
				CR_FAULT();
				/*
				 * Landed closer than the bound: ids that forced it
				 * out may be gone; lower it so misses stay short.
				 * Relaxed: we hold the stripe, the bound's only writer.
				 */
				if (d < (atomic_load_explicit(&reg->index[home].ctl,
							      memory_order_relaxed) & CR_BOUND_MASK))
					cr_bound_shrink(reg, home);
				return 0;
			}
		}
		b = b + 1 == reg->n_buckets ? 0 : b + 1;
	}
	return -ENOSPC;
}

bool cr_index_reaches(struct connreg_handle *reg, uint32_t idx)
{
	const struct cr_entry *e = cr_entry_at(reg, idx);
	uint32_t len = e->key_len;

	if (len == 0 || len > reg->key_max)
		return false;	/* never published: a published entry has a valid key */
	uint64_t h = cr_hash(reg, e->key, len);
	uint32_t b = cr_home(reg, h), bound = cr_bound(reg, b);
	uint64_t want = cr_slot_live(cr_fp(h), idx);

	for (uint32_t d = 0;; d++) {
		for (unsigned i = 0; i < CR_BUCKET_SLOTS; i++) {
			/* ORD-5(r): acquire pairs with the publishing CAS. */
			uint64_t v = atomic_load_explicit(&reg->index[b].slot[i], memory_order_acquire);

			if (v == want)
				return true;
			if (v == CR_SLOT_EMPTY)
				return false;
		}
		if (d == bound)
			return false;
		b = b + 1 == reg->n_buckets ? 0 : b + 1;
	}
}
