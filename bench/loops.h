/*
 * loops.h: the timed loops, one per role, shared by every contender.
 *
 * Each contender's .c file defines its operations as static functions,
 * puts them in a `static const struct bench_ops`, and calls BENCH_RUN from
 * its `run` hook. Because the loops are always_inline and the ops table is
 * a constant, the compiler turns each call through the table into a direct
 * (usually inlined) call: the harness adds no indirect call per lookup.
 *
 * Readers walk their access sequence in blocks of `sample_period` lookups;
 * the first lookup of each block is timed alone (fenced TSC reads), the
 * rest run back to back. Per-lookup throughput is computed from the
 * untimed lookups only (workers.h: sample_ticks, sampled_ops), so the timer
 * does not inflate it.
 */
#ifndef BENCH_LOOPS_H
#define BENCH_LOOPS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "contender.h"
#include "keys.h"
#include "timing.h"
#include "workers.h"

#define BENCH_INLINE static inline __attribute__((always_inline))

struct bench_ops {
	/* true and *val when id is present; false (and *val untouched) when not. */
	bool (*lookup)(void *h, const uint8_t *id, uint64_t *val);
	/* n <= MAX_BATCH contiguous ids; vals[i] set for hits; returns hits. */
	unsigned (*bulk)(void *h, const uint8_t *ids, unsigned n, uint64_t *vals);
	/* Writers get ids that live as long as the instance (keyset memory). */
	int (*update)(void *h, const uint8_t *id, uint64_t val);
	int (*insert)(void *h, const uint8_t *id, uint64_t val);
	int (*remove)(void *h, const uint8_t *id);
};

/* Sampling block: every lookup loop advances by this many ids. */
BENCH_INLINE unsigned loop_block(const struct worker *w)
{
	unsigned p = w->sample_period ? w->sample_period : SEQ_ALIGN;

	return p > w->seq->len ? (unsigned)w->seq->len : p;
}

/*
 * Untimed lookups over the worker's sequence from *pos for `ticks`: before
 * the first rep (page faults, caches), and again at the start of every rep
 * (other contenders ran in between, see workers.h).
 */
BENCH_INLINE uint64_t loop_warmup(struct worker *w, void *h,
				  bool (*lookup)(void *, const uint8_t *, uint64_t *), size_t *pos,
				  uint64_t ticks)
{
	const uint8_t *base = w->seq->ids;
	size_t len = w->seq->len, p = *pos;
	uint64_t sum = 0, end = tsc_now() + ticks;

	do {
		for (unsigned i = 0; i < SEQ_ALIGN; i++) {
			uint64_t v = 0;

			lookup(h, base + (p + i) * ID_LEN, &v);
			sum += v;
		}
		p += SEQ_ALIGN;
		if (p + SEQ_ALIGN > len)
			p = 0;
	} while (tsc_now() < end);
	*pos = p;
	return sum;
}

/* Wait for rep r, warm up, and start its clocks. */
BENCH_INLINE uint64_t loop_rep_begin(struct worker *w, unsigned r, void *h,
				     bool (*lookup)(void *, const uint8_t *, uint64_t *),
				     size_t *pos, struct worker_result *res, uint64_t *sum)
{
	worker_wait_go(w, r);
	if (w->rep_warmup_ticks)
		*sum += loop_warmup(w, h, lookup, pos, w->rep_warmup_ticks);
	res->cpu_ns = thread_cpu_ns();
	return tsc_now();
}

BENCH_INLINE void loop_read(struct worker *w, void *h,
			    bool (*lookup)(void *, const uint8_t *, uint64_t *))
{
	const uint8_t *base = w->seq->ids;
	size_t len = w->seq->len, pos = w->seq_start;
	unsigned block = loop_block(w);
	uint64_t sum = loop_warmup(w, h, lookup, &pos, w->warmup_ticks);

	worker_ready(w);
	for (unsigned r = 0; r < w->reps; r++) {
		struct worker_result res = { 0 };
		uint64_t t0 = loop_rep_begin(w, r, h, lookup, &pos, &res, &sum);

		while (!worker_should_stop(w, r)) {
			const uint8_t *p = base + pos * ID_LEN;
			unsigned i = 0;

			if (w->sample_period) {
				uint64_t v = 0, a, b;
				bool f;

				a = tsc_begin();
				f = lookup(h, p, &v);
				b = tsc_end();
				worker_sample(w, r, &res, b - a, 1);
				res.hits += f;
				sum += v;
				i = 1;
			}
			for (; i < block; i++) {
				uint64_t v = 0;

				res.hits += lookup(h, p + i * ID_LEN, &v);
				sum += v;
			}
			res.ops += block;
			pos += block;
			if (pos + block > len)
				pos = 0;
		}
		res.ticks = tsc_now() - t0;
		res.cpu_ns = thread_cpu_ns() - res.cpu_ns;
		res.checksum = sum;
		worker_finish(w, r, &res);
	}
}

/* Bulk lookups of `batch` ids per call; one call in every sample_period/batch is timed. */
BENCH_INLINE void loop_bulk(struct worker *w, void *h,
			    bool (*lookup)(void *, const uint8_t *, uint64_t *),
			    unsigned (*bulk)(void *, const uint8_t *, unsigned, uint64_t *))
{
	const uint8_t *base = w->seq->ids;
	size_t len = w->seq->len, pos = w->seq_start;
	unsigned batch = w->batch ? w->batch : 1;
	unsigned every = w->sample_period > batch ? w->sample_period / batch : 1;
	uint64_t sum = loop_warmup(w, h, lookup, &pos, w->warmup_ticks), calls = 0;
	uint64_t vals[MAX_BATCH] = { 0 };	/* misses leave their value untouched */

	if (batch > MAX_BATCH)
		batch = MAX_BATCH;
	worker_ready(w);
	for (unsigned r = 0; r < w->reps; r++) {
		struct worker_result res = { 0 };
		uint64_t t0 = loop_rep_begin(w, r, h, lookup, &pos, &res, &sum);

		while (!worker_should_stop(w, r)) {
			const uint8_t *p = base + pos * ID_LEN;
			unsigned hits;

			if (w->sample_period && calls % every == 0) {
				uint64_t a = tsc_begin();

				hits = bulk(h, p, batch, vals);
				worker_sample(w, r, &res, tsc_end() - a, batch);
			} else {
				hits = bulk(h, p, batch, vals);
			}
			calls++;
			res.hits += hits;
			sum += vals[0] + vals[batch - 1];
			res.ops += batch;
			pos += batch;
			if (pos + batch > len)
				pos = 0;
		}
		res.ticks = tsc_now() - t0;
		res.cpu_ns = thread_cpu_ns() - res.cpu_ns;
		res.checksum = sum;
		worker_finish(w, r, &res);
	}
}

/*
 * Re-point hit ids in key order (random in hash order), as fast as
 * possible or paced to w->rate per second. Values never repeat.
 */
BENCH_INLINE void loop_update(struct worker *w, void *h,
			      bool (*lookup)(void *, const uint8_t *, uint64_t *),
			      int (*update)(void *, const uint8_t *, uint64_t))
{
	const struct keyset *ks = w->in->ks;
	uint64_t n = ks->n, k = atomic_load(&w->in->sh->update_k);
	unsigned period = w->sample_period;
	double tpo = w->rate > 0 ? bench_clock.tsc_hz / w->rate : 0;

	size_t pos = w->seq_start;
	uint64_t sum = loop_warmup(w, h, lookup, &pos, w->warmup_ticks);

	worker_ready(w);
	for (unsigned r = 0; r < w->reps; r++) {
		struct worker_result res = { 0 };
		uint64_t t0 = loop_rep_begin(w, r, h, lookup, &pos, &res, &sum);

		while (!worker_should_stop(w, r)) {
			const uint8_t *id = key_in(ks, POOL_HIT, k % n);
			uint64_t val = (k + 1) << 8 | 0x5a;
			int rc;

			if (tpo > 0 && tsc_now() < t0 + (uint64_t)((double)res.ops * tpo)) {
				cpu_relax();
				continue;
			}
			if (period && res.ops % period == 0) {
				uint64_t a = tsc_begin();

				rc = update(h, id, val);
				worker_sample(w, r, &res, tsc_end() - a, 1);
			} else {
				rc = update(h, id, val);
			}
			res.errors += rc != 0;
			res.ops++;
			k++;
		}
		res.ticks = tsc_now() - t0;
		res.cpu_ns = thread_cpu_ns() - res.cpu_ns;
		res.checksum = sum;
		worker_finish(w, r, &res);
	}
	atomic_store(&w->in->sh->update_k, k);
}

/*
 * Reconnect storms, back to back: transport t = s % BENCH_TRANSPORTS dies
 * and every id it served (i = t, t + T, t + 2T, ...) is re-pointed to a
 * replacement. Each completed storm is one sample (its duration).
 */
BENCH_INLINE void loop_storm(struct worker *w, void *h,
			     bool (*lookup)(void *, const uint8_t *, uint64_t *),
			     int (*update)(void *, const uint8_t *, uint64_t))
{
	const struct keyset *ks = w->in->ks;
	uint64_t n = ks->n, s = atomic_load(&w->in->sh->storm_s);

	size_t pos = w->seq_start;
	uint64_t sum = loop_warmup(w, h, lookup, &pos, w->warmup_ticks);

	worker_ready(w);
	for (unsigned r = 0; r < w->reps; r++) {
		struct worker_result res = { 0 };
		uint64_t t0 = loop_rep_begin(w, r, h, lookup, &pos, &res, &sum);

		while (!worker_should_stop(w, r)) {
			uint64_t t = s % BENCH_TRANSPORTS;
			uint64_t val = (s / BENCH_TRANSPORTS + 1) * 1000003ull + t;
			uint64_t a = tsc_begin(), cnt = 0;
			bool cut = false;

			for (uint64_t i = t; i < n; i += BENCH_TRANSPORTS) {
				res.errors += update(h, key_in(ks, POOL_HIT, i), val) != 0;
				res.ops++;
				if ((++cnt & 255) == 0 && worker_should_stop(w, r)) {
					cut = true;	/* redone in full next rep */
					break;
				}
			}
			if (!cut) {
				worker_sample(w, r, &res, tsc_end() - a, (unsigned)cnt);
				res.storms++;
				s++;
			}
		}
		res.ticks = tsc_now() - t0;
		res.cpu_ns = thread_cpu_ns() - res.cpu_ns;
		res.checksum = sum;
		worker_finish(w, r, &res);
	}
	atomic_store(&w->in->sh->storm_s, s);
}

/*
 * Churn: op k unregisters one live id and registers a new one. Round
 * k / n even: hit id j out, spare id j in; odd: the reverse. One op is
 * the pair.
 */
BENCH_INLINE void loop_churn(struct worker *w, void *h,
			     bool (*lookup)(void *, const uint8_t *, uint64_t *),
			     int (*insert)(void *, const uint8_t *, uint64_t),
			     int (*remove)(void *, const uint8_t *))
{
	const struct keyset *ks = w->in->ks;
	uint64_t n = ks->n, k = atomic_load(&w->in->sh->churn_k);
	unsigned period = w->sample_period;

	size_t pos = w->seq_start;
	uint64_t sum = loop_warmup(w, h, lookup, &pos, w->warmup_ticks);

	worker_ready(w);
	for (unsigned r = 0; r < w->reps; r++) {
		struct worker_result res = { 0 };
		uint64_t t0 = loop_rep_begin(w, r, h, lookup, &pos, &res, &sum);

		while (!worker_should_stop(w, r)) {
			uint64_t j = k % n;
			bool odd = (k / n) & 1;
			const uint8_t *out = key_in(ks, odd ? POOL_SPARE : POOL_HIT, j);
			const uint8_t *newid = key_in(ks, odd ? POOL_HIT : POOL_SPARE, j);
			uint64_t a = 0;
			bool timed = period && res.ops % period == 0;
			int rc;

			if (timed)
				a = tsc_begin();
			rc = remove(h, out);
			rc |= insert(h, newid, key_transport(j));
			if (timed)
				worker_sample(w, r, &res, tsc_end() - a, 1);
			res.errors += rc != 0;
			res.ops++;
			k++;
		}
		res.ticks = tsc_now() - t0;
		res.cpu_ns = thread_cpu_ns() - res.cpu_ns;
		res.checksum = sum;
		worker_finish(w, r, &res);
	}
	atomic_store(&w->in->sh->churn_k, k);
}

BENCH_INLINE int bench_run(struct worker *w, void *h, const struct bench_ops *o)
{
	switch (w->role) {
	case ROLE_READ:
		loop_read(w, h, o->lookup);
		return 0;
	case ROLE_BULK:
		loop_bulk(w, h, o->lookup, o->bulk);
		return 0;
	case ROLE_UPDATE:
		loop_update(w, h, o->lookup, o->update);
		return 0;
	case ROLE_STORM:
		loop_storm(w, h, o->lookup, o->update);
		return 0;
	case ROLE_CHURN:
		loop_churn(w, h, o->lookup, o->insert, o->remove);
		return 0;
	}
	return -1;
}

/*
 * In a contender file:
 *   static int foo_run(struct instance *in, void *h, struct worker *w)
 *   { (void)in; return BENCH_RUN(w, h, &foo_ops); }
 */
#define BENCH_RUN(w, h, ops) bench_run((w), (h), (ops))

#endif /* BENCH_LOOPS_H */
