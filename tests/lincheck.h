/*
 * lincheck.h: a linearizability checker for one id's history against the
 * sequential specification of a register with delete and conditional
 * updates (the connreg API for one id):
 *
 *   SET v        register: always 0; the id holds v
 *   GET          0 and v when it holds v, -ENOENT when absent
 *   DEL          unregister: always 0; the id is absent
 *   UPD v        update_transport: 0 when present (holds v), else -ENOENT
 *   CAS e d      0 when it holds e (holds d); -EAGAIN with the current
 *                value when it holds another; -ENOENT when absent
 *
 * The search is Wing & Gong's, with Lowe's memoization of (set of
 * linearized operations, state): at each step any pending operation
 * invoked before the earliest response among the pending ones may take
 * effect next, if its recorded result agrees with the state. Histories
 * of a few hundred operations with a handful of processes check in
 * milliseconds. Operations that did not complete (the process died) are
 * not recorded.
 */
#ifndef CONNREG_TEST_LINCHECK_H
#define CONNREG_TEST_LINCHECK_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum lc_kind { LC_SET, LC_GET, LC_DEL, LC_UPD, LC_CAS };

struct lc_op {
	uint64_t inv, resp;	/* CLOCK_MONOTONIC ns around the call */
	uint64_t arg, arg2;	/* SET/UPD value; CAS expected, desired */
	uint64_t out;		/* GET value; CAS current on -EAGAIN */
	int32_t rc;
	uint8_t kind;
	uint8_t id;
};

struct lc_state {
	bool present;
	uint64_t value;
};

/* Apply op to s if its recorded result is what the specification gives. */
static inline bool lc_step(const struct lc_op *op, struct lc_state *s)
{
	switch (op->kind) {
	case LC_SET:
		if (op->rc != 0)
			return false;
		s->present = true;
		s->value = op->arg;
		return true;
	case LC_GET:
		if (!s->present)
			return op->rc == -ENOENT;
		return op->rc == 0 && op->out == s->value;
	case LC_DEL:
		if (op->rc != 0)
			return false;
		s->present = false;
		return true;
	case LC_UPD:
		if (!s->present)
			return op->rc == -ENOENT;
		if (op->rc != 0)
			return false;
		s->value = op->arg;
		return true;
	case LC_CAS:
		if (!s->present)
			return op->rc == -ENOENT;
		if (s->value == op->arg) {
			if (op->rc != 0)
				return false;
			s->value = op->arg2;
			return true;
		}
		return op->rc == -EAGAIN && op->out == s->value;
	}
	return false;
}

struct lc_search {
	const struct lc_op *ops;	/* sorted by inv */
	size_t n;
	uint8_t *done;
	uint64_t *zob;			/* a random key per op: XOR over done ops */
	uint64_t *memo;			/* open-addressed set of visited (done, state) */
	size_t memo_cap;
	size_t memo_used;
	uint64_t budget;		/* steps left before giving up */
};

static inline uint64_t lc_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x | 1;	/* 0 marks an empty memo cell */
}

/* True if (key) was already visited; records it otherwise. */
static inline bool lc_seen(struct lc_search *z, uint64_t key)
{
	size_t i = key & (z->memo_cap - 1);

	if (z->memo_used > z->memo_cap / 4 * 3)
		return false;	/* full: search on without memory (the budget bounds it) */
	while (z->memo[i]) {
		if (z->memo[i] == key)
			return true;
		i = (i + 1) & (z->memo_cap - 1);
	}
	z->memo[i] = key;
	z->memo_used++;
	return false;
}

/* 1: linearizable, 0: not, -1: gave up (budget). */
static int lc_dfs(struct lc_search *z, size_t lo, uint64_t zkey, struct lc_state s)
{
	while (lo < z->n && z->done[lo])
		lo++;
	if (lo == z->n)
		return 1;
	if (z->budget-- == 0)
		return -1;
	if (lc_seen(z, lc_mix(zkey ^ lc_mix(s.present ? s.value ^ 0x5bd1e995u : 0x9e37u))))
		return 0;
	/* Candidates: pending ops invoked before the earliest pending response. */
	uint64_t min_resp = UINT64_MAX;
	for (size_t i = lo; i < z->n && z->ops[i].inv < min_resp; i++)
		if (!z->done[i] && z->ops[i].resp < min_resp)
			min_resp = z->ops[i].resp;
	for (size_t i = lo; i < z->n && z->ops[i].inv < min_resp; i++) {
		struct lc_state next = s;

		if (z->done[i] || !lc_step(&z->ops[i], &next))
			continue;
		z->done[i] = 1;
		int r = lc_dfs(z, lo, zkey ^ z->zob[i], next);
		z->done[i] = 0;
		if (r != 0)
			return r;
	}
	return 0;
}

static int lc_cmp_inv(const void *a, const void *b)
{
	const struct lc_op *x = a, *y = b;

	return x->inv < y->inv ? -1 : x->inv > y->inv;
}

/*
 * Check one id's operations (any order; sorted here) from an initial state.
 * 1: linearizable, 0: not, -1: undecided within the step budget.
 */
static inline int lc_check(struct lc_op *ops, size_t n, struct lc_state init)
{
	struct lc_search z = { ops, n, NULL, NULL, NULL, 1, 0, 20u * 1000 * 1000 };
	uint64_t seed = 0x243f6a8885a308d3ull;
	int r;

	qsort(ops, n, sizeof(*ops), lc_cmp_inv);
	while (z.memo_cap < 8 * n + 1024)
		z.memo_cap <<= 1;
	z.memo_cap <<= 4;
	z.done = calloc(n + 1, 1);
	z.zob = malloc((n + 1) * sizeof(uint64_t));
	z.memo = calloc(z.memo_cap, sizeof(uint64_t));
	if (!z.done || !z.zob || !z.memo) {
		r = -1;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		z.zob[i] = lc_mix(seed += 0x9e3779b97f4a7c15ull);
	r = lc_dfs(&z, 0, 0, init);
out:
	free(z.done);
	free(z.zob);
	free(z.memo);
	return r;
}

#endif /* CONNREG_TEST_LINCHECK_H */
