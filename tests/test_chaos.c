/*
 * test_chaos.c: writers killed at any instruction lose nothing.
 *
 * - random_sigkill: writer processes SIGKILLed at random moments, hundreds
 *   of times, while a reader process checks every value it reads.
 * - fault_sweep: a writer kills itself at fault point k of a fixed script,
 *   for every k, so every window between two shared-memory writes of every
 *   writer step gets a death (src/fault.h).
 * After each: connreg_check finds nothing wrong (it settles dead slots the
 * way any writer would), a fresh process opens the registry, every value
 * decodes for its id, and capacity holds exactly (INV-2, INV-5 after any
 * death).
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <signal.h>

#include "common.h"
#include "fault.h"

#define CH_CAP 48u
#define CH_IDS (3 * CH_CAP)	/* ids writers touch: more than fit, so inserts hit capacity */

static void ch_fini(void)
{
	t_cleanup_names();
}

TestSuite(chaos, .fini = ch_fini, .timeout = 240);

/* Value for id i: the id in the high half, so readers can tell a misrouted value. */
static uint64_t ch_val(uint32_t id, uint32_t seq)
{
	return ((uint64_t)id << 32) | seq;
}

struct ch_shared {
	t_report_t rep;
	atomic_int stop;
	atomic_ullong reads;
	atomic_int started;
};

struct ch_args {
	const char *name;
	struct ch_shared *sh;
	uint64_t seed;
};

/* Random writer: every kind of write, forever, until killed. */
static int ch_writer(void *p)
{
	struct ch_args *a = p;
	connreg_t *r;
	uint8_t id[T_ID_LEN];
	uint64_t s = a->seed, cur;

	if (connreg_open(a->name, &r) != 0)
		return 10;
	atomic_store(&a->sh->started, 1);
	for (uint32_t seq = 1;; seq++) {
		uint32_t i = (uint32_t)(t_rand(&s) % CH_IDS);
		size_t n = t_id(id, 7, i);
		int rc;

		switch (t_rand(&s) % 5) {
		case 0:
		case 1:
			rc = connreg_register(r, id, n, ch_val(i, seq));
			if (rc && rc != -ENOSPC && rc != -EAGAIN)
				return 11;
			break;
		case 2:
			rc = connreg_update_transport(r, id, n, ch_val(i, seq));
			if (rc && rc != -ENOENT && rc != -EAGAIN)
				return 12;
			break;
		case 3:
			if (connreg_unregister(r, id, n) != 0)
				return 13;
			break;
		default:
			rc = connreg_get_transport(r, id, n, &cur);
			if (rc == 0)
				rc = connreg_cas_transport(r, id, n, cur, ch_val(i, seq), NULL);
			if (rc && rc != -ENOENT && rc != -EAGAIN)
				return 14;
			break;
		}
	}
}

/* Reader: every value read must have been written for that id. */
static int ch_reader(void *p)
{
	struct ch_args *a = p;
	connreg_t *r;
	uint8_t id[T_ID_LEN];
	uint64_t s = a->seed, v, reads = 0;

	if (connreg_open(a->name, &r) != 0)
		return 10;
	while (!atomic_load(&a->sh->stop)) {
		uint32_t i = (uint32_t)(t_rand(&s) % CH_IDS);
		int rc = connreg_get_transport(r, id, t_id(id, 7, i), &v);

		if (rc == 0 && (v >> 32) != i) {
			t_report_fail(&a->sh->rep, __LINE__, "id %u read value of id %u", i,
				      (unsigned)(v >> 32));
			return 1;
		}
		if (rc != 0 && rc != -ENOENT) {
			t_report_fail(&a->sh->rep, __LINE__, "get: %d", rc);
			return 1;
		}
		reads++;
	}
	atomic_store(&a->sh->reads, reads);
	connreg_close(r);
	return 0;
}

static void ch_report(const char *problem, void *arg)
{
	(void)arg;
	cr_log_error("check: %s", problem);
}

/* A fresh process attaches and finds the registry sound. */
static int ch_fresh_process_check(void *p)
{
	connreg_t *r;
	int problems;

	if (connreg_open(p, &r) != 0)
		return 10;
	problems = connreg_check(r, NULL, NULL);
	connreg_close(r);
	return problems == 0 ? 0 : 11;
}

/* Sound, exact, and still fully usable: the end state every chaos run must reach. */
static void ch_assert_sound_and_exact(const char *name)
{
	connreg_t *r;
	uint8_t id[T_ID_LEN];
	uint64_t v;

	cr_assert_eq(t_wait(t_fork(ch_fresh_process_check, (void *)name), 20000), 0,
		     "a fresh process could not attach or found the registry unsound");
	cr_assert_eq(connreg_open(name, &r), 0);
	cr_assert_eq(connreg_check(r, ch_report, NULL), 0, "segment unsound after kills");
	for (uint32_t i = 0; i < CH_IDS; i++) {
		int rc = connreg_get_transport(r, id, t_id(id, 7, i), &v);

		cr_assert(rc == 0 || rc == -ENOENT, "get %u: %d", i, rc);
		if (rc == 0)
			cr_assert_eq(v >> 32, i, "id %u holds a value written for id %u", i,
				     (unsigned)(v >> 32));
		cr_assert_eq(connreg_unregister(r, id, t_id(id, 7, i)), 0);
	}
	/* Capacity is exact: CH_CAP new ids fit, one more does not. */
	for (uint32_t i = 0; i < CH_CAP; i++)
		cr_assert_eq(connreg_register(r, id, t_id(id, 8, i), ch_val(i, 1)), 0,
			     "register %u of %u after kills", i, CH_CAP);
	cr_assert_eq(connreg_register(r, id, t_id(id, 8, CH_CAP), 1), -ENOSPC);
	for (uint32_t i = 0; i < CH_CAP; i++) {
		cr_assert_eq(connreg_get_transport(r, id, t_id(id, 8, i), &v), 0);
		cr_assert_eq(v, ch_val(i, 1));
	}
	cr_assert_eq(connreg_check(r, ch_report, NULL), 0);
	connreg_close(r);
}

Test(chaos, random_sigkill_of_writers_loses_nothing)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(CH_CAP, 0, 0);
	connreg_t *r;
	struct ch_shared *sh = t_shared(sizeof(*sh));
	uint64_t s = 0x5eed ^ (uint64_t)getpid();
	unsigned kills = 0;

	t_name(name, "chaos");
	cr_assert_not_null(sh);
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	struct ch_args ra = { name, sh, 99 };
	pid_t reader = t_fork(ch_reader, &ra);
	cr_assert_gt(reader, 0);

	for (unsigned round = 0; round < 300; round++) {
		struct ch_args wa = { name, sh, t_rand(&s) };
		pid_t w;

		atomic_store(&sh->started, 0);
		w = t_fork(ch_writer, &wa);
		cr_assert_gt(w, 0);
		uint64_t t0 = t_now_ms();
		while (!atomic_load(&sh->started) && t_now_ms() - t0 < 5000)
			sched_yield();
		cr_assert(atomic_load(&sh->started), "round %u: writer did not start", round);
		/* Let it run 0..3 ms, then kill it wherever it is. */
		struct timespec nap = { 0, (long)(t_rand(&s) % 3000) * 1000 };
		nanosleep(&nap, NULL);
		kill(w, SIGKILL);
		int st = t_wait(w, 10000);
		cr_assert_eq(st, T_WAIT_SIGNALED + SIGKILL, "round %u: writer exited %d", round, st);
		kills++;
	}
	atomic_store(&sh->stop, 1);
	cr_assert_eq(t_wait(reader, 10000), 0, "reader saw a bad value");
	T_ASSERT_REPORT_OK(&sh->rep);
	cr_assert_gt(atomic_load(&sh->reads), 0u);
	cr_assert_eq(kills, 300u);
	connreg_close(r);
	ch_assert_sound_and_exact(name);
}

/*
 * The script every fault-sweep child runs: each writer path at the
 * capacity boundary. The registry starts full but for a couple of units;
 * the script frees one (a removal), inserts, replaces, updates, swaps,
 * removes again and refills, so inserts go through both admission paths.
 */
static void ch_script(connreg_t *r, uint32_t base)
{
	uint8_t id[T_ID_LEN];
	uint64_t cur;

	for (uint32_t k = 0; k < 3; k++) {
		uint32_t i = base + k, filler = 1000 + (base + k) % (CH_CAP - 2);

		connreg_unregister(r, id, t_id(id, 7, filler));
		connreg_register(r, id, t_id(id, 7, i), ch_val(i, 1));		/* insert */
		connreg_register(r, id, t_id(id, 7, i), ch_val(i, 2));		/* replace */
		connreg_update_transport(r, id, t_id(id, 7, i), ch_val(i, 3));
		if (connreg_get_transport(r, id, t_id(id, 7, i), &cur) == 0)
			connreg_cas_transport(r, id, t_id(id, 7, i), cur, ch_val(i, 4), NULL);
		connreg_unregister(r, id, t_id(id, 7, i));
		connreg_register(r, id, t_id(id, 7, filler), ch_val(filler, 5));
		connreg_register(r, id, t_id(id, 7, i), ch_val(i, 6));		/* may not fit */
	}
}

struct ch_sweep {
	const char *name;
	long k;
	uint32_t base;
	atomic_long passed;
};

static int ch_sweep_child(void *p)
{
	struct ch_sweep *sw = p;
	connreg_t *r;

	if (connreg_open(sw->name, &r) != 0)
		return 10;
	cr_fault_arm(sw->k);
	ch_script(r, sw->base);
	atomic_store(&sw->passed, cr_fault_passed());
	cr_fault_arm(0);
	connreg_close(r);
	return 0;
}

Test(chaos, fault_sweep_kills_a_writer_at_every_step)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(CH_CAP, 0, 0);
	connreg_t *r;
	uint8_t id[T_ID_LEN];
	struct ch_sweep *sw = t_shared(sizeof(*sw));
	long points, deaths = 0;

	t_name(name, "sweep");
	cr_assert_not_null(sw);
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	/* Fill to two short of capacity: the script's inserts take both admission paths. */
	for (uint32_t i = 0; i < CH_CAP - 2; i++)
		cr_assert_eq(connreg_register(r, id, t_id(id, 7, 1000 + i), ch_val(1000 + i, 0)), 0);
	connreg_close(r);

	/* Count the fault points of one clean run (negative arm: count, never die). */
	sw->name = name;
	sw->k = -1;
	sw->base = 0;
	cr_assert_eq(t_wait(t_fork(ch_sweep_child, sw), 20000), 0);
	points = atomic_load(&sw->passed);
	cr_assert_gt(points, 20, "only %ld fault points in the script", points);

	for (long k = 1; k <= points; k++) {
		sw->k = k;
		sw->base = (uint32_t)(8 * (k % 4));	/* vary which ids, so states accumulate */
		int st = t_wait(t_fork(ch_sweep_child, sw), 20000);

		cr_assert(st == T_WAIT_SIGNALED + SIGKILL || st == 0, "k=%ld: child status %d", k, st);
		deaths += st != 0;
		cr_assert_eq(connreg_open(name, &r), 0, "k=%ld: cannot attach", k);
		cr_assert_eq(connreg_check(r, ch_report, NULL), 0, "k=%ld: unsound after death", k);
		connreg_close(r);
	}
	cr_assert_gt(deaths, points / 2, "fault points did not fire (%ld of %ld)", deaths, points);
	/* Clear the prefill so the exactness check starts from the same shape. */
	cr_assert_eq(connreg_open(name, &r), 0);
	for (uint32_t i = 0; i < CH_CAP; i++)
		cr_assert_eq(connreg_unregister(r, id, t_id(id, 7, 1000 + i)), 0);
	connreg_close(r);
	ch_assert_sound_and_exact(name);
}
