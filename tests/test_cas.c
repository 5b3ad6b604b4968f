/*
 * connreg_cas_transport: semantics, argument errors, and contention from
 * several processes (each with its own handle): exactly one winner per
 * round, and no lost update in a CAS-retry counter.
 */
#include "ext_common.h"

TestSuite(cas, .fini = t_cleanup_names, .timeout = 60);

/* ------------------------------------------------------------------ */
/* semantics                                                           */
/* ------------------------------------------------------------------ */

Test(cas, match_returns_0_and_changes_value)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "cas-match", 16, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "conn", 4, 5), 0);

	uint64_t cur = 12345;
	int rc = connreg_cas_transport(r, "conn", 4, 5, 6, &cur);
	cr_assert_eq(rc, 0, "cas(5->6) = %d (%s)", rc, connreg_strerror(rc));
	x_expect_value(r, "conn", 4, 6);

	/* again from the new value, through a second handle */
	connreg_t *r2 = NULL;
	cr_assert_eq(connreg_open(name, &r2), 0);
	rc = connreg_cas_transport(r2, "conn", 4, 6, 7, NULL);
	cr_assert_eq(rc, 0, "cas(6->7) via 2nd handle = %d", rc);
	x_expect_value(r, "conn", 4, 7);
	x_expect_value(r2, "conn", 4, 7);
	connreg_close(r2);
	connreg_close(r);
}

Test(cas, mismatch_returns_EAGAIN_with_current_and_changes_nothing)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "cas-mism", 16, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "conn", 4, 5), 0);
	cr_assert_eq(connreg_register(r, "other", 5, 99), 0);

	uint64_t cur = 0;
	int rc = connreg_cas_transport(r, "conn", 4, 7, 8, &cur);
	cr_assert_eq(rc, -EAGAIN, "cas with wrong expected = %d, want -EAGAIN", rc);
	cr_assert_eq(cur, 5, "*current = %" PRIu64 ", want the actual value 5", cur);
	x_expect_value(r, "conn", 4, 5);
	x_expect_value(r, "other", 5, 99);

	/* the desired value equal to the actual one does not make a mismatch succeed */
	cur = 0;
	rc = connreg_cas_transport(r, "conn", 4, 4, 5, &cur);
	cr_assert_eq(rc, -EAGAIN);
	cr_assert_eq(cur, 5);

	/* current may be NULL on a mismatch too */
	rc = connreg_cas_transport(r, "conn", 4, 6, 9, NULL);
	cr_assert_eq(rc, -EAGAIN, "cas mismatch with current NULL = %d", rc);
	x_expect_value(r, "conn", 4, 5);

	/* a retry with the reported value succeeds */
	cur = 0;
	cr_assert_eq(connreg_cas_transport(r, "conn", 4, 1, 2, &cur), -EAGAIN);
	cr_assert_eq(connreg_cas_transport(r, "conn", 4, cur, 2, &cur), 0);
	x_expect_value(r, "conn", 4, 2);
	connreg_close(r);
}

Test(cas, absent_id_returns_ENOENT_and_inserts_nothing)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "cas-absent", 16, 0, 0, 0);
	uint64_t cur = 777;

	int rc = connreg_cas_transport(r, "nope", 4, 0, 1, &cur);
	cr_assert_eq(rc, -ENOENT, "cas of a never-registered id = %d", rc);
	rc = connreg_cas_transport(r, "nope", 4, 0, 1, NULL);
	cr_assert_eq(rc, -ENOENT);
	x_expect_absent(r, "nope", 4);

	/* registered then unregistered: absent again */
	cr_assert_eq(connreg_register(r, "gone", 4, 3), 0);
	cr_assert_eq(connreg_unregister(r, "gone", 4), 0);
	rc = connreg_cas_transport(r, "gone", 4, 3, 4, &cur);
	cr_assert_eq(rc, -ENOENT, "cas of an unregistered id = %d", rc);
	x_expect_absent(r, "gone", 4);

	/* a prefix / extension of a registered id is a different id */
	cr_assert_eq(connreg_register(r, "abc", 3, 1), 0);
	cr_assert_eq(connreg_cas_transport(r, "ab", 2, 1, 2, NULL), -ENOENT);
	cr_assert_eq(connreg_cas_transport(r, "abcd", 4, 1, 2, NULL), -ENOENT);
	x_expect_value(r, "abc", 3, 1);

	connreg_stats_t st = { .size = sizeof(st) };
	cr_assert_eq(connreg_stats(r, &st), 0);
	cr_assert_eq(st.live, 1, "live = %" PRIu64 " after failed cas calls, want 1", st.live);
	connreg_close(r);
}

Test(cas, success_with_current_NULL)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "cas-null", 16, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "c", 1, 10), 0);
	cr_assert_eq(connreg_cas_transport(r, "c", 1, 10, 11, NULL), 0);
	x_expect_value(r, "c", 1, 11);
	connreg_close(r);
}

Test(cas, expected_equal_desired_succeeds_and_keeps_value)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "cas-same", 16, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "c", 1, 10), 0);
	cr_assert_eq(connreg_cas_transport(r, "c", 1, 10, 10, NULL), 0);
	x_expect_value(r, "c", 1, 10);
	connreg_close(r);
}

Test(cas, zero_and_uint64_max_are_ordinary_values)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "cas-ext", 16, 0, 0, 0);
	uint64_t cur = 1;

	cr_assert_eq(connreg_register(r, "z", 1, 0), 0);
	cr_assert_eq(connreg_cas_transport(r, "z", 1, UINT64_MAX, 5, &cur), -EAGAIN);
	cr_assert_eq(cur, 0, "current = %#" PRIx64 ", want 0", cur);
	cr_assert_eq(connreg_cas_transport(r, "z", 1, 0, UINT64_MAX, &cur), 0);
	x_expect_value(r, "z", 1, UINT64_MAX);
	cur = 1;
	cr_assert_eq(connreg_cas_transport(r, "z", 1, 0, 5, &cur), -EAGAIN);
	cr_assert_eq(cur, UINT64_MAX, "current = %#" PRIx64 ", want UINT64_MAX", cur);
	cr_assert_eq(connreg_cas_transport(r, "z", 1, UINT64_MAX, 0, &cur), 0);
	x_expect_value(r, "z", 1, 0);
	connreg_close(r);
}

Test(cas, binary_ids_with_nul_bytes_and_key_max_length)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "cas-bin", 16, 24, 0, 0);
	const uint8_t a[3] = { 0, 0, 0 }, b[2] = { 0, 0 }, c[3] = { 0, 1, 0 };
	uint8_t longid[24];
	memset(longid, 0xee, sizeof longid);

	cr_assert_eq(connreg_register(r, a, 3, 1), 0);
	cr_assert_eq(connreg_register(r, b, 2, 2), 0);
	cr_assert_eq(connreg_register(r, c, 3, 3), 0);
	cr_assert_eq(connreg_register(r, longid, 24, 4), 0);

	cr_assert_eq(connreg_cas_transport(r, a, 3, 1, 10, NULL), 0);
	cr_assert_eq(connreg_cas_transport(r, b, 2, 1, 20, NULL), -EAGAIN);
	cr_assert_eq(connreg_cas_transport(r, longid, 24, 4, 40, NULL), 0);
	x_expect_value(r, a, 3, 10);
	x_expect_value(r, b, 2, 2);
	x_expect_value(r, c, 3, 3);
	x_expect_value(r, longid, 24, 40);
	connreg_close(r);
}

Test(cas, argument_errors)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "cas-args", 16, 8, 0, 0);
	uint8_t id9[9];
	memset(id9, 'x', sizeof id9);
	cr_assert_eq(connreg_register(r, id9, 8, 1), 0);
	uint64_t cur = 42;

	cr_assert_eq(connreg_cas_transport(NULL, "a", 1, 0, 1, &cur), -EINVAL);
	cr_assert_eq(connreg_cas_transport(r, NULL, 1, 0, 1, &cur), -EINVAL);
	cr_assert_eq(connreg_cas_transport(r, "a", 0, 0, 1, &cur), -EINVAL);
	cr_assert_eq(connreg_cas_transport(r, id9, 9, 1, 2, &cur), -ENAMETOOLONG);
	cr_assert_eq(connreg_cas_transport(r, id9, 100000, 1, 2, &cur), -ENAMETOOLONG);
	cr_assert_eq(cur, 42, "*current written on an argument error");
	/* exactly key_max is fine, and nothing above changed it */
	x_expect_value(r, id9, 8, 1);
	cr_assert_eq(connreg_cas_transport(r, id9, 8, 1, 2, &cur), 0);
	x_expect_value(r, id9, 8, 2);
	connreg_close(r);
}

static int cas_echild_child(void *arg)
{
	connreg_t *parent = arg;
	uint64_t cur = 0;
	int rc = connreg_cas_transport(parent, "c", 1, 1, 2, &cur);
	return rc == -ECHILD ? 0 : 1;
}

Test(cas, parent_handle_in_forked_child_returns_ECHILD)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "cas-echild", 16, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "c", 1, 1), 0);
	pid_t pid = t_fork(cas_echild_child, r);
	cr_assert_gt(pid, 0);
	cr_assert_eq(t_wait(pid, 10000), 0, "child's cas on the parent's handle was not -ECHILD");
	x_expect_value(r, "c", 1, 1);
	connreg_close(r);
}

/* ------------------------------------------------------------------ */
/* contention across processes                                         */
/* ------------------------------------------------------------------ */

#define RACE_P 4
#define RACE_R 1500

struct race_shared {
	t_report_t rep;
	atomic_uint ready;
	atomic_int winner[RACE_R];      /* 1 + index of the process that won round k */
	uint64_t wins[RACE_P];
	uint64_t losses[RACE_P];
	uint64_t stalls[RACE_P];
};

struct race_args {
	const char *name;
	struct race_shared *sh;
	int idx;
};

static int race_child(void *p)
{
	struct race_args *a = p;
	struct race_shared *sh = a->sh;
	t_report_t *rep = &sh->rep;
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(rep, rc == 0, return 1, "proc %d open: %d", a->idx, rc);
	T_CHECK(rep, t_barrier(&sh->ready, RACE_P, 10000) == 0, return 1, "barrier");

	uint64_t deadline = t_now_ms() + 40000;
	for (uint64_t k = 0; k < RACE_R; k++) {
		/* wait until round k has started (value >= k) */
		uint64_t v = 0;
		for (unsigned spins = 0;; spins++) {
			rc = connreg_get_transport(r, "round", 5, &v);
			T_CHECK(rep, rc == 0, return 1, "proc %d get: %d", a->idx, rc);
			T_CHECK(rep, v <= RACE_R, return 1, "value %" PRIu64 " beyond %d", v,
				RACE_R);
			if (v >= k)
				break;
			if ((spins & 15) == 15)
				sched_yield();
			T_CHECK(rep, t_now_ms() < deadline, return 1, "proc %d stuck in round %" PRIu64,
				a->idx, k);
		}
		for (;;) {
			uint64_t cur = UINT64_MAX - 1;
			rc = connreg_cas_transport(r, "round", 5, k, k + 1, &cur);
			if (rc == 0) {
				int none = 0;
				bool first = atomic_compare_exchange_strong(&sh->winner[k], &none,
									    a->idx + 1);
				T_CHECK(rep, first, return 1,
					"round %" PRIu64 ": proc %d won, but proc %d had already won",
					k, a->idx, atomic_load(&sh->winner[k]) - 1);
				sh->wins[a->idx]++;
				break;
			}
			T_CHECK(rep, rc == -EAGAIN, return 1, "proc %d cas round %" PRIu64 ": %d (%s)",
				a->idx, k, rc, connreg_strerror(rc));
			if (cur == k) {
				/* documented: stalled reclamation, *current == expected: retry */
				sh->stalls[a->idx]++;
				T_CHECK(rep, t_now_ms() < deadline, return 1, "stalled forever");
				continue;
			}
			/* someone else won: the value moved past k and is not garbage */
			T_CHECK(rep, cur > k && cur <= RACE_R, return 1,
				"proc %d round %" PRIu64 ": -EAGAIN with current %" PRIu64, a->idx, k,
				cur);
			sh->losses[a->idx]++;
			break;
		}
	}
	connreg_close(r);
	return 0;
}

Test(cas, one_winner_per_round_across_processes)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "cas-race", 64, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "round", 5, 0), 0);

	struct race_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	struct race_args args[RACE_P];
	pid_t pids[RACE_P];
	for (int i = 0; i < RACE_P; i++) {
		args[i] = (struct race_args){ name, sh, i };
		pids[i] = t_fork(race_child, &args[i]);
		cr_assert_gt(pids[i], 0);
	}
	for (int i = 0; i < RACE_P; i++)
		X_ASSERT_CHILD_OK(pids[i], 50000, &sh->rep);
	T_ASSERT_REPORT_OK(&sh->rep);

	uint64_t total = 0;
	for (int i = 0; i < RACE_P; i++)
		total += sh->wins[i];
	cr_assert_eq(total, RACE_R, "total wins %" PRIu64 ", want exactly %d (one per round)", total,
		     RACE_R);
	for (int k = 0; k < RACE_R; k++)
		cr_assert_neq(atomic_load(&sh->winner[k]), 0, "round %d had no winner", k);
	uint64_t losses = 0;
	for (int i = 0; i < RACE_P; i++)
		losses += sh->losses[i];
	cr_assert_eq(losses, (uint64_t)RACE_R * (RACE_P - 1),
		     "losses %" PRIu64 ": every process must take part in every round", losses);
	x_expect_value(r, "round", 5, RACE_R);
	X_ASSERT_CHECK_CLEAN(r);
	connreg_close(r);
}

#define CTR_P 4
#define CTR_N 1500

struct ctr_shared {
	t_report_t rep;
	atomic_uint ready;
	uint64_t retries[CTR_P];
};

struct ctr_args {
	const char *name;
	struct ctr_shared *sh;
	int idx;
};

/* Increment "ctr" n times with a get + CAS-retry loop. */
static int ctr_increment(connreg_t *r, t_report_t *rep, int idx, int n, uint64_t *retries)
{
	uint64_t v = 0;
	int rc = connreg_get_transport(r, "ctr", 3, &v);
	T_CHECK(rep, rc == 0, return 1, "worker %d get: %d", idx, rc);
	uint64_t deadline = t_now_ms() + 40000;
	for (int i = 0; i < n; i++) {
		for (;;) {
			uint64_t cur = 0;
			rc = connreg_cas_transport(r, "ctr", 3, v, v + 1, &cur);
			if (rc == 0) {
				v++;
				break;
			}
			T_CHECK(rep, rc == -EAGAIN, return 1, "worker %d cas: %d (%s)", idx, rc,
				connreg_strerror(rc));
			T_CHECK(rep, cur >= v, return 1,
				"worker %d: counter went backwards: current %" PRIu64 " < %" PRIu64, idx,
				cur, v);
			(*retries)++;
			v = cur;
			T_CHECK(rep, t_now_ms() < deadline, return 1, "worker %d stuck", idx);
		}
	}
	return 0;
}

static int ctr_child(void *p)
{
	struct ctr_args *a = p;
	struct ctr_shared *sh = a->sh;
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(&sh->rep, rc == 0, return 1, "open: %d", rc);
	T_CHECK(&sh->rep, t_barrier(&sh->ready, CTR_P, 10000) == 0, return 1, "barrier");
	rc = ctr_increment(r, &sh->rep, a->idx, CTR_N, &sh->retries[a->idx]);
	connreg_close(r);
	return rc;
}

Test(cas, counter_increments_from_processes_lose_no_update)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "cas-ctr", 64, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "ctr", 3, 0), 0);
	/* neighbours that must not be disturbed */
	cr_assert_eq(connreg_register(r, "ctr2", 4, 1000), 0);

	struct ctr_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	struct ctr_args args[CTR_P];
	pid_t pids[CTR_P];
	for (int i = 0; i < CTR_P; i++) {
		args[i] = (struct ctr_args){ name, sh, i };
		pids[i] = t_fork(ctr_child, &args[i]);
		cr_assert_gt(pids[i], 0);
	}
	for (int i = 0; i < CTR_P; i++)
		X_ASSERT_CHILD_OK(pids[i], 50000, &sh->rep);
	T_ASSERT_REPORT_OK(&sh->rep);
	x_expect_value(r, "ctr", 3, (uint64_t)CTR_P * CTR_N);
	x_expect_value(r, "ctr2", 4, 1000);
	X_ASSERT_CHECK_CLEAN(r);
	connreg_close(r);
}

#define CTR_T 4

struct ctr_thread_arg {
	connreg_t *r;
	t_report_t *rep;
	int idx;
	uint64_t retries;
	int rc;
};

static void *ctr_thread(void *p)
{
	struct ctr_thread_arg *a = p;
	a->rc = ctr_increment(a->r, a->rep, a->idx, CTR_N, &a->retries);
	return NULL;
}

Test(cas, counter_increments_from_threads_sharing_one_handle_lose_no_update)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "cas-ctrt", 64, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "ctr", 3, 0), 0);
	t_report_t *rep = t_shared(sizeof *rep);
	cr_assert_not_null(rep);
	pthread_t th[CTR_T];
	struct ctr_thread_arg args[CTR_T];
	for (int i = 0; i < CTR_T; i++) {
		args[i] = (struct ctr_thread_arg){ r, rep, i, 0, 0 };
		cr_assert_eq(pthread_create(&th[i], NULL, ctr_thread, &args[i]), 0);
	}
	for (int i = 0; i < CTR_T; i++)
		pthread_join(th[i], NULL);
	T_ASSERT_REPORT_OK(rep);
	x_expect_value(r, "ctr", 3, (uint64_t)CTR_T * CTR_N);
	X_ASSERT_CHECK_CLEAN(r);
	connreg_close(r);
}

/* cas racing unregister/re-register of the same id never resurrects or corrupts it */
struct unreg_shared {
	t_report_t rep;
	atomic_int stop;
	atomic_uint ready;
};

struct unreg_args {
	const char *name;
	struct unreg_shared *sh;
};

static int unreg_churner(void *p)
{
	struct unreg_args *a = p;
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(&a->sh->rep, rc == 0, return 1, "open: %d", rc);
	T_CHECK(&a->sh->rep, t_barrier(&a->sh->ready, 2, 10000) == 0, return 1, "barrier");
	uint64_t end = t_now_ms() + 20000;
	while (!atomic_load(&a->sh->stop) && t_now_ms() < end) {
		rc = connreg_unregister(r, "flip", 4);
		T_CHECK(&a->sh->rep, rc == 0, return 1, "unregister: %d", rc);
		rc = connreg_register(r, "flip", 4, 0);
		T_CHECK(&a->sh->rep, rc == 0, return 1, "register: %d", rc);
	}
	connreg_close(r);
	return 0;
}

Test(cas, racing_unregister_gives_only_ENOENT_EAGAIN_or_success)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "cas-unreg", 64, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "flip", 4, 0), 0);
	struct unreg_shared *sh = t_shared(sizeof *sh);
	struct unreg_args a = { name, sh };
	pid_t pid = t_fork(unreg_churner, &a);
	cr_assert_gt(pid, 0);
	cr_assert_eq(t_barrier(&sh->ready, 2, 10000), 0);

	unsigned ok = 0, enoent = 0, eagain = 0;
	uint64_t end = t_now_ms() + 600;
	while (t_now_ms() < end) {
		uint64_t cur = 0;
		int rc = connreg_cas_transport(r, "flip", 4, 0, 7, &cur);
		if (rc == 0)
			ok++;
		else if (rc == -ENOENT)
			enoent++;
		else if (rc == -EAGAIN) {
			/* the churner only ever writes 0, we only write 7 */
			cr_assert(cur == 7 || cur == 0, "current %" PRIu64 " was never written", cur);
			eagain++;
		} else
			cr_assert_fail("cas = %d (%s)", rc, connreg_strerror(rc));
	}
	atomic_store(&sh->stop, 1);
	X_ASSERT_CHILD_OK(pid, 30000, &sh->rep);
	T_ASSERT_REPORT_OK(&sh->rep);
	uint64_t v = 99;
	int rc = connreg_get_transport(r, "flip", 4, &v);
	cr_assert_eq(rc, 0, "the churner's last register must stand: %d", rc);
	cr_assert(v == 0 || v == 7, "final value %" PRIu64, v);
	X_ASSERT_CHECK_CLEAN(r);
	cr_log_info("cas vs unregister: ok %u, ENOENT %u, EAGAIN %u", ok, enoent, eagain);
	connreg_close(r);
}
