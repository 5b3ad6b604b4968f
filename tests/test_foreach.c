/*
 * connreg_foreach: every live id exactly once with its value, ids passed
 * back byte for byte, early stop, callbacks that call connreg, and the
 * guarantees under concurrent churn from another process.
 */
#include "ext_common.h"

TestSuite(foreach, .fini = t_cleanup_names, .timeout = 60);

/* Ids "K" + ns + n (t_id); the walk records visits per n of one namespace. */
struct visits {
	uint32_t ns;
	size_t n;
	uint32_t *count;   /* visits per id */
	uint64_t *value;   /* last value seen per id */
	size_t total;      /* every callback call */
	size_t foreign;    /* ids not of the form above */
	char foreign_what[128];
};

static void visits_init(struct visits *v, uint32_t ns, size_t n)
{
	memset(v, 0, sizeof *v);
	v->ns = ns;
	v->n = n;
	v->count = calloc(n, sizeof *v->count);
	v->value = calloc(n, sizeof *v->value);
	cr_assert(v->count && v->value);
}

static void visits_free(struct visits *v)
{
	free(v->count);
	free(v->value);
}

/* Decode a t_id() id; false when it is not one. */
static bool parse_tid(const void *id, size_t len, uint32_t *ns, uint64_t *n)
{
	const uint8_t *b = id;
	if (len != T_ID_LEN || b[0] != 'K')
		return false;
	*ns = 0;
	*n = 0;
	for (int i = 0; i < 4; i++)
		*ns |= (uint32_t)b[1 + i] << (8 * i);
	for (int i = 0; i < 8; i++)
		*n |= (uint64_t)b[5 + i] << (8 * i);
	return true;
}

static int visits_cb(const void *id, size_t len, uint64_t transport, void *arg)
{
	struct visits *v = arg;
	uint32_t ns;
	uint64_t n;
	v->total++;
	if (!parse_tid(id, len, &ns, &n) || ns != v->ns || n >= v->n) {
		if (v->foreign++ == 0)
			snprintf(v->foreign_what, sizeof v->foreign_what, "len %zu first byte %#x", len,
				 len ? ((const uint8_t *)id)[0] : 0);
		return 0;
	}
	v->count[n]++;
	v->value[n] = transport;
	return 0;
}

static uint64_t fval(uint64_t k, int gen)
{
	return (k << 8) ^ (uint64_t)gen ^ 0xF00D000000000000ull;
}

static int count_cb(const void *id, size_t len, uint64_t transport, void *arg)
{
	(void)id, (void)len, (void)transport;
	(*(size_t *)arg)++;
	return 0;
}

Test(foreach, empty_registry_visits_nothing)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "fe-empty", 100, 0, 0, 0);
	size_t calls = 0;
	cr_assert_eq(connreg_foreach(r, count_cb, &calls), 0);
	cr_assert_eq(calls, 0);
	/* also after everything registered was removed again */
	for (int i = 0; i < 50; i++) {
		uint8_t id[T_ID_LEN];
		cr_assert_eq(connreg_register(r, id, t_id(id, 0, (uint64_t)i), 1), 0);
	}
	for (int i = 0; i < 50; i++) {
		uint8_t id[T_ID_LEN];
		cr_assert_eq(connreg_unregister(r, id, t_id(id, 0, (uint64_t)i)), 0);
	}
	cr_assert_eq(connreg_foreach(r, count_cb, &calls), 0);
	cr_assert_eq(calls, 0, "walk of an emptied registry called back %zu times", calls);
	connreg_close(r);
}

Test(foreach, visits_every_live_id_exactly_once_with_its_value)
{
	char name[T_NAME_BUF];
	enum { N = 5000 };
	connreg_t *r = x_make(name, "fe-all", N, 0, 0, 0);
	static int state[N]; /* 0 never, 1 live gen g, -1 removed */
	static int gen[N];
	for (uint64_t k = 0; k < N; k++) {
		uint8_t id[T_ID_LEN];
		if (k % 10 == 9)
			continue; /* never registered */
		cr_assert_eq(connreg_register(r, id, t_id(id, 7, k), fval(k, 0)), 0);
		state[k] = 1;
	}
	for (uint64_t k = 0; k < N; k++) {
		uint8_t id[T_ID_LEN];
		size_t len = t_id(id, 7, k);
		if (state[k] == 1 && k % 5 == 0) {
			cr_assert_eq(connreg_unregister(r, id, len), 0);
			state[k] = -1;
		} else if (state[k] == 1 && k % 3 == 0) {
			gen[k] = 1;
			cr_assert_eq(connreg_update_transport(r, id, len, fval(k, 1)), 0);
		} else if (state[k] == 1 && k % 7 == 0) {
			gen[k] = 2;
			cr_assert_eq(connreg_cas_transport(r, id, len, fval(k, 0), fval(k, 2), NULL), 0);
		}
	}
	struct visits v;
	visits_init(&v, 7, N);
	cr_assert_eq(connreg_foreach(r, visits_cb, &v), 0);
	cr_assert_eq(v.foreign, 0, "%zu visits of unknown ids (%s)", v.foreign, v.foreign_what);
	size_t live = 0;
	for (size_t k = 0; k < N; k++) {
		if (state[k] == 1) {
			live++;
			cr_assert_eq(v.count[k], 1, "live id %zu visited %u times", k, v.count[k]);
			cr_assert_eq(v.value[k], fval(k, gen[k]), "id %zu: value %#" PRIx64 ", want %#" PRIx64,
				     k, v.value[k], fval(k, gen[k]));
		} else {
			cr_assert_eq(v.count[k], 0, "%s id %zu visited %u times",
				     state[k] ? "removed" : "never-registered", k, v.count[k]);
		}
	}
	cr_assert_eq(v.total, live, "walk called back %zu times for %zu live ids", v.total, live);
	connreg_stats_t st = { .size = sizeof(st) };
	cr_assert_eq(connreg_stats(r, &st), 0);
	cr_assert_eq(st.live, live);
	visits_free(&v);
	connreg_close(r);
}

/* Binary ids: raw bytes with NULs, 0xff, prefixes of each other, key_max long. */
#define BIN_KMAX 48
#define BIN_N 64

struct bin_set {
	uint8_t id[BIN_N][BIN_KMAX];
	size_t len[BIN_N];
	uint32_t seen[BIN_N];
	size_t unknown;
};

static int bin_cb(const void *id, size_t len, uint64_t transport, void *arg)
{
	struct bin_set *b = arg;
	if (transport >= BIN_N || b->len[transport] != len ||
	    memcmp(b->id[transport], id, len) != 0) {
		b->unknown++;
		return 0;
	}
	b->seen[transport]++;
	return 0;
}

Test(foreach, binary_ids_are_passed_back_exactly)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "fe-bin", 256, BIN_KMAX, 0, 0);
	struct bin_set *b = calloc(1, sizeof *b);
	cr_assert_not_null(b);
	/* ids i: all-zero of length 1..16, then prefixes "a\0b\0..." and random bytes */
	for (int i = 0; i < BIN_N; i++) {
		if (i < 16) {
			b->len[i] = (size_t)i + 1;              /* "\0", "\0\0", ... */
		} else if (i < 32) {
			b->len[i] = (size_t)(i - 15);           /* prefixes of one pattern */
			for (size_t j = 0; j < b->len[i]; j++)
				b->id[i][j] = (uint8_t)(j % 2 ? 0 : 0xff - j);
		} else if (i < 40) {
			b->len[i] = BIN_KMAX;                    /* key_max, differing in the last byte */
			memset(b->id[i], 0, BIN_KMAX);
			b->id[i][BIN_KMAX - 1] = (uint8_t)i;
		} else {
			uint64_t seed = (uint64_t)i * 1234567;
			b->len[i] = 1 + (size_t)(t_rand(&seed) % BIN_KMAX);
			for (size_t j = 0; j < b->len[i]; j++)
				b->id[i][j] = (uint8_t)t_rand(&seed);
			b->id[i][0] = 0x80 | (uint8_t)i; /* distinct from the sets above */
		}
		cr_assert_eq(connreg_register(r, b->id[i], b->len[i], (uint64_t)i), 0, "register %d", i);
	}
	cr_assert_eq(connreg_foreach(r, bin_cb, b), 0);
	cr_assert_eq(b->unknown, 0, "%zu visits with ids/lengths that were never registered",
		     b->unknown);
	for (int i = 0; i < BIN_N; i++)
		cr_assert_eq(b->seen[i], 1, "binary id %d (len %zu) visited %u times", i, b->len[i],
			     b->seen[i]);
	free(b);
	connreg_close(r);
}

struct stop_arg {
	int calls;
	int stop_at;
	int ret;
};

static int stop_cb(const void *id, size_t len, uint64_t transport, void *arg)
{
	(void)id, (void)len, (void)transport;
	struct stop_arg *s = arg;
	s->calls++;
	return s->calls == s->stop_at ? s->ret : 0;
}

Test(foreach, nonzero_callback_return_stops_the_walk_and_is_returned)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "fe-stop", 200, 0, 0, 0);
	for (int i = 0; i < 100; i++) {
		uint8_t id[T_ID_LEN];
		cr_assert_eq(connreg_register(r, id, t_id(id, 0, (uint64_t)i), (uint64_t)i), 0);
	}
	int rets[] = { 42, -7, 1, INT32_MAX, INT32_MIN };
	int stops[] = { 3, 1, 100, 50, 2 };
	for (unsigned j = 0; j < 5; j++) {
		struct stop_arg s = { 0, stops[j], rets[j] };
		int rc = connreg_foreach(r, stop_cb, &s);
		cr_assert_eq(rc, rets[j], "foreach = %d, want the callback's %d", rc, rets[j]);
		cr_assert_eq(s.calls, stops[j], "callback called %d times after returning %d at call %d",
			     s.calls, rets[j], stops[j]);
	}
	/* never stopping: every id, 0 */
	struct stop_arg s = { 0, -1, 0 };
	cr_assert_eq(connreg_foreach(r, stop_cb, &s), 0);
	cr_assert_eq(s.calls, 100);
	connreg_close(r);
}

static int null_arg_calls;

static int null_arg_cb(const void *id, size_t len, uint64_t transport, void *arg)
{
	(void)id, (void)len, (void)transport;
	if (arg == NULL)
		null_arg_calls++;
	return 0;
}

Test(foreach, null_arguments_return_EINVAL)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "fe-null", 16, 0, 0, 0);
	size_t calls = 0;
	cr_assert_eq(connreg_foreach(NULL, count_cb, &calls), -EINVAL);
	cr_assert_eq(connreg_foreach(r, NULL, &calls), -EINVAL);
	cr_assert_eq(connreg_register(r, "a", 1, 1), 0);
	/* arg may be NULL: it is only passed through */
	null_arg_calls = 0;
	cr_assert_eq(connreg_foreach(r, null_arg_cb, NULL), 0);
	cr_assert_eq(null_arg_calls, 1);
	connreg_close(r);
}

/* Callbacks that use the registry. */
struct cbreg {
	connreg_t *r;
	int bad;
	int calls;
	char what[160];
};

static int cb_lookup(const void *id, size_t len, uint64_t transport, void *arg)
{
	struct cbreg *c = arg;
	uint64_t v = ~transport;
	int rc = connreg_get_transport(c->r, id, len, &v);
	c->calls++;
	if ((rc != 0 || v != transport) && c->bad++ == 0)
		snprintf(c->what, sizeof c->what, "get in callback: rc %d, %#" PRIx64 " vs %#" PRIx64,
			 rc, v, transport);
	/* a bulk lookup from the callback, too */
	const void *ids[1] = { id };
	size_t lens[1] = { len };
	uint64_t out[1] = { 0 };
	int brc[1] = { 1 };
	rc = connreg_get_transport_bulk(c->r, 1, ids, lens, out, brc);
	if ((rc != 0 || brc[0] != 0 || out[0] != transport) && c->bad++ == 0)
		snprintf(c->what, sizeof c->what, "bulk in callback: rc %d/%d", rc, brc[0]);
	return 0;
}

static int cb_increment(const void *id, size_t len, uint64_t transport, void *arg)
{
	struct cbreg *c = arg;
	int rc = connreg_cas_transport(c->r, id, len, transport, transport + 1, NULL);
	c->calls++;
	if (rc != 0 && c->bad++ == 0)
		snprintf(c->what, sizeof c->what, "cas in callback: %d", rc);
	return 0;
}

static int cb_remove(const void *id, size_t len, uint64_t transport, void *arg)
{
	(void)transport;
	struct cbreg *c = arg;
	int rc = connreg_unregister(c->r, id, len);
	c->calls++;
	if (rc != 0 && c->bad++ == 0)
		snprintf(c->what, sizeof c->what, "unregister in callback: %d", rc);
	return 0;
}

Test(foreach, callback_may_call_connreg_functions)
{
	char name[T_NAME_BUF];
	enum { N = 2000 };
	connreg_t *r = x_make(name, "fe-cb", N, 0, 0, 0);
	for (uint64_t k = 0; k < N; k++) {
		uint8_t id[T_ID_LEN];
		cr_assert_eq(connreg_register(r, id, t_id(id, 3, k), fval(k, 0)), 0);
	}
	struct cbreg c = { r, 0, 0, "" };
	cr_assert_eq(connreg_foreach(r, cb_lookup, &c), 0);
	cr_assert_eq(c.bad, 0, "%d failures; first: %s", c.bad, c.what);
	cr_assert_eq(c.calls, N);

	/* update each visited id from the callback: each is visited (and bumped) once */
	c = (struct cbreg){ r, 0, 0, "" };
	cr_assert_eq(connreg_foreach(r, cb_increment, &c), 0);
	cr_assert_eq(c.bad, 0, "%d failures; first: %s", c.bad, c.what);
	cr_assert_eq(c.calls, N, "walk with updating callback made %d calls for %d ids", c.calls, N);
	for (uint64_t k = 0; k < N; k++) {
		uint8_t id[T_ID_LEN];
		x_expect_value(r, id, t_id(id, 3, k), fval(k, 0) + 1);
	}

	/* remove each visited id from the callback */
	c = (struct cbreg){ r, 0, 0, "" };
	cr_assert_eq(connreg_foreach(r, cb_remove, &c), 0);
	cr_assert_eq(c.bad, 0, "%d failures; first: %s", c.bad, c.what);
	cr_assert_eq(c.calls, N);
	size_t left = 0;
	cr_assert_eq(connreg_foreach(r, count_cb, &left), 0);
	cr_assert_eq(left, 0, "%zu ids left after removing each from the callback", left);
	X_ASSERT_CHECK_CLEAN(r);
	connreg_close(r);
}

static int fe_echild_child(void *arg)
{
	size_t calls = 0;
	return connreg_foreach(arg, count_cb, &calls) == -ECHILD ? 0 : 1;
}

Test(foreach, parent_handle_in_forked_child_returns_ECHILD)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "fe-echild", 16, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "a", 1, 1), 0);
	pid_t pid = t_fork(fe_echild_child, r);
	cr_assert_eq(t_wait(pid, 10000), 0, "foreach on the parent's handle in a child was not -ECHILD");
	connreg_close(r);
}

/* ------------------------------------------------------------------ */
/* walks under concurrent churn from another process                   */
/* ------------------------------------------------------------------ */

/*
 * namespace 10: ids 0..STABLE-1 registered before the walks and never
 *   removed (the churner updates their values);
 * namespace 10: ids STABLE..STABLE+CHURN-1 registered and removed by the
 *   churner all the time;
 * namespace 10: ids STABLE+CHURN..+NEVER-1 never registered.
 * Values: t_enc(writer 2, id, seq).
 */
#define FC_STABLE 1500
#define FC_CHURN 1500
#define FC_NEVER 1000
#define FC_ALL (FC_STABLE + FC_CHURN + FC_NEVER)
#define FC_MS 1000

struct fc_shared {
	t_report_t rep;
	atomic_uint ready;
	atomic_int stop;
	uint64_t ops;
};

struct fc_args {
	const char *name;
	struct fc_shared *sh;
};

static int fc_churner(void *p)
{
	struct fc_args *a = p;
	struct fc_shared *sh = a->sh;
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(&sh->rep, rc == 0, return 1, "open: %d", rc);
	T_CHECK(&sh->rep, t_barrier(&sh->ready, 2, 10000) == 0, return 1, "barrier");
	static uint32_t seq[FC_STABLE + FC_CHURN];
	static bool live[FC_STABLE + FC_CHURN];
	uint64_t seed = 31337, n = 0, hard_end = t_now_ms() + 20000;
	while (!atomic_load(&sh->stop) && t_now_ms() < hard_end) {
		uint64_t x = t_rand(&seed);
		uint32_t k = (uint32_t)(x % (FC_STABLE + FC_CHURN));
		uint8_t id[T_ID_LEN];
		size_t len = t_id(id, 10, k);
		uint64_t v = t_enc(2, k, ++seq[k]);
		if (k < FC_STABLE) {
			rc = (x >> 40) & 1 ? connreg_update_transport(r, id, len, v)
					   : connreg_register(r, id, len, v);
		} else if (live[k]) {
			if ((x >> 40) % 4 == 0) {
				rc = connreg_update_transport(r, id, len, v);
			} else {
				rc = connreg_unregister(r, id, len);
				live[k] = false;
			}
		} else {
			rc = connreg_register(r, id, len, v);
			live[k] = true;
		}
		T_CHECK(&sh->rep, rc == 0, return 1, "churn op on %u: %d (%s)", k, rc,
			connreg_strerror(rc));
		n++;
	}
	sh->ops = n;
	connreg_close(r);
	return 0;
}

struct fc_walk {
	uint32_t count[FC_ALL];
	uint32_t seq[FC_ALL];
	size_t bad_value, foreign, total;
	char what[160];
};

static int fc_cb(const void *id, size_t len, uint64_t transport, void *arg)
{
	struct fc_walk *w = arg;
	uint32_t ns;
	uint64_t n;
	w->total++;
	if (!parse_tid(id, len, &ns, &n) || ns != 10 || n >= FC_ALL) {
		if (w->foreign++ == 0)
			snprintf(w->what, sizeof w->what, "unknown id of length %zu", len);
		return 0;
	}
	w->count[n]++;
	uint32_t wr, idv, sq;
	if (!t_dec(transport, &wr, &idv, &sq) || wr != 2 || idv != n) {
		if (w->bad_value++ == 0)
			snprintf(w->what, sizeof w->what,
				 "id %" PRIu64 " with value %#" PRIx64 " never written for it", n,
				 transport);
	} else {
		w->seq[n] = sq;
	}
	return 0;
}

Test(foreach, concurrent_churn_stable_ids_once_absent_ids_never_values_genuine)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "fe-churn", 4000, 0, 0, 0);
	for (uint32_t k = 0; k < FC_STABLE; k++) {
		uint8_t id[T_ID_LEN];
		cr_assert_eq(connreg_register(r, id, t_id(id, 10, k), t_enc(2, k, 0)), 0);
	}
	struct fc_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	struct fc_args a = { name, sh };
	pid_t pid = t_fork(fc_churner, &a);
	cr_assert_gt(pid, 0);
	cr_assert_eq(t_barrier(&sh->ready, 2, 10000), 0);

	struct fc_walk *w = malloc(sizeof *w);
	cr_assert_not_null(w);
	static uint32_t last_seq[FC_STABLE];
	unsigned walks = 0;
	size_t churned_seen = 0;
	uint64_t end = t_now_ms() + FC_MS;
	while (t_now_ms() < end || walks < 3) {
		memset(w, 0, sizeof *w);
		int rc = connreg_foreach(r, fc_cb, w);
		cr_assert_eq(rc, 0, "foreach = %d", rc);
		walks++;
		cr_assert_eq(w->foreign, 0, "walk %u: %s", walks, w->what);
		cr_assert_eq(w->bad_value, 0, "walk %u: %zu bad values; first: %s", walks,
			     w->bad_value, w->what);
		for (uint32_t k = 0; k < FC_STABLE; k++) {
			cr_assert_eq(w->count[k], 1, "walk %u: stable id %u visited %u times", walks, k,
				     w->count[k]);
			/* one writer per id: a later walk never sees an older value */
			cr_assert_geq(w->seq[k], last_seq[k], "walk %u: stable id %u went back from "
				      "seq %u to %u", walks, k, last_seq[k], w->seq[k]);
			last_seq[k] = w->seq[k];
		}
		for (uint32_t k = FC_STABLE + FC_CHURN; k < FC_ALL; k++)
			cr_assert_eq(w->count[k], 0, "walk %u: never-registered id %u visited", walks, k);
		for (uint32_t k = FC_STABLE; k < FC_STABLE + FC_CHURN; k++)
			churned_seen += w->count[k];
	}
	atomic_store(&sh->stop, 1);
	X_ASSERT_CHILD_OK(pid, 30000, &sh->rep);
	T_ASSERT_REPORT_OK(&sh->rep);
	cr_assert_gt(sh->ops, 1000u, "the churner made only %" PRIu64 " changes", sh->ops);
	cr_log_info("walks %u, churner ops %" PRIu64 ", churned ids seen %zu", walks, sh->ops,
		    churned_seen);
	free(w);
	X_ASSERT_CHECK_CLEAN(r);
	connreg_close(r);
}
