/*
 * Capacity is exact both ways: `capacity` live ids always fit (also after
 * any amount of churn), and a new id beyond that gets -ENOSPC (INV-5).
 */
#include "common.h"

TestSuite(capacity, .fini = t_cleanup_names, .timeout = 120);

/* ------------------------------------------------------------------ */
/* id model                                                            */
/* ------------------------------------------------------------------ */

enum { ID_FIXED = 0, ID_VARLEN = 1, ID_MAXLEN = 2 };

/*
 * Id for number `num`:
 *  ID_FIXED:  13-byte binary id
 *  ID_VARLEN: LEB128(num) padded to a length in [len(LEB128), key_max]
 *  ID_MAXLEN: LEB128(num) padded to exactly key_max
 * LEB128 is prefix-free, so different numbers never give the same id.
 */
static size_t mkid(uint8_t *buf, uint64_t num, int mode, uint32_t key_max)
{
	if (mode == ID_FIXED)
		return t_id(buf, 7, num);
	size_t n = 0;
	uint64_t x = num;
	do {
		uint8_t b = x & 0x7f;
		x >>= 7;
		buf[n++] = (uint8_t)(b | (x ? 0x80 : 0));
	} while (x);
	size_t len;
	if (mode == ID_MAXLEN) {
		len = key_max;
	} else {
		uint64_t s = num * 0x9E3779B97F4A7C15ull + 11;
		len = n + (size_t)(t_rand(&s) % (key_max - n + 1));
	}
	for (size_t i = n; i < len; i++)
		buf[i] = (uint8_t)(num * 31 + i);
	return len;
}

static uint64_t val_of(uint64_t num, uint64_t gen)
{
	return (num * 0x9E3779B97F4A7C15ull) ^ (gen * 0xC2B2AE3D27D4EB4Full) ^ 0x5555;
}

typedef struct {
	connreg_t *r;
	uint64_t cap;
	int mode;
	uint32_t key_max;
	uint64_t *num; /* live id numbers, [0, n) */
	uint64_t *val; /* their current values */
	uint8_t *is_live; /* by number */
	uint8_t *big;     /* by number: id was made with ID_MAXLEN */
	uint64_t n;
	uint64_t next; /* next unused number */
	uint64_t max_num;
	uint64_t gen;
} model_t;

static void model_init(model_t *m, connreg_t *r, uint64_t cap, int mode, uint32_t key_max,
		       uint64_t max_num)
{
	memset(m, 0, sizeof *m);
	m->r = r;
	m->cap = cap;
	m->mode = mode;
	m->key_max = key_max;
	m->max_num = max_num;
	m->num = calloc(cap + 1, sizeof *m->num);
	m->val = calloc(cap + 1, sizeof *m->val);
	m->is_live = calloc(max_num, 1);
	m->big = calloc(max_num, 1);
	cr_assert(m->num && m->val && m->is_live && m->big);
}

static void model_free(model_t *m)
{
	free(m->num);
	free(m->val);
	free(m->is_live);
	free(m->big);
}

static size_t model_id(model_t *m, uint8_t *buf, uint64_t num)
{
	return mkid(buf, num, m->big[num] ? ID_MAXLEN : m->mode, m->key_max);
}

/* Register a brand-new id; expect `want` (0 or -ENOSPC). */
static void model_add(model_t *m, int want, int big)
{
	static uint8_t buf[CONNREG_KEY_MAX_LIMIT];
	uint64_t num = m->next++;
	cr_assert_lt(num, m->max_num, "test model out of numbers");
	m->big[num] = (uint8_t)(big && m->mode != ID_FIXED);
	size_t len = model_id(m, buf, num);
	uint64_t v = val_of(num, ++m->gen);
	int rc = connreg_register(m->r, buf, len, v);
	cr_assert_eq(rc, want, "register of new id #%" PRIu64 " with %" PRIu64 "/%" PRIu64
		     " live: %d (%s), want %d", num, m->n, m->cap, rc, connreg_strerror(rc), want);
	if (rc == 0) {
		m->num[m->n] = num;
		m->val[m->n] = v;
		m->n++;
		m->is_live[num] = 1;
	} else {
		/* the failed id must not be visible */
		uint64_t got;
		int g = connreg_get_transport(m->r, buf, len, &got);
		cr_assert_eq(g, -ENOENT, "id refused with %d is visible (get=%d)", rc, g);
	}
}

static void model_remove_at(model_t *m, uint64_t i)
{
	static uint8_t buf[CONNREG_KEY_MAX_LIMIT];
	uint64_t num = m->num[i];
	size_t len = model_id(m, buf, num);
	int rc = connreg_unregister(m->r, buf, len);
	cr_assert_eq(rc, 0, "unregister #%" PRIu64 ": %d", num, rc);
	m->is_live[num] = 0;
	m->n--;
	m->num[i] = m->num[m->n];
	m->val[i] = m->val[m->n];
}

/* Update a live id, through register (via_register) or update_transport. */
static void model_update_at(model_t *m, uint64_t i, int via_register)
{
	static uint8_t buf[CONNREG_KEY_MAX_LIMIT];
	uint64_t num = m->num[i];
	size_t len = model_id(m, buf, num);
	uint64_t v = val_of(num, ++m->gen);
	int rc = via_register ? connreg_register(m->r, buf, len, v)
			      : connreg_update_transport(m->r, buf, len, v);
	cr_assert_eq(rc, 0, "%s of live id #%" PRIu64 " (%" PRIu64 "/%" PRIu64 " live): %d (%s)",
		     via_register ? "register" : "update_transport", num, m->n, m->cap, rc,
		     connreg_strerror(rc));
	m->val[i] = v;
}

/* Every live id reads back its value; every dead id is absent. */
static void model_verify(model_t *m)
{
	static uint8_t buf[CONNREG_KEY_MAX_LIMIT];
	for (uint64_t i = 0; i < m->n; i++) {
		uint64_t v = 0;
		size_t len = model_id(m, buf, m->num[i]);
		int rc = connreg_get_transport(m->r, buf, len, &v);
		cr_assert_eq(rc, 0, "live id #%" PRIu64 ": get = %d", m->num[i], rc);
		cr_assert_eq(v, m->val[i], "live id #%" PRIu64 ": %#" PRIx64 " want %#" PRIx64,
			     m->num[i], v, m->val[i]);
	}
	for (uint64_t num = 0; num < m->next; num++) {
		if (m->is_live[num])
			continue;
		uint64_t v;
		size_t len = model_id(m, buf, num);
		int rc = connreg_get_transport(m->r, buf, len, &v);
		cr_assert_eq(rc, -ENOENT, "dead id #%" PRIu64 ": get = %d", num, rc);
	}
}

/* Fill back to capacity (new ids fit), then one more gets -ENOSPC. */
static void model_fill_exact(model_t *m, int big)
{
	while (m->n < m->cap)
		model_add(m, 0, big);
	model_add(m, -ENOSPC, big);
	model_add(m, -ENOSPC, 0);
}

/*
 * Churn: `steps` random operations keeping the live count in
 * [cap - slack, cap]; new ids at capacity must get -ENOSPC, below must fit.
 */
static void model_churn(model_t *m, uint64_t steps, uint64_t slack, uint64_t seed)
{
	uint64_t lo = m->cap > slack ? m->cap - slack : 0;
	for (uint64_t s = 0; s < steps; s++) {
		uint64_t x = t_rand(&seed);
		unsigned op = (unsigned)(x % 100);
		if (m->n == m->cap && op < 5) {
			model_add(m, -ENOSPC, 0); /* full: a new id is refused */
		} else if (op < 45) {
			if (m->n > lo && m->n > 0)
				model_remove_at(m, (x >> 8) % m->n);
			else
				model_add(m, 0, 0);
		} else if (op < 85) {
			if (m->n < m->cap)
				model_add(m, 0, (x >> 40) & 1);
			else
				model_remove_at(m, (x >> 8) % m->n);
		} else if (m->n > 0) {
			model_update_at(m, (x >> 8) % m->n, op & 1);
		}
	}
}

static connreg_t *make_reg(char *name, const char *tag, uint64_t capacity, uint32_t key_max)
{
	t_name(name, tag);
	connreg_config_t cfg = t_cfg(capacity, key_max, 0);
	connreg_t *r = NULL;
	int rc = connreg_create(name, &cfg, &r);
	cr_assert_eq(rc, 0, "connreg_create(%s, capacity %" PRIu64 ") = %d (%s)", name, capacity, rc,
		     connreg_strerror(rc));
	return r;
}

/* ------------------------------------------------------------------ */
/* exact fill                                                          */
/* ------------------------------------------------------------------ */

static void exact_fill_case(const char *tag, uint64_t cap)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, tag, cap, 0);
	model_t m;
	model_init(&m, r, cap, ID_FIXED, 64, cap + 64);

	model_fill_exact(&m, 0);
	/* updates of every live id still succeed while full, both ways */
	for (uint64_t i = 0; i < m.n; i++) {
		model_update_at(&m, i, 0);
		model_update_at(&m, i, 1);
	}
	model_add(&m, -ENOSPC, 0);
	model_verify(&m);

	/* unregister one: exactly one new id fits */
	model_remove_at(&m, cap / 2);
	model_add(&m, 0, 0);
	model_add(&m, -ENOSPC, 0);

	/* re-registering an id just unregistered fits too */
	uint8_t buf[T_ID_LEN];
	uint64_t num = m.num[0];
	uint64_t v = m.val[0];
	size_t len = t_id(buf, 7, num);
	cr_assert_eq(connreg_unregister(r, buf, len), 0);
	cr_assert_eq(connreg_register(r, buf, len, v), 0);
	model_add(&m, -ENOSPC, 0);
	model_verify(&m);

	model_free(&m);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(capacity, capacity_1_holds_exactly_one_id)
{
	exact_fill_case("cap1", 1);
}

Test(capacity, capacity_7_holds_exactly_seven_ids)
{
	exact_fill_case("cap7", 7);
}

Test(capacity, capacity_1000_fill_then_ENOSPC_while_updates_succeed)
{
	exact_fill_case("cap1000", 1000);
}

Test(capacity, capacity_is_shared_by_all_handles)
{
	char name[T_NAME_BUF];
	connreg_t *a = make_reg(name, "shared", 10, 0);
	connreg_t *b = NULL;
	cr_assert_eq(connreg_open(name, &b), 0);
	uint8_t id[T_ID_LEN];
	for (uint64_t i = 0; i < 10; i++)
		cr_assert_eq(connreg_register(i & 1 ? a : b, id, t_id(id, 1, i), i), 0);
	cr_assert_eq(connreg_register(a, id, t_id(id, 1, 10), 10), -ENOSPC);
	cr_assert_eq(connreg_register(b, id, t_id(id, 1, 11), 11), -ENOSPC);
	cr_assert_eq(connreg_unregister(b, id, t_id(id, 1, 3)), 0);
	cr_assert_eq(connreg_register(a, id, t_id(id, 1, 10), 10), 0);
	cr_assert_eq(connreg_register(b, id, t_id(id, 1, 11), 11), -ENOSPC);
	connreg_close(b);
	connreg_close(a);
	cr_assert_eq(connreg_unlink(name), 0);
}

/* ------------------------------------------------------------------ */
/* churn                                                               */
/* ------------------------------------------------------------------ */

Test(capacity, churn_50x_capacity_then_capacity_fits_exactly)
{
	const uint64_t cap = 1000;
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "churn1000", cap, 0);
	model_t m;
	model_init(&m, r, cap, ID_FIXED, 64, 100 * cap);

	model_fill_exact(&m, 0);
	/* strict replacement: at capacity, remove one then add one */
	for (uint64_t s = 0; s < 25 * cap; s++) {
		uint64_t seed = s * 7919 + 1;
		model_remove_at(&m, t_rand(&seed) % m.n);
		model_add(&m, 0, 0);
		if (s % 97 == 0)
			model_add(&m, -ENOSPC, 0);
	}
	/* random churn near capacity, another 25x */
	model_churn(&m, 60 * cap, 16, 12345);
	model_fill_exact(&m, 0);
	model_verify(&m);

	/* and from empty: everything out, capacity in again */
	while (m.n)
		model_remove_at(&m, m.n - 1);
	model_fill_exact(&m, 0);
	model_verify(&m);

	model_free(&m);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

static void small_churn_case(const char *tag, uint64_t cap, uint64_t rounds)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, tag, cap, 0);
	model_t m;
	model_init(&m, r, cap, ID_FIXED, 64, rounds * 3 + cap + 64);
	for (uint64_t k = 0; k < rounds; k++) {
		model_fill_exact(&m, 0);
		uint64_t seed = k + 99;
		model_remove_at(&m, t_rand(&seed) % m.n);
	}
	model_fill_exact(&m, 0);
	model_verify(&m);
	model_free(&m);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(capacity, capacity_1_churn_keeps_exactly_one_place)
{
	small_churn_case("churn1", 1, 3000);
}

Test(capacity, capacity_7_churn_keeps_exactly_seven_places)
{
	small_churn_case("churn7", 7, 3000);
}

Test(capacity, variable_length_id_churn_then_max_length_ids_fill_capacity)
{
	/* ids of every length from 1 to key_max churn; afterwards `capacity`
	 * ids of the longest length must still fit */
	const uint64_t cap = 300;
	const uint32_t key_max = 200;
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "varlen", cap, key_max);
	model_t m;
	model_init(&m, r, cap, ID_VARLEN, key_max, 60 * cap);
	model_fill_exact(&m, 0);
	model_churn(&m, 50 * cap, 32, 777);
	model_verify(&m);
	while (m.n)
		model_remove_at(&m, m.n - 1);
	model_fill_exact(&m, 1); /* all key_max long */
	model_verify(&m);
	/* and back to short ones */
	while (m.n)
		model_remove_at(&m, 0);
	model_fill_exact(&m, 0);
	model_verify(&m);
	model_free(&m);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(capacity, key_max_4096_ids_fill_capacity_exactly)
{
	const uint64_t cap = 50;
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "km4096", cap, CONNREG_KEY_MAX_LIMIT);
	model_t m;
	model_init(&m, r, cap, ID_VARLEN, CONNREG_KEY_MAX_LIMIT, 40 * cap);
	model_fill_exact(&m, 1);
	model_verify(&m);
	model_churn(&m, 20 * cap, 5, 4242);
	model_fill_exact(&m, 1);
	model_verify(&m);
	model_free(&m);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(capacity, update_churn_200x_capacity_never_fails)
{
	const uint64_t cap = 1000;
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "updchurn", cap, 0);
	model_t m;
	model_init(&m, r, cap, ID_FIXED, 64, 3 * cap);
	model_fill_exact(&m, 0);
	for (uint64_t s = 0; s < 200 * cap; s++)
		model_update_at(&m, s % cap, (s / cap) & 1);
	/* hammer a single id too */
	for (uint64_t s = 0; s < 20000; s++)
		model_update_at(&m, 0, s & 1);
	model_add(&m, -ENOSPC, 0);
	model_verify(&m);
	/* the updates did not eat capacity: replace everything */
	while (m.n)
		model_remove_at(&m, m.n - 1);
	model_fill_exact(&m, 0);
	model_verify(&m);
	model_free(&m);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(capacity, capacity_1_update_churn_never_fails)
{
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "upd1", 1, 0);
	cr_assert_eq(connreg_register(r, "only", 4, 0), 0);
	for (uint64_t s = 1; s <= 50000; s++) {
		int rc = (s & 1) ? connreg_update_transport(r, "only", 4, s)
				 : connreg_register(r, "only", 4, s);
		cr_assert_eq(rc, 0, "update #%" PRIu64 ": %d (%s)", s, rc, connreg_strerror(rc));
	}
	uint64_t v;
	cr_assert_eq(connreg_get_transport(r, "only", 4, &v), 0);
	cr_assert_eq(v, 50000);
	cr_assert_eq(connreg_register(r, "other", 5, 1), -ENOSPC);
	cr_assert_eq(connreg_unregister(r, "only", 4), 0);
	cr_assert_eq(connreg_register(r, "other", 5, 1), 0);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

/* ------------------------------------------------------------------ */
/* concurrent churn from several processes                             */
/* ------------------------------------------------------------------ */

#define CC_PROCS 2
#define CC_SHARE 200
#define CC_STEPS 20000
#define CC_MS 1000 /* and at least this long */

struct cc_shared {
	t_report_t rep;
	uint64_t final_num[CC_PROCS][CC_SHARE];
	uint64_t final_val[CC_PROCS][CC_SHARE];
	uint64_t final_n[CC_PROCS];
	uint64_t enospc[CC_PROCS];
	uint64_t again[CC_PROCS]; /* -EAGAIN retries */
	uint64_t ops[CC_PROCS];
};

struct cc_args {
	const char *name;
	struct cc_shared *sh;
	t_gate_t *gate;
	int idx;
};

static int cc_child(void *p)
{
	struct cc_args *a = p;
	struct cc_shared *sh = a->sh;
	t_gate_wait(a->gate);
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(&sh->rep, rc == 0, return 1, "child %d open: %d", a->idx, rc);
	uint64_t num[CC_SHARE], val[CC_SHARE], n = 0, next = 0, seed = 1000 + (uint64_t)a->idx;
	uint8_t id[T_ID_LEN];
	uint32_t ns = 100 + (uint32_t)a->idx;
	uint64_t end = t_now_ms() + CC_MS;
	for (uint64_t s = 0; s < CC_STEPS || t_now_ms() < end; s++) {
		uint64_t x = t_rand(&seed);
		if (n < CC_SHARE && (n < CC_SHARE / 2 || (x & 1))) {
			uint64_t v = t_rand(&seed);
			rc = T_RETRY_EAGAIN(connreg_register(r, id, t_id(id, ns, next), v),
					    &sh->again[a->idx]);
			if (rc == -ENOSPC)
				sh->enospc[a->idx]++;
			T_CHECK(&sh->rep, rc == 0, return 1,
				"child %d: register of new id with %" PRIu64 " of its %d live: %d (%s)",
				a->idx, n, CC_SHARE, rc, connreg_strerror(rc));
			num[n] = next++;
			val[n] = v;
			n++;
		} else if ((x >> 1) % 4 == 0) {
			uint64_t i = (x >> 8) % n;
			uint64_t v = t_rand(&seed);
			rc = T_RETRY_EAGAIN(connreg_update_transport(r, id, t_id(id, ns, num[i]), v),
					    &sh->again[a->idx]);
			T_CHECK(&sh->rep, rc == 0, return 1, "child %d update: %d (%s)", a->idx, rc,
				connreg_strerror(rc));
			val[i] = v;
		} else {
			uint64_t i = (x >> 8) % n;
			rc = connreg_unregister(r, id, t_id(id, ns, num[i]));
			T_CHECK(&sh->rep, rc == 0, return 1, "child %d unregister: %d", a->idx, rc);
			n--;
			num[i] = num[n];
			val[i] = val[n];
		}
		sh->ops[a->idx]++;
	}
	/* leave the share full */
	while (n < CC_SHARE) {
		uint64_t v = t_rand(&seed);
		rc = T_RETRY_EAGAIN(connreg_register(r, id, t_id(id, ns, next), v), &sh->again[a->idx]);
		T_CHECK(&sh->rep, rc == 0, return 1, "child %d final fill: %d (%s)", a->idx, rc,
			connreg_strerror(rc));
		num[n] = next++;
		val[n] = v;
		n++;
	}
	memcpy(sh->final_num[a->idx], num, sizeof num);
	memcpy(sh->final_val[a->idx], val, sizeof val);
	sh->final_n[a->idx] = n;
	connreg_close(r);
	return 0;
}

Test(capacity, concurrent_churn_from_processes_never_refuses_below_capacity)
{
	const uint64_t cap = CC_PROCS * CC_SHARE;
	char name[T_NAME_BUF];
	connreg_t *r = make_reg(name, "ccchurn", cap, 0);
	struct cc_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	t_gate_t gate;
	cr_assert_eq(t_gate_init(&gate), 0);
	struct cc_args args[CC_PROCS];
	pid_t pids[CC_PROCS];
	for (int i = 0; i < CC_PROCS; i++) {
		args[i] = (struct cc_args){ name, sh, &gate, i };
		pids[i] = t_fork(cc_child, &args[i]);
		cr_assert_gt(pids[i], 0);
	}
	t_gate_open(&gate);
	int st[CC_PROCS];
	for (int i = 0; i < CC_PROCS; i++)
		st[i] = t_wait(pids[i], 60000);
	T_ASSERT_REPORT_OK(&sh->rep);
	for (int i = 0; i < CC_PROCS; i++) {
		cr_assert_eq(st[i], 0, "child %d status %d", i, st[i]);
		cr_log_info("child %d: %" PRIu64 " ops, %" PRIu64 " -EAGAIN retries", i, sh->ops[i],
			    sh->again[i]);
	}

	/* every child's final ids hold their values; the registry is full */
	uint8_t id[T_ID_LEN];
	for (int i = 0; i < CC_PROCS; i++) {
		cr_assert_eq(sh->final_n[i], CC_SHARE);
		for (int k = 0; k < CC_SHARE; k++) {
			uint64_t v;
			size_t len = t_id(id, 100 + (uint32_t)i, sh->final_num[i][k]);
			cr_assert_eq(connreg_get_transport(r, id, len, &v), 0);
			cr_assert_eq(v, sh->final_val[i][k]);
		}
	}
	cr_assert_eq(connreg_register(r, id, t_id(id, 999, 0), 1), -ENOSPC);

	/* remove everything, then exactly `cap` new ids fit */
	for (int i = 0; i < CC_PROCS; i++)
		for (int k = 0; k < CC_SHARE; k++)
			cr_assert_eq(connreg_unregister(r, id, t_id(id, 100 + (uint32_t)i,
								       sh->final_num[i][k])), 0);
	for (uint64_t k = 0; k < cap; k++) {
		int rc = connreg_register(r, id, t_id(id, 999, k), k);
		cr_assert_eq(rc, 0, "refill #%" PRIu64 ": %d (%s)", k, rc, connreg_strerror(rc));
	}
	cr_assert_eq(connreg_register(r, id, t_id(id, 999, cap), 1), -ENOSPC);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}
