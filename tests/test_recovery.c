/*
 * test_recovery.c: recovery of a dead writer's work in the two places the
 * close review of issue #9 found it incomplete. Each test fails on the
 * library before the fix:
 * - a writer killed after its publishing CAS and before it woke waiters
 *   left connreg_wait_transport(..., -1) asleep until an unrelated change;
 * - an entry that a dead writer was unlinking (its w_old) while its own
 *   publisher still held it OWNED was never retired: lost, and the live
 *   count drifted.
 */
#include "common.h"

#include <criterion/criterion.h>

#include "fault.h"

struct rv_args {
	const char *name;
	const char *id;
	uint64_t transport;
	long fault;		/* die (or stop) at this fault point; 0: none */
	bool stop;		/* SIGSTOP instead of SIGKILL */
	uint64_t seen;		/* waiter: the transport it has seen */
	_Atomic uint64_t *out;	/* waiter: what it woke with (shared) */
	char op;		/* rv_update: 'u' (or 0) update, 'r' register, 'd' unregister */
};

static int rv_update(void *arg)
{
	struct rv_args *a = arg;
	connreg_t *r;

	if (connreg_open(a->name, &r) != 0)
		return 10;
	if (a->fault) {
		if (a->stop)
			cr_fault_arm_stop(a->fault);
		else
			cr_fault_arm(a->fault);
	}
	size_t n = strlen(a->id);
	int rc = a->op == 'r' ? connreg_register(r, a->id, n, a->transport) :
		 a->op == 'd' ? connreg_unregister(r, a->id, n) :
				connreg_update_transport(r, a->id, n, a->transport);
	cr_fault_arm(0);
	connreg_close(r);
	return rc == 0 ? 0 : 11;
}

static int rv_wait(void *arg)
{
	struct rv_args *a = arg;
	connreg_t *r;
	uint64_t t = 0;

	if (connreg_open(a->name, &r) != 0)
		return 10;
	int rc = connreg_wait_transport(r, a->id, strlen(a->id), a->seen, &t, -1);
	atomic_store(a->out, t);
	connreg_close(r);
	return rc == 0 ? 0 : 11;
}

/* Fault points an update of a live id passes, counted in a child. */
static int rv_count_child(void *arg)
{
	struct rv_args *a = arg;
	connreg_t *r;

	if (connreg_open(a->name, &r) != 0)
		return 255;
	/* Warm up: the thread's first call claims its slot (no fault points counted there). */
	uint64_t v;
	connreg_get_transport(r, a->id, strlen(a->id), &v);
	cr_fault_arm(-1);
	connreg_update_transport(r, a->id, strlen(a->id), a->transport);
	long n = cr_fault_passed();
	cr_fault_arm(0);
	connreg_close(r);
	return (int)(n > 250 ? 250 : n);
}

static long rv_points(const char *name, const char *id)
{
	struct rv_args a = { .name = name, .id = id, .transport = 12345 };
	int st = t_wait(t_fork(rv_count_child, &a), 10000);

	cr_assert(st > 0 && st < 250, "counting fault points: status %d", st);
	return st;
}

static uint64_t rv_get(connreg_t *r, const char *id)
{
	uint64_t v = 0;

	cr_assert_eq(connreg_get_transport(r, id, strlen(id), &v), 0, "lookup of %s", id);
	return v;
}

static void rv_problem(const char *p, void *arg)
{
	(void)arg;
	cr_log_error("check: %s", p);
}

Test(recovery, writer_killed_before_waking_waiters_is_woken_by_its_recoverer)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(64, 0, 8);
	connreg_t *r;

	t_name(name, "rv-wake");
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	cr_assert_eq(connreg_register(r, "conn-1", 6, 100), 0);

	/* The last fault point of an update follows its wake-up; the one before precedes it. */
	long n = rv_points(name, "conn-1");
	cr_assert_eq(rv_get(r, "conn-1"), 12345);
	cr_assert_eq(connreg_update_transport(r, "conn-1", 6, 100), 0);

	_Atomic uint64_t *woke = t_shared(sizeof(*woke));
	cr_assert_not_null(woke);
	atomic_store(woke, 0);
	struct rv_args w = { .name = name, .id = "conn-1", .seen = 100, .out = woke };
	pid_t waiter = t_fork(rv_wait, &w);
	t_sleep_ms(200);	/* let it fall asleep on the bucket */

	struct rv_args u = { .name = name, .id = "conn-1", .transport = 200, .fault = n - 1 };
	cr_assert_eq(t_wait(t_fork(rv_update, &u), 10000), T_WAIT_SIGNALED + SIGKILL,
		     "the writer dies at fault point %ld of %ld", n - 1, n);
	cr_assert_eq(rv_get(r, "conn-1"), 200, "the dead writer's change landed");

	/*
	 * Some process recovers the dead writer's slot in the course of its
	 * work (a daemon's periodic check does exactly this): the waiter,
	 * asleep with no timeout, must then wake with the new transport.
	 */
	cr_assert_eq(connreg_check(r, rv_problem, NULL), 0);
	int st = t_wait(waiter, 3000);
	cr_assert_eq(st, 0, "waiter status %d (%d: still asleep 3 s after recovery)", st,
		     T_WAIT_TIMEOUT);
	cr_assert_eq(atomic_load(woke), 200);
	connreg_close(r);
	connreg_unlink(name);
}

/*
 * A: inserts "conn-1" and stops right after publishing it, its position
 * still OWNED (not yet marked LIVE, its ledger still pending). B: removes
 * it (lock-free) and dies after its tomb, before retiring the position.
 * Recovering B, then A, must neither lose the position nor count the id
 * twice or not at all.
 */
Test(recovery, position_tombed_by_a_dead_writer_while_its_inserter_owns_it_is_not_lost)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(64, 0, 8);
	connreg_t *r;
	connreg_stats_t st = { .size = sizeof(st) };
	uint64_t v;

	t_name(name, "rv-wold");
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	for (int i = 0; i < 10; i++) {
		char id[16];
		snprintf(id, sizeof id, "other-%d", i);
		cr_assert_eq(connreg_register(r, id, strlen(id), (uint64_t)i), 0);
	}

	/* A: stopped at the first fault point after its publishing store. */
	pid_t a = 0;
	long ka;
	for (ka = 1; ka < 200; ka++) {
		struct rv_args ra = { .name = name, .id = "conn-1", .transport = 300, .fault = ka,
				      .stop = true, .op = 'r' };
		a = t_fork(rv_update, &ra);
		int s;
		cr_assert_eq(waitpid(a, &s, WUNTRACED), a);
		if (WIFEXITED(s))
			cr_assert_fail("A's register passed all fault points up to %ld", ka);
		cr_assert(WIFSTOPPED(s), "A stops at fault point %ld", ka);
		if (connreg_get_transport(r, "conn-1", 6, &v) == 0 && v == 300)
			break;	/* published: the first point after it */
		kill(a, SIGKILL);
		kill(a, SIGCONT);
		cr_assert_eq(t_wait(a, 10000), T_WAIT_SIGNALED + SIGKILL);
		connreg_check(r, NULL, NULL);	/* recover A's slot before the next try */
		a = 0;
	}
	cr_assert_neq(a, 0, "A's insert never published");

	/* B: removes A's id and dies right after its tomb, before the retire. */
	long kb;
	for (kb = 1; kb < 100; kb++) {
		struct rv_args ub = { .name = name, .id = "conn-1", .fault = kb, .op = 'd' };
		int ws = t_wait(t_fork(rv_update, &ub), 10000);

		cr_assert(ws == 0 || ws == T_WAIT_SIGNALED + SIGKILL, "B: status %d", ws);
		if (connreg_get_transport(r, "conn-1", 6, &v) == -ENOENT)
			break;
	}
	cr_assert_lt(kb, 100, "B's removal never landed");

	/* B's slot is recovered; then A dies where it stopped, and is recovered too. */
	connreg_check(r, NULL, NULL);
	kill(a, SIGKILL);
	kill(a, SIGCONT);
	cr_assert_eq(t_wait(a, 10000), T_WAIT_SIGNALED + SIGKILL);

	cr_assert_eq(connreg_check(r, rv_problem, NULL), 0, "no position lost, count exact");
	cr_assert_eq(connreg_stats(r, &st), 0);
	cr_assert_eq(st.live, 10, "live count %" PRIu64 ": A's id was inserted and removed", st.live);
	cr_assert_eq(connreg_get_transport(r, "conn-1", 6, &v), -ENOENT);

	/* Capacity is intact: fill to exactly 64 live ids, then -ENOSPC. */
	for (int i = 10; i < 64; i++) {
		char id[16];
		snprintf(id, sizeof id, "fill-%d", i);
		cr_assert_eq(connreg_register(r, id, strlen(id), (uint64_t)i), 0, "fill %d", i);
	}
	cr_assert_eq(connreg_register(r, "one-more", 8, 1), -ENOSPC);
	connreg_close(r);
	connreg_unlink(name);
}
