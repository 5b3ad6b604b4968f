/*
 * connreg_wait_transport: immediate returns, wake-ups by changes made in
 * other processes, timeouts, and changes that must NOT end the wait (same
 * value, other ids, unregister).
 */
#include "ext_common.h"

TestSuite(wait, .fini = t_cleanup_names, .timeout = 30);

/* A generous bound for "returned promptly" on a loaded 2-core machine. */
#define PROMPT_MS 1500.0

/* ------------------------------------------------------------------ */
/* immediate answers                                                   */
/* ------------------------------------------------------------------ */

Test(wait, returns_at_once_when_current_differs_from_seen)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "wait-now", 16, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "a", 1, 5), 0);

	int timeouts[] = { -1, 0, 10000 };
	for (unsigned i = 0; i < 3; i++) {
		uint64_t v = 0, t0 = t_now_ns();
		int rc = connreg_wait_transport(r, "a", 1, 4, &v, timeouts[i]);
		double ms = x_ms_since(t0);
		cr_assert_eq(rc, 0, "wait(seen 4, timeout %d) = %d (%s)", timeouts[i], rc,
			     connreg_strerror(rc));
		cr_assert_eq(v, 5, "wait returned %" PRIu64 ", want 5", v);
		cr_assert_lt(ms, PROMPT_MS, "wait took %.1f ms although the value already differed",
			     ms);
	}
	/* extreme values are ordinary */
	cr_assert_eq(connreg_register(r, "z", 1, 0), 0);
	uint64_t v = 1;
	cr_assert_eq(connreg_wait_transport(r, "z", 1, UINT64_MAX, &v, -1), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(connreg_register(r, "z", 1, UINT64_MAX), 0);
	cr_assert_eq(connreg_wait_transport(r, "z", 1, 0, &v, -1), 0);
	cr_assert_eq(v, UINT64_MAX);
	connreg_close(r);
}

Test(wait, timeout_zero_just_checks)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "wait-zero", 16, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "a", 1, 5), 0);

	uint64_t v = 1234, t0 = t_now_ns();
	int rc = connreg_wait_transport(r, "a", 1, 5, &v, 0);
	double ms = x_ms_since(t0);
	cr_assert_eq(rc, -ETIMEDOUT, "wait(seen == current, timeout 0) = %d", rc);
	cr_assert_lt(ms, 500.0, "timeout 0 took %.1f ms", ms);

	v = 0;
	cr_assert_eq(connreg_wait_transport(r, "a", 1, 6, &v, 0), 0);
	cr_assert_eq(v, 5);

	t0 = t_now_ns();
	rc = connreg_wait_transport(r, "absent", 6, 0, &v, 0);
	ms = x_ms_since(t0);
	cr_assert_eq(rc, -ETIMEDOUT, "wait(absent id, timeout 0) = %d, want -ETIMEDOUT", rc);
	cr_assert_lt(ms, 500.0, "timeout 0 on an absent id took %.1f ms", ms);
	connreg_close(r);
}

Test(wait, times_out_when_nothing_changes)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "wait-to", 16, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "a", 1, 5), 0);

	uint64_t v = 77, t0 = t_now_ns();
	int rc = connreg_wait_transport(r, "a", 1, 5, &v, 100);
	double ms = x_ms_since(t0);
	cr_assert_eq(rc, -ETIMEDOUT, "wait = %d, want -ETIMEDOUT", rc);
	cr_assert_geq(ms, 99.0, "returned -ETIMEDOUT after only %.2f ms of a 100 ms timeout", ms);
	cr_assert_lt(ms, 100.0 + PROMPT_MS, "100 ms timeout took %.1f ms", ms);

	/* an absent id times out the same way */
	t0 = t_now_ns();
	rc = connreg_wait_transport(r, "b", 1, 5, &v, 100);
	ms = x_ms_since(t0);
	cr_assert_eq(rc, -ETIMEDOUT, "wait on absent id = %d, want -ETIMEDOUT", rc);
	cr_assert_geq(ms, 99.0, "absent id: -ETIMEDOUT after only %.2f ms", ms);
	cr_assert_lt(ms, 100.0 + PROMPT_MS);

	/* a longer timeout with its seconds part */
	t0 = t_now_ns();
	rc = connreg_wait_transport(r, "a", 1, 5, &v, 1050);
	ms = x_ms_since(t0);
	cr_assert_eq(rc, -ETIMEDOUT);
	cr_assert_geq(ms, 1049.0, "1050 ms timeout returned after %.1f ms", ms);
	cr_assert_lt(ms, 1050.0 + PROMPT_MS);
	connreg_close(r);
}

Test(wait, argument_errors)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "wait-args", 16, 8, 0, 0);
	cr_assert_eq(connreg_register(r, "12345678", 8, 5), 0);
	uint64_t v = 0;

	cr_assert_eq(connreg_wait_transport(NULL, "a", 1, 0, &v, 0), -EINVAL);
	cr_assert_eq(connreg_wait_transport(r, NULL, 1, 0, &v, 0), -EINVAL);
	cr_assert_eq(connreg_wait_transport(r, "a", 0, 0, &v, 0), -EINVAL);
	cr_assert_eq(connreg_wait_transport(r, "a", 1, 0, NULL, 0), -EINVAL);
	cr_assert_eq(connreg_wait_transport(r, "123456789", 9, 0, &v, 0), -ENAMETOOLONG);
	/* argument errors come back at once even with an infinite timeout */
	cr_assert_eq(connreg_wait_transport(r, "a", 0, 0, &v, -1), -EINVAL);
	cr_assert_eq(connreg_wait_transport(r, "123456789", 9, 0, &v, -1), -ENAMETOOLONG);
	/* key_max exactly is fine */
	cr_assert_eq(connreg_wait_transport(r, "12345678", 8, 0, &v, -1), 0);
	cr_assert_eq(v, 5);
	connreg_close(r);
}

static int wait_echild_child(void *arg)
{
	uint64_t v;
	return connreg_wait_transport(arg, "a", 1, 0, &v, 100) == -ECHILD ? 0 : 1;
}

Test(wait, parent_handle_in_forked_child_returns_ECHILD)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "wait-echild", 16, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "a", 1, 5), 0);
	pid_t pid = t_fork(wait_echild_child, r);
	cr_assert_eq(t_wait(pid, 10000), 0, "wait on the parent's handle in a child was not -ECHILD");
	connreg_close(r);
}

/* ------------------------------------------------------------------ */
/* changes made by another process                                     */
/* ------------------------------------------------------------------ */

enum chg_op { CHG_UPDATE, CHG_REGISTER, CHG_CAS };

struct chg_args {
	const char *name;
	const char *id;
	enum chg_op op;
	uint64_t from, to;
	unsigned delay_ms;
	_Atomic uint64_t *change_ns; /* shared: t_now_ns() just before the change */
};

/* Child: open by name, sleep, change the id once. Exit 0 on success. */
static int chg_child(void *p)
{
	struct chg_args *a = p;
	connreg_t *r = NULL;
	if (connreg_open(a->name, &r) != 0)
		return 10;
	t_sleep_ms(a->delay_ms);
	size_t len = strlen(a->id);
	int rc;
	atomic_store(a->change_ns, t_now_ns());
	switch (a->op) {
	case CHG_UPDATE:
		rc = connreg_update_transport(r, a->id, len, a->to);
		break;
	case CHG_REGISTER:
		rc = connreg_register(r, a->id, len, a->to);
		break;
	default:
		rc = connreg_cas_transport(r, a->id, len, a->from, a->to, NULL);
		break;
	}
	connreg_close(r);
	return rc == 0 ? 0 : 11;
}

/*
 * The waiter must return soon after the change (CLOCK_MONOTONIC is the same
 * in every process). A change that comes more than a second into the wait
 * also catches a wake-up that does not cross processes: ck_ec's backoff
 * re-checks on its own only during the first second.
 */
#define WAKE_LATENCY_MS 700.0

static void wait_for_change_by_child(const char *tag, enum chg_op op, bool preregister,
				     int timeout_ms, unsigned delay_ms)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, tag, 64, 0, 0, 0);
	if (preregister)
		cr_assert_eq(connreg_register(r, "conn-1", 6, 1), 0);
	/* neighbours, so the id does not sit alone */
	for (int i = 0; i < 20; i++) {
		char id[32];
		cr_assert_eq(connreg_register(r, id, t_sid(id, sizeof id, "nb-", (uint64_t)i),
					      (uint64_t)i), 0);
	}

	_Atomic uint64_t *change_ns = t_shared(sizeof *change_ns);
	cr_assert_not_null(change_ns);
	struct chg_args a = { name, "conn-1", op, 1, 0xabcdef0123ull, delay_ms, change_ns };
	uint64_t t0 = t_now_ns();
	pid_t pid = t_fork(chg_child, &a);
	cr_assert_gt(pid, 0);
	uint64_t v = 0;
	int rc = connreg_wait_transport(r, "conn-1", 6, 1, &v, timeout_ms);
	uint64_t t1 = t_now_ns();
	double ms = (double)(t1 - t0) / 1e6;
	int st = t_wait(pid, 10000);
	cr_assert_eq(st, 0, "changer child failed: %d", st);
	cr_assert_eq(rc, 0, "wait = %d (%s), want 0 (changed by another process)", rc,
		     connreg_strerror(rc));
	cr_assert_eq(v, 0xabcdef0123ull, "wait returned %#" PRIx64, v);
	uint64_t ch = atomic_load(change_ns);
	cr_assert_neq(ch, 0);
	cr_assert_geq(t1, ch, "wait returned %.1f ms before the child's change", (double)(ch - t1) / 1e6);
	cr_assert_geq(ms, (double)delay_ms, "wait returned after %.1f ms, before the child's change", ms);
	double lat = (double)(t1 - ch) / 1e6;
	cr_assert_lt(lat, WAKE_LATENCY_MS,
		     "the waiter returned %.1f ms after the change (waited %.1f ms): the change did "
		     "not wake it", lat, ms);
	x_expect_value(r, "conn-1", 6, 0xabcdef0123ull);
	connreg_close(r);
}

Test(wait, wakes_for_update_made_by_another_process)
{
	wait_for_change_by_child("wait-upd", CHG_UPDATE, true, 10000, 50);
}

Test(wait, wakes_for_late_update_by_another_process_with_infinite_timeout)
{
	wait_for_change_by_child("wait-inf", CHG_UPDATE, true, -1, 1200);
}

Test(wait, wakes_for_late_update_by_another_process_with_long_timeout)
{
	wait_for_change_by_child("wait-late", CHG_UPDATE, true, 20000, 1200);
}

Test(wait, wakes_for_cas_made_by_another_process)
{
	wait_for_change_by_child("wait-cas", CHG_CAS, true, 10000, 50);
}

Test(wait, absent_id_registered_later_by_another_process)
{
	wait_for_change_by_child("wait-reg", CHG_REGISTER, false, 10000, 50);
}

Test(wait, absent_id_registered_late_with_infinite_timeout)
{
	wait_for_change_by_child("wait-reginf", CHG_REGISTER, false, -1, 1200);
}

/* ------------------------------------------------------------------ */
/* changes that must not end the wait                                  */
/* ------------------------------------------------------------------ */

enum noise_kind { NOISE_SAME_VALUE, NOISE_OTHER_IDS, NOISE_UNREG_REREG_SAME };

struct noise_args {
	const char *name;
	enum noise_kind kind;
	unsigned start_ms, noise_ms;
	/* after the noise: 1 = update "target" to final_value */
	int final_change;
	uint64_t final_value;
	atomic_uint *ops; /* shared counter of noise writes done */
};

static int noise_child(void *p)
{
	struct noise_args *a = p;
	connreg_t *r = NULL;
	if (connreg_open(a->name, &r) != 0)
		return 10;
	t_sleep_ms(a->start_ms);
	uint64_t end = t_now_ms() + a->noise_ms;
	unsigned n = 0;
	while (t_now_ms() < end) {
		int rc = 0;
		switch (a->kind) {
		case NOISE_SAME_VALUE:
			/* writes that leave "target" at the value the waiter saw (5) */
			rc = (n & 1) ? connreg_update_transport(r, "target", 6, 5)
				     : connreg_register(r, "target", 6, 5);
			if (rc == 0 && (n % 3) == 0)
				rc = connreg_cas_transport(r, "target", 6, 5, 5, NULL);
			break;
		case NOISE_OTHER_IDS: {
			/* 256 other ids: many share the target's home bucket */
			char id[32];
			size_t len = t_sid(id, sizeof id, "other-", n % 256);
			rc = connreg_register(r, id, len, 1000 + n);
			if (rc == 0 && (n % 7) == 0)
				rc = connreg_unregister(r, id, len);
			break;
		}
		case NOISE_UNREG_REREG_SAME:
			rc = connreg_unregister(r, "target", 6);
			if (rc == 0) {
				t_sleep_ms(1);
				rc = connreg_register(r, "target", 6, 5);
			}
			break;
		}
		if (rc != 0)
			return 11;
		n++;
		atomic_fetch_add(a->ops, 1);
		if ((n & 15) == 0)
			t_sleep_ms(1);
	}
	int rc = 0;
	if (a->final_change)
		rc = connreg_update_transport(r, "target", 6, a->final_value);
	connreg_close(r);
	return rc == 0 ? 0 : 12;
}

static void wait_through_noise(const char *tag, enum noise_kind kind, int final_change)
{
	char name[T_NAME_BUF];
	/* small: few buckets, so unrelated ids share the target's home bucket */
	connreg_t *r = x_make(name, tag, 300, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "target", 6, 5), 0);
	atomic_uint *ops = t_shared(sizeof *ops);
	cr_assert_not_null(ops);

	struct noise_args a = { name, kind, 20, 250, final_change, 0x5151, ops };
	int timeout = final_change ? 10000 : 400;
	uint64_t t0 = t_now_ns();
	pid_t pid = t_fork(noise_child, &a);
	cr_assert_gt(pid, 0);
	uint64_t v = 0;
	int rc = connreg_wait_transport(r, "target", 6, 5, &v, timeout);
	double ms = x_ms_since(t0);
	int st = t_wait(pid, 20000);
	cr_assert_eq(st, 0, "noise child failed: %d", st);
	cr_assert_gt(atomic_load(ops), 10u, "noise child made only %u writes", atomic_load(ops));
	if (final_change) {
		cr_assert_eq(rc, 0, "wait = %d (%s)", rc, connreg_strerror(rc));
		cr_assert_eq(v, 0x5151, "wait returned %#" PRIx64 " (not the target's new value)", v);
		cr_assert_geq(ms, 265.0, "wait returned after %.1f ms, during the noise (before the "
					 "target changed)", ms);
	} else {
		cr_assert_eq(rc, -ETIMEDOUT,
			     "wait = %d (value %#" PRIx64 ") after %.1f ms; want -ETIMEDOUT: no write "
			     "gave the target a value other than seen",
			     rc, v, ms);
		cr_assert_geq(ms, 399.0, "timed out after only %.1f ms", ms);
		cr_assert_lt(ms, 400.0 + PROMPT_MS);
	}
	connreg_close(r);
}

Test(wait, update_to_the_same_value_does_not_end_the_wait)
{
	wait_through_noise("wait-same", NOISE_SAME_VALUE, 0);
}

Test(wait, changes_to_other_ids_do_not_end_the_wait)
{
	wait_through_noise("wait-oth", NOISE_OTHER_IDS, 0);
}

Test(wait, unregister_and_reregister_with_same_value_do_not_end_the_wait)
{
	wait_through_noise("wait-unreg", NOISE_UNREG_REREG_SAME, 0);
}

Test(wait, other_id_noise_then_real_change_returns_the_new_value)
{
	wait_through_noise("wait-othchg", NOISE_OTHER_IDS, 1);
}

Test(wait, same_value_noise_then_real_change_returns_the_new_value)
{
	wait_through_noise("wait-samechg", NOISE_SAME_VALUE, 1);
}

/* ------------------------------------------------------------------ */
/* several waiting processes                                           */
/* ------------------------------------------------------------------ */

#define NWAITERS 3

struct waiters_shared {
	atomic_uint ready;
	uint64_t got[NWAITERS];
	int rc[NWAITERS];
};

struct waiter_args {
	const char *name;
	struct waiters_shared *sh;
	int idx;
};

static int waiter_child(void *p)
{
	struct waiter_args *a = p;
	connreg_t *r = NULL;
	if (connreg_open(a->name, &r) != 0)
		return 10;
	atomic_fetch_add(&a->sh->ready, 1);
	a->sh->rc[a->idx] = connreg_wait_transport(r, "shared", 6, 1, &a->sh->got[a->idx], 15000);
	connreg_close(r);
	return 0;
}

Test(wait, one_change_wakes_every_waiting_process)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "wait-many", 64, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "shared", 6, 1), 0);
	struct waiters_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	struct waiter_args args[NWAITERS];
	pid_t pids[NWAITERS];
	for (int i = 0; i < NWAITERS; i++) {
		args[i] = (struct waiter_args){ name, sh, i };
		sh->rc[i] = 12345;
		pids[i] = t_fork(waiter_child, &args[i]);
		cr_assert_gt(pids[i], 0);
	}
	uint64_t deadline = t_now_ms() + 10000;
	while (atomic_load(&sh->ready) < NWAITERS && t_now_ms() < deadline)
		t_sleep_ms(1);
	t_sleep_ms(100); /* let them go to sleep */
	uint64_t t0 = t_now_ns();
	cr_assert_eq(connreg_update_transport(r, "shared", 6, 2), 0);
	for (int i = 0; i < NWAITERS; i++)
		cr_assert_eq(t_wait(pids[i], 20000), 0, "waiter %d", i);
	double ms = x_ms_since(t0);
	for (int i = 0; i < NWAITERS; i++) {
		cr_assert_eq(sh->rc[i], 0, "waiter %d: wait = %d", i, sh->rc[i]);
		cr_assert_eq(sh->got[i], 2, "waiter %d got %" PRIu64, i, sh->got[i]);
	}
	cr_assert_lt(ms, PROMPT_MS, "waiters took %.1f ms to return after the change", ms);
	connreg_close(r);
}
