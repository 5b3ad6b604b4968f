/*
 * index.c: the writer side of the hash index (see index.h): claiming a
 * record position, publishing it, the probe bound, and reading a record's
 * id back (walks, recovery, checks).
 */
#include <errno.h>

#include "index.h"
#include "fault.h"

uint64_t cr_hash_long(const struct connreg_handle *reg, const void *id, size_t len)
{
	return XXH3_64bits_withSecret(id, len, reg->secret, CR_SECRET_SIZE);
}

void cr_hash_keys_init(struct cr_hash_keys *k, const uint8_t *secret)
{
	/* XXH3_len_{1to3,4to8,9to16}_64b's bitflips, seed 0. */
	k->k1to3 = XXH_readLE32(secret) ^ XXH_readLE32(secret + 4);
	k->k4to8 = XXH_readLE64(secret + 8) ^ XXH_readLE64(secret + 16);
	k->k9to16[0] = XXH_readLE64(secret + 24) ^ XXH_readLE64(secret + 32);
	k->k9to16[1] = XXH_readLE64(secret + 40) ^ XXH_readLE64(secret + 48);
}

uint32_t cr_rec_key(const struct connreg_handle *reg, uint32_t pos, uint32_t meta, uint8_t *key)
{
	const struct cr_rec *r = cr_rec_at(reg, pos);
	uint32_t lenc = cr_meta_lenc(meta), len;

	if (lenc == 0 || lenc > CR_META_LENC_LONG)
		return 0;
	if (lenc <= CR_KEY_INLINE) {
		if (lenc > reg->key_max)
			return 0;	/* corrupt meta word: never copy past key_max */
		memcpy(key, r->key, lenc);
		return lenc;
	}
	if (reg->key_max <= CR_KEY_INLINE)
		return 0;	/* corrupt meta word: no long ids, and no side entries to read */
	len = cr_entry_at(reg, pos)->key_len;
	if (len <= CR_KEY_INLINE || len > reg->key_max)
		return 0;	/* corrupt side entry: never copy past key_max */
	memcpy(key, r->key, CR_KEY_INLINE);
	memcpy(key + CR_KEY_INLINE, cr_entry_at(reg, pos)->tail, len - CR_KEY_INLINE);
	return len;
}

/*
 * May a position whose record is tomb m be reused? Not while the removal
 * that made it is pending in its maker's ledger: a recoverer of that
 * maker decides whether the removal landed by finding this very tomb here
 * (count.c, design.md §6a).
 */
static bool cr_tomb_reusable(struct connreg_handle *reg, uint32_t m, uint32_t pos)
{
	uint32_t maker = cr_meta_tomb_maker(m);

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
	 * ORD-16(w): the raise comes before the publishing store (INV-4).
	 * CAS loop: the high half of ctl is reserved. Release, though
	 * the publishing store after it is release anyway: a reader that sees
	 * the new record may see the old bound, which is harmless (design.md).
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
 * move) and is inside a read-side section (the records it reads stay
 * valid). One CAS: a reader that read the old, larger bound only looks
 * further than it must.
 */
static void cr_bound_shrink(struct connreg_handle *reg, uint32_t home, uint8_t *key)
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
			/* ORD-5(r): acquire pairs with the publishing store: the record is filled. */
			uint32_t m = atomic_load_explicit(&reg->index[b].meta[i], memory_order_acquire);

			if (!cr_meta_is_live(m))
				continue;
			uint32_t len = cr_rec_key(reg, b * CR_BUCKET_SLOTS + i, m, key);

			if (len && cr_home(reg, cr_hash(reg, key, len)) == home)
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

/* Try to claim position pos for slot `owner`; 1 on success. */
static int cr_try_claim(struct connreg_handle *reg, uint32_t pos, uint64_t safe, uint64_t owner,
			bool *unsafe)
{
	_Atomic uint64_t *st = &reg->states[pos];
	/* Relaxed: a peek; the CAS below is what decides. */
	uint64_t v = atomic_load_explicit(st, memory_order_relaxed);
	uint64_t kind = cr_st_kind(v);

	if (kind == CR_ST_RETIRED && cr_st_payload(v) >= safe)
		*unsafe = true;
	if (kind == CR_ST_FREE || (kind == CR_ST_RETIRED && cr_st_payload(v) < safe)) {
		uint64_t claimed = cr_st_make(CR_ST_OWNED, cr_st_gen(v) + 1, owner);

		/*
		 * ORD-10(r): acquire pairs with the release of the retire/free that
		 * wrote v, so that writer's last touches come before our refill.
		 */
		return atomic_compare_exchange_strong_explicit(st, &v, claimed, memory_order_acquire,
							       memory_order_relaxed);
	}
	return 0;
}

int cr_index_claim(struct connreg_handle *reg, struct cr_thread *t, uint64_t h, uint64_t safe,
		   uint32_t *pos, bool *skipped)
{
	uint32_t b = cr_home(reg, h);

	*skipped = false;
	for (uint32_t d = 0; d < reg->n_buckets; d++) {
		struct cr_bucket *bk = &reg->index[b];

		for (unsigned i = 0; i < CR_BUCKET_SLOTS; i++) {
			uint32_t p = b * CR_BUCKET_SLOTS + i;
			bool unsafe = false;
			/*
			 * ORD-7(r): acquire: a tomb seen here comes with its maker's
			 * ledger (stored before the tomb CAS), which cr_tomb_reusable
			 * then reads: a pending removal's position is never reused.
			 */
			uint32_t m = atomic_load_explicit(&bk->meta[i], memory_order_acquire);

			if (cr_meta_is_live(m) || (m != CR_META_EMPTY && !cr_tomb_reusable(reg, m, p)))
				continue;
			if (cr_try_claim(reg, p, safe, t->slot_idx, &unsafe)) {
				CR_FAULT();
				*pos = p;
				return 0;
			}
			if (unsafe && d == 0)
				*skipped = true;
			/*
			 * Passing over an EMPTY record we could not claim (its
			 * position is another inserter's, or was retired unused):
			 * make it a tomb first, or a probe would stop there and
			 * miss the id we place beyond it (INV-4). If its owner
			 * publishes meanwhile the CAS fails; if it publishes
			 * after, its store overwrites the tomb; both are right.
			 * ORD-5(w): release, as a publish: nothing to carry, but
			 * it must not pass our publishing store beyond it.
			 */
			if (m == CR_META_EMPTY)
				atomic_compare_exchange_strong_explicit(&bk->meta[i], &m, CR_META_TOMB,
									memory_order_release,
									memory_order_relaxed);
		}
		b = b + 1 == reg->n_buckets ? 0 : b + 1;
	}
	return -EAGAIN;
}

void cr_index_publish(struct connreg_handle *reg, uint64_t h, uint32_t len, uint32_t pos)
{
	uint32_t home = cr_home(reg, h), b = pos / CR_BUCKET_SLOTS;
	uint32_t d = b >= home ? b - home : b + reg->n_buckets - home;

	if (d > 0) {
		cr_bound_raise(reg, home, d);
		CR_FAULT();
	}
	/*
	 * ORD-5(w) publish: the key, the transport and the side entry, all
	 * filled before, go out with it; pairs with the readers' acquire meta
	 * loads. seq_cst, not only release: the change feed's mark that
	 * follows loads its bit (ORD-18). We own the position (its state is
	 * OWNED by us): no other writer stores a LIVE value here meanwhile.
	 */
	atomic_store_explicit(cr_meta_at(reg, pos), cr_meta_live(cr_lenc(len), cr_tag(h)),
			      memory_order_seq_cst);
	CR_FAULT();
	/*
	 * Landed closer than the bound: ids that forced it out may be gone;
	 * lower it so misses stay short. Relaxed: we hold the stripe, the
	 * bound's only writer.
	 */
	if (d < (atomic_load_explicit(&reg->index[home].ctl, memory_order_relaxed) & CR_BOUND_MASK)) {
		uint8_t key[CONNREG_KEY_MAX_LIMIT];

		cr_bound_shrink(reg, home, key);
	}
}

bool cr_index_reaches(struct connreg_handle *reg, uint32_t pos)
{
	if (pos >= reg->n_entries)
		return false;
	/* ORD-5(r): acquire pairs with the publishing store. */
	return cr_meta_is_live(atomic_load_explicit(cr_meta_at(reg, pos), memory_order_acquire));
}
