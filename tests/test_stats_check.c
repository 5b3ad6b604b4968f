/*
 * connreg_stats, connreg_check and connreg_readers: counters after known
 * operations, a sound registry checks clean (fresh, full, churned, after
 * churn from several processes), a corrupted one does not (connreg_check
 * reports breaches of INV-1, INV-4 and INV-5), and reader slots of live and
 * dead processes are shown as such.
 */
#include "ext_common.h"

#include <sys/syscall.h>

TestSuite(stats, .fini = t_cleanup_names, .timeout = 60);
TestSuite(check, .fini = t_cleanup_names, .timeout = 60);
TestSuite(readers, .fini = t_cleanup_names, .timeout = 60);

static connreg_stats_t get_stats(connreg_t *r)
{
	connreg_stats_t st = { .size = sizeof(st) };
	memset(&st, 0xa5, sizeof st);
	int rc = connreg_stats(r, &st);
	cr_assert_eq(rc, 0, "connreg_stats = %d", rc);
	return st;
}

static off_t shm_size(const char *name)
{
	char path[T_NAME_BUF + 16];
	snprintf(path, sizeof path, "/dev/shm%s", name);
	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0, "stat(%s): %s", path, strerror(errno));
	return sb.st_size;
}

/* With no write in flight every entry is live, free or retired. */
static void assert_entry_accounting(const connreg_stats_t *st, const char *when)
{
	cr_assert_eq(st->free + st->retired + st->live, st->entries,
		     "%s: free %" PRIu64 " + retired %" PRIu64 " + live %" PRIu64
		     " != entries %" PRIu64,
		     when, st->free, st->retired, st->live, st->entries);
}

/* ------------------------------------------------------------------ */
/* stats                                                               */
/* ------------------------------------------------------------------ */

Test(stats, fresh_registry_reports_its_configuration)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "st-fresh", 1000, 32, 16, 0);
	uint64_t v;
	cr_assert_eq(connreg_get_transport(r, "x", 1, &v), -ENOENT); /* attach this thread */
	connreg_stats_t st = get_stats(r);

	cr_assert_eq(st.capacity, 1000);
	cr_assert_eq(st.live, 0);
	cr_assert_geq(st.readers, 1, "readers %u: this thread has made a call", st.readers);
	cr_assert_leq(st.readers, 16);
	cr_assert_geq(st.epoch, 1, "epoch %" PRIu64, st.epoch);
	cr_assert_geq(st.safe_epoch, 1);
	cr_assert_leq(st.safe_epoch, st.epoch);
	cr_assert_geq(st.max_probe, 1, "max_probe %u", st.max_probe);
	cr_assert_leq((uint64_t)st.max_probe, st.buckets);
	cr_assert_geq(st.entries, st.capacity, "entries %" PRIu64 " < capacity", st.entries);
	cr_assert_geq(st.buckets * 7, st.capacity, "%" PRIu64 " buckets of 7 slots cannot hold "
						   "the capacity", st.buckets);
	cr_assert_eq(st.key_max, 32);
	cr_assert_geq(st.layout_version, 1);
	cr_assert_eq(st.max_threads, 16);
	cr_assert_eq(st.flags, 0);
	cr_assert_eq(st.tombstones, 0);
	cr_assert_eq(st.retired, 0);
	cr_assert_eq(st.free, st.entries, "fresh: free %" PRIu64 " of %" PRIu64 " entries", st.free,
		     st.entries);
	cr_assert_eq(st.segment_size, (uint64_t)shm_size(name), "segment_size %" PRIu64
		     " != size of the shm object", st.segment_size);

	/* another handle sees the same counters */
	connreg_t *r2 = NULL;
	cr_assert_eq(connreg_open(name, &r2), 0);
	connreg_stats_t st2 = get_stats(r2);
	cr_assert_eq(st2.capacity, st.capacity);
	cr_assert_eq(st2.entries, st.entries);
	cr_assert_eq(st2.buckets, st.buckets);
	cr_assert_eq(st2.segment_size, st.segment_size);
	cr_assert_eq(st2.key_max, 32);
	cr_assert_eq(st2.max_threads, 16);
	connreg_close(r2);
	connreg_close(r);
}

Test(stats, defaults_and_pid_flag_are_reported)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "st-def", 10, 0, 0, CONNREG_TRANSPORT_IS_PID);
	connreg_stats_t st = get_stats(r);
	cr_assert_eq(st.key_max, 64, "default key_max %u", st.key_max);
	cr_assert_eq(st.max_threads, 512, "default max_threads %u", st.max_threads);
	cr_assert_eq(st.flags, CONNREG_TRANSPORT_IS_PID, "flags %#x", st.flags);
	cr_assert_eq(st.capacity, 10);
	connreg_close(r);
}

Test(stats, counters_follow_registers_updates_and_unregisters)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "st-ops", 500, 0, 0, 0);
	uint8_t id[T_ID_LEN];
	for (uint64_t k = 0; k < 100; k++)
		cr_assert_eq(connreg_register(r, id, t_id(id, 0, k), k), 0);
	connreg_stats_t st = get_stats(r);
	cr_assert_eq(st.live, 100, "live %" PRIu64 " after 100 registers", st.live);
	cr_assert_geq(st.readers, 1);
	cr_assert_eq(st.tombstones, 0);
	assert_entry_accounting(&st, "after 100 registers");

	for (uint64_t k = 0; k < 10; k++)
		cr_assert_eq(connreg_update_transport(r, id, t_id(id, 0, k), k + 1000), 0);
	for (uint64_t k = 10; k < 20; k++)
		cr_assert_eq(connreg_register(r, id, t_id(id, 0, k), k + 1000), 0);
	for (uint64_t k = 20; k < 25; k++)
		cr_assert_eq(connreg_cas_transport(r, id, t_id(id, 0, k), k, k + 1000, NULL), 0);
	st = get_stats(r);
	cr_assert_eq(st.live, 100, "live %" PRIu64 " after updates of live ids", st.live);
	cr_assert_eq(st.tombstones, 0, "updates made %" PRIu64 " tombstones", st.tombstones);
	assert_entry_accounting(&st, "after updates");
	cr_assert_geq(st.epoch, 1);

	uint64_t tomb0 = st.tombstones;
	for (uint64_t k = 0; k < 30; k++)
		cr_assert_eq(connreg_unregister(r, id, t_id(id, 0, k)), 0);
	/* unregistering absent ids changes nothing */
	for (uint64_t k = 1000; k < 1010; k++)
		cr_assert_eq(connreg_unregister(r, id, t_id(id, 0, k)), 0);
	st = get_stats(r);
	cr_assert_eq(st.live, 70, "live %" PRIu64 " after 30 unregisters", st.live);
	cr_assert_eq(st.tombstones, tomb0 + 30, "tombstones %" PRIu64 " after 30 unregisters "
		     "(was %" PRIu64 ")", st.tombstones, tomb0);
	assert_entry_accounting(&st, "after unregisters");

	/* failed operations change nothing */
	cr_assert_eq(connreg_update_transport(r, id, t_id(id, 0, 5), 1), -ENOENT);
	cr_assert_eq(connreg_cas_transport(r, id, t_id(id, 0, 50), 1, 2, NULL), -EAGAIN);
	connreg_stats_t st2 = get_stats(r);
	cr_assert_eq(st2.live, 70);
	cr_assert_eq(st2.tombstones, st.tombstones);
	assert_entry_accounting(&st2, "after failed writes");
	X_ASSERT_CHECK_CLEAN(r);
	connreg_close(r);
}

Test(stats, live_reaches_capacity_and_max_probe_stays_in_range)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "st-full", 700, 0, 0, 0);
	uint8_t id[T_ID_LEN];
	for (uint64_t k = 0; k < 700; k++)
		cr_assert_eq(connreg_register(r, id, t_id(id, 0, k), k), 0);
	cr_assert_eq(connreg_register(r, id, t_id(id, 0, 700), 1), -ENOSPC);
	connreg_stats_t st = get_stats(r);
	cr_assert_eq(st.live, 700);
	cr_assert_geq(st.max_probe, 1);
	cr_assert_leq((uint64_t)st.max_probe, st.buckets);
	assert_entry_accounting(&st, "full");
	/* every id is still found: max_probe covers them */
	for (uint64_t k = 0; k < 700; k++)
		x_expect_value(r, id, t_id(id, 0, k), k);
	connreg_close(r);
}

static void *st_thread(void *arg)
{
	connreg_t *r = arg;
	uint64_t v;
	connreg_get_transport(r, "x", 1, &v); /* claims a reader slot */
	return NULL;
}

struct hold_arg {
	connreg_t *r;
	pthread_barrier_t *b;
};

static void *st_hold_thread(void *arg)
{
	struct hold_arg *h = arg;
	uint64_t v;
	connreg_get_transport(h->r, "x", 1, &v);
	pthread_barrier_wait(h->b); /* attached */
	pthread_barrier_wait(h->b); /* main has counted */
	return NULL;
}

Test(stats, readers_counts_attached_threads_and_drops_exited_ones)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "st-rd", 16, 0, 8, 0);
	st_thread(r);
	connreg_stats_t st = get_stats(r);
	uint32_t base = st.readers;
	cr_assert_eq(base, 1, "one attached thread, readers %u", base);

	pthread_barrier_t b;
	pthread_barrier_init(&b, NULL, 4);
	pthread_t th[3];
	struct hold_arg h = { r, &b };
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, st_hold_thread, &h), 0);
	pthread_barrier_wait(&b);
	st = get_stats(r);
	cr_assert_eq(st.readers, base + 3, "3 more attached threads: readers %u, was %u", st.readers,
		     base);
	pthread_barrier_wait(&b);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	st = get_stats(r);
	cr_assert_eq(st.readers, base, "after the threads exited readers %u, want %u", st.readers,
		     base);
	pthread_barrier_destroy(&b);
	connreg_close(r);
}

Test(stats, null_arguments_return_EINVAL)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "st-null", 16, 0, 0, 0);
	connreg_stats_t st = { .size = sizeof(st) };
	cr_assert_eq(connreg_stats(NULL, &st), -EINVAL);
	cr_assert_eq(connreg_stats(r, NULL), -EINVAL);
	connreg_close(r);
}

static int st_echild_child(void *arg)
{
	connreg_stats_t st = { .size = sizeof(st) };
	int a = connreg_stats(arg, &st);
	int b = connreg_check(arg, NULL, NULL);
	return (a == -ECHILD ? 0 : 1) | (b == -ECHILD ? 0 : 2);
}

Test(stats, stats_and_check_on_parent_handle_in_forked_child_return_ECHILD)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "st-echild", 16, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "a", 1, 1), 0);
	pid_t pid = t_fork(st_echild_child, r);
	int st = t_wait(pid, 10000);
	cr_assert_eq(st, 0, "child: %s%s", st & 1 ? "stats not -ECHILD " : "",
		     st & 2 ? "check not -ECHILD" : "");
	connreg_close(r);
}

static void assert_never_alive_pid(connreg_t *r, pid_t dead);

/* ------------------------------------------------------------------ */
/* check: sound registries                                             */
/* ------------------------------------------------------------------ */

Test(check, fresh_registry_is_sound)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "ck-fresh", 100, 0, 0, 0);
	X_ASSERT_CHECK_CLEAN(r);
	cr_assert_eq(connreg_check(r, NULL, NULL), 0, "check without report");
	/* and from a second handle */
	connreg_t *r2 = NULL;
	cr_assert_eq(connreg_open(name, &r2), 0);
	X_ASSERT_CHECK_CLEAN(r2);
	connreg_close(r2);
	connreg_close(r);
}

Test(check, null_handle_returns_EINVAL)
{
	cr_assert_eq(connreg_check(NULL, NULL, NULL), -EINVAL);
	struct x_reports xr = { 0, "" };
	cr_assert_eq(connreg_check(NULL, x_report_cb, &xr), -EINVAL);
	cr_assert_eq(xr.n, 0);
}

Test(check, registry_filled_to_capacity_is_sound)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "ck-full", 2000, 0, 0, 0);
	uint8_t id[T_ID_LEN];
	for (uint64_t k = 0; k < 2000; k++)
		cr_assert_eq(connreg_register(r, id, t_id(id, 0, k), k), 0);
	X_ASSERT_CHECK_CLEAN(r);
	connreg_close(r);
}

Test(check, heavily_churned_registry_is_sound_and_counts_agree)
{
	char name[T_NAME_BUF];
	enum { CAP = 1000, KEYS = 3000, OPS = 60000 };
	connreg_t *r = x_make(name, "ck-churn", CAP, 0, 0, 0);
	static bool live[KEYS];
	static uint64_t val[KEYS];
	size_t nlive = 0;
	uint64_t seed = 2024;
	uint8_t id[T_ID_LEN];
	for (int op = 0; op < OPS; op++) {
		uint64_t x = t_rand(&seed);
		size_t k = (size_t)(x % KEYS);
		size_t len = t_id(id, 0, k);
		unsigned what = (unsigned)((x >> 32) % 4);
		if (live[k] && what == 0) {
			cr_assert_eq(connreg_unregister(r, id, len), 0);
			live[k] = false;
			nlive--;
		} else if (live[k] && what == 1) {
			cr_assert_eq(connreg_cas_transport(r, id, len, val[k], x, NULL), 0);
			val[k] = x;
		} else if (live[k]) {
			cr_assert_eq(connreg_update_transport(r, id, len, x), 0);
			val[k] = x;
		} else {
			int rc = connreg_register(r, id, len, x);
			if (nlive == CAP) {
				cr_assert_eq(rc, -ENOSPC, "register beyond capacity: %d", rc);
				continue;
			}
			cr_assert_eq(rc, 0, "register (%zu live): %d (%s)", nlive, rc, connreg_strerror(rc));
			live[k] = true;
			val[k] = x;
			nlive++;
		}
	}
	X_ASSERT_CHECK_CLEAN(r);
	connreg_stats_t st = get_stats(r);
	cr_assert_eq(st.live, nlive, "stats live %" PRIu64 ", model %zu", st.live, nlive);
	assert_entry_accounting(&st, "after churn");
	for (size_t k = 0; k < KEYS; k++) {
		size_t len = t_id(id, 0, k);
		if (live[k])
			x_expect_value(r, id, len, val[k]);
		else
			x_expect_absent(r, id, len);
	}
	connreg_close(r);
}

#define MC_P 3
#define MC_KEYS 400
#define MC_MS 700

struct mc_shared {
	t_report_t rep;
	atomic_uint ready;
	uint64_t nlive[MC_P];
	uint64_t ops[MC_P];
};

struct mc_args {
	const char *name;
	struct mc_shared *sh;
	int idx;
};

static int mc_child(void *p)
{
	struct mc_args *a = p;
	struct mc_shared *sh = a->sh;
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(&sh->rep, rc == 0, return 1, "open: %d", rc);
	T_CHECK(&sh->rep, t_barrier(&sh->ready, MC_P + 1, 10000) == 0, return 1, "barrier");
	static bool live[MC_KEYS];
	uint64_t seed = 77 + (uint64_t)a->idx, end = t_now_ms() + MC_MS, n = 0, nlive = 0;
	uint8_t id[T_ID_LEN];
	while ((n & 31) || t_now_ms() < end) {
		uint64_t x = t_rand(&seed);
		uint32_t k = (uint32_t)(x % MC_KEYS);
		size_t len = t_id(id, 100 + (uint32_t)a->idx, k);
		if (live[k] && (x >> 40) % 3 == 0) {
			rc = connreg_unregister(r, id, len);
			live[k] = false;
			nlive--;
		} else if (live[k]) {
			rc = connreg_update_transport(r, id, len, x);
		} else {
			rc = connreg_register(r, id, len, x);
			live[k] = true;
			nlive++;
		}
		T_CHECK(&sh->rep, rc == 0, return 1, "proc %d op: %d (%s)", a->idx, rc,
			connreg_strerror(rc));
		n++;
	}
	sh->nlive[a->idx] = nlive;
	sh->ops[a->idx] = n;
	connreg_close(r);
	return 0;
}

Test(check, sound_after_churn_from_several_processes)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "ck-mproc", MC_P * MC_KEYS, 0, 0, 0);
	struct mc_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	struct mc_args args[MC_P];
	pid_t pids[MC_P];
	for (int i = 0; i < MC_P; i++) {
		args[i] = (struct mc_args){ name, sh, i };
		pids[i] = t_fork(mc_child, &args[i]);
		cr_assert_gt(pids[i], 0);
	}
	cr_assert_eq(t_barrier(&sh->ready, MC_P + 1, 10000), 0);
	/* checks while writers run: never an error code, never a crash */
	unsigned checks = 0;
	uint64_t end = t_now_ms() + MC_MS / 2;
	while (t_now_ms() < end) {
		int rc = connreg_check(r, NULL, NULL);
		cr_assert_geq(rc, 0, "check during churn = %d", rc);
		checks++;
	}
	for (int i = 0; i < MC_P; i++)
		X_ASSERT_CHILD_OK(pids[i], 30000, &sh->rep);
	T_ASSERT_REPORT_OK(&sh->rep);
	X_ASSERT_CHECK_CLEAN(r);
	uint64_t want = 0;
	for (int i = 0; i < MC_P; i++)
		want += sh->nlive[i];
	connreg_stats_t st = get_stats(r);
	cr_assert_eq(st.live, want, "stats live %" PRIu64 ", children left %" PRIu64, st.live, want);
	assert_entry_accounting(&st, "after multi-process churn");
	cr_log_info("checks during churn %u; ops %" PRIu64 " %" PRIu64 " %" PRIu64, checks,
		    sh->ops[0], sh->ops[1], sh->ops[2]);
	connreg_close(r);
}

/* Children that churn until killed (or exit without closing their handle). */
struct kc_args {
	const char *name;
	struct mc_shared *sh;
	int idx;
	int exit_unclosed_after_ms; /* 0: churn until killed */
};

static int kc_child(void *p)
{
	struct kc_args *a = p;
	struct mc_shared *sh = a->sh;
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(&sh->rep, rc == 0, return 1, "open: %d", rc);
	atomic_fetch_add(&sh->ready, 1);
	uint64_t seed = 991 + (uint64_t)a->idx, n = 0;
	uint64_t end = t_now_ms() + (a->exit_unclosed_after_ms ? (uint64_t)a->exit_unclosed_after_ms
							       : 30000);
	uint8_t id[T_ID_LEN];
	while (t_now_ms() < end) {
		uint64_t x = t_rand(&seed);
		size_t len = t_id(id, 200 + (uint32_t)a->idx, x % MC_KEYS);
		switch ((x >> 40) % 4) {
		case 0:
			rc = connreg_unregister(r, id, len);
			break;
		case 1:
			rc = connreg_cas_transport(r, id, len, x, x + 1, NULL);
			rc = rc == -EAGAIN || rc == -ENOENT ? 0 : rc;
			break;
		default:
			rc = connreg_register(r, id, len, x);
			rc = rc == -ENOSPC ? 0 : rc;
			break;
		}
		T_CHECK(&sh->rep, rc == 0, return 1, "proc %d op: %d (%s)", a->idx, rc,
			connreg_strerror(rc));
		n++;
	}
	sh->ops[a->idx] = n;
	return 0; /* no connreg_close: the process just ends */
}

static int count_ids_cb(const void *id, size_t len, uint64_t transport, void *arg)
{
	(void)id, (void)len, (void)transport;
	(*(uint64_t *)arg)++;
	return 0;
}

static void check_after_dead_writers(const char *tag, int exit_unclosed_after_ms)
{
	char name[T_NAME_BUF];
	/* capacity below what the children try to insert: -ENOSPC paths too */
	const uint64_t cap = MC_P * MC_KEYS / 2;
	connreg_t *r = x_make(name, tag, cap, 0, 0, 0);
	struct mc_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	struct kc_args args[MC_P];
	pid_t pids[MC_P];
	for (int i = 0; i < MC_P; i++) {
		args[i] = (struct kc_args){ name, sh, i, exit_unclosed_after_ms };
		pids[i] = t_fork(kc_child, &args[i]);
		cr_assert_gt(pids[i], 0);
	}
	uint64_t deadline = t_now_ms() + 10000;
	while (atomic_load(&sh->ready) < MC_P && t_now_ms() < deadline)
		t_sleep_ms(1);
	if (exit_unclosed_after_ms) {
		for (int i = 0; i < MC_P; i++)
			X_ASSERT_CHILD_OK(pids[i], 30000, &sh->rep);
	} else {
		t_sleep_ms(300);
		for (int i = 0; i < MC_P; i++) {
			kill(pids[i], SIGKILL);
			int st = t_wait(pids[i], 10000);
			cr_assert_eq(st, T_WAIT_SIGNALED + SIGKILL, "churner %d ended with %d; %s", i, st,
				     sh->rep.what);
		}
	}
	T_ASSERT_REPORT_OK(&sh->rep);
	/* every writer is gone (and waited for): the registry must check clean */
	X_ASSERT_CHECK_CLEAN(r);
	connreg_stats_t st = get_stats(r);
	uint64_t visited = 0;
	cr_assert_eq(connreg_foreach(r, count_ids_cb, &visited), 0);
	cr_assert_eq(st.live, visited, "stats live %" PRIu64 ", foreach visits %" PRIu64, st.live,
		     visited);
	/* no unit of capacity was lost: fill up to exactly the capacity */
	uint8_t id[T_ID_LEN];
	uint64_t k = 0;
	int rc;
	while ((rc = connreg_register(r, id, t_id(id, 999, k), k)) == 0)
		k++;
	cr_assert_eq(rc, -ENOSPC, "filling after the deaths: %d (%s)", rc, connreg_strerror(rc));
	cr_assert_eq(visited + k, cap, "%" PRIu64 " ids were live, %" PRIu64 " more fit: capacity %"
		     PRIu64 " not exact after writers died", visited, k, cap);
	X_ASSERT_CHECK_CLEAN(r);
	for (int i = 0; i < MC_P; i++)
		assert_never_alive_pid(r, pids[i]);
	connreg_close(r);
}

Test(check, sound_after_writer_processes_exit_without_closing)
{
	check_after_dead_writers("ck-unclosed", 300);
}

Test(check, sound_after_writer_processes_are_killed_mid_churn)
{
	check_after_dead_writers("ck-killed", 0);
}

/* ------------------------------------------------------------------ */
/* check: a corrupted segment                                          */
/* ------------------------------------------------------------------ */

/* Map /dev/shm/<name> raw, find `pat` (exactly once), flip one bit in it. */
static void corrupt_unique_bytes(const char *name, const uint8_t *pat, size_t patlen)
{
	int fd = shm_open(name, O_RDWR, 0);
	cr_assert_geq(fd, 0, "shm_open(%s): %s", name, strerror(errno));
	struct stat sb;
	cr_assert_eq(fstat(fd, &sb), 0);
	uint8_t *m = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	close(fd);
	uint8_t *hit = NULL;
	unsigned found = 0;
	for (uint8_t *p = m; (p = memmem(p, (size_t)(m + sb.st_size - p), pat, patlen)) != NULL;
	     p++) {
		hit = p;
		found++;
	}
	cr_assert_eq(found, 1, "the unique id occurs %u times in the segment", found);
	hit[patlen / 2] ^= 0x10;
	munmap(m, (size_t)sb.st_size);
}

Test(check, finds_a_corrupted_id_and_open_still_works)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "ck-corrupt", 200, 0, 0, 0);
	uint8_t victim[16];
	cr_assert_eq(getrandom(victim, sizeof victim, 0), (ssize_t)sizeof victim);
	victim[0] = 0xC7; /* not 'K': cannot be mistaken for the other ids */
	uint8_t id[T_ID_LEN];
	for (uint64_t k = 0; k < 100; k++)
		cr_assert_eq(connreg_register(r, id, t_id(id, 0, k), k), 0);
	cr_assert_eq(connreg_register(r, victim, sizeof victim, 0xbad), 0);
	X_ASSERT_CHECK_CLEAN(r);
	connreg_close(r);

	corrupt_unique_bytes(name, victim, sizeof victim);

	r = NULL;
	int rc = connreg_open(name, &r);
	cr_assert_eq(rc, 0, "open after corrupting an entry's key = %d (%s): the header is intact",
		     rc, connreg_strerror(rc));
	struct x_reports xr = { 0, "" };
	rc = connreg_check(r, x_report_cb, &xr);
	cr_assert_geq(rc, 1, "check = %d on a segment with a corrupted key", rc);
	cr_assert_eq(xr.n, rc, "report called %d times for %d problems", xr.n, rc);
	cr_assert_gt(strlen(xr.first), 0, "empty problem text");
	cr_log_info("check found %d problem(s); first: %s", rc, xr.first);
	cr_assert_eq(connreg_check(r, NULL, NULL), rc, "check without report counts differently");

	/* the victim's bytes changed, so the original id is gone; the others are intact */
	x_expect_absent(r, victim, sizeof victim);
	for (uint64_t k = 0; k < 100; k++)
		x_expect_value(r, id, t_id(id, 0, k), k);
	connreg_close(r);
}

/* ------------------------------------------------------------------ */
/* readers                                                             */
/* ------------------------------------------------------------------ */

#define MAX_SEEN 64

struct seen_readers {
	int n;
	connreg_reader_t r[MAX_SEEN];
};

static int collect_cb(const connreg_reader_t *rd, void *arg)
{
	struct seen_readers *s = arg;
	if (s->n < MAX_SEEN)
		s->r[s->n] = *rd;
	s->n++;
	return 0;
}

static struct seen_readers list_readers(connreg_t *r)
{
	struct seen_readers s;
	memset(&s, 0, sizeof s);
	int rc = connreg_readers(r, collect_cb, &s);
	cr_assert_eq(rc, 0, "connreg_readers = %d", rc);
	return s;
}

Test(readers, lists_the_calling_process_alive)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "rd-self", 16, 0, 8, 0);
	uint64_t v;
	connreg_get_transport(r, "x", 1, &v);
	struct seen_readers s = list_readers(r);
	int mine = 0;
	for (int i = 0; i < s.n && i < MAX_SEEN; i++) {
		cr_assert_lt(s.r[i].slot, 8, "slot %u beyond max_threads", s.r[i].slot);
		if (s.r[i].pid == getpid()) {
			mine++;
			cr_assert_eq(s.r[i].alive, 1, "own slot shown dead");
			cr_assert_eq(s.r[i].epoch, 0, "own slot shown inside a lookup");
		}
	}
	cr_assert_eq(mine, 1, "this process (one thread) owns %d listed slots", mine);
	connreg_stats_t st = get_stats(r);
	cr_assert_eq((uint32_t)s.n, st.readers, "readers listed %d, stats %u", s.n, st.readers);
	connreg_close(r);
}

static int stop_after_one(const connreg_reader_t *rd, void *arg)
{
	(void)rd;
	(*(int *)arg)++;
	return -42;
}

static void *rd_thread(void *arg)
{
	struct hold_arg *h = arg;
	uint64_t v;
	connreg_get_transport(h->r, "x", 1, &v);
	pthread_barrier_wait(h->b);
	pthread_barrier_wait(h->b);
	return NULL;
}

Test(readers, lists_every_thread_and_callback_return_stops_the_walk)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "rd-thr", 16, 0, 8, 0);
	uint64_t v;
	connreg_get_transport(r, "x", 1, &v);
	pthread_barrier_t b;
	pthread_barrier_init(&b, NULL, 3);
	struct hold_arg h = { r, &b };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, rd_thread, &h), 0);
	pthread_barrier_wait(&b);
	struct seen_readers s = list_readers(r);
	int mine = 0;
	for (int i = 0; i < s.n && i < MAX_SEEN; i++)
		if (s.r[i].pid == getpid()) {
			mine++;
			cr_assert_eq(s.r[i].alive, 1);
			for (int j = 0; j < i; j++)
				cr_assert_neq(s.r[j].slot, s.r[i].slot, "slot %u listed twice",
					      s.r[i].slot);
		}
	cr_assert_eq(mine, 3, "3 attached threads, %d slots listed for this pid", mine);
	int calls = 0;
	cr_assert_eq(connreg_readers(r, stop_after_one, &calls), -42);
	cr_assert_eq(calls, 1);
	pthread_barrier_wait(&b);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	s = list_readers(r);
	mine = 0;
	for (int i = 0; i < s.n && i < MAX_SEEN; i++)
		mine += s.r[i].pid == getpid();
	cr_assert_eq(mine, 1, "after 2 threads exited %d slots remain for this pid", mine);
	pthread_barrier_destroy(&b);
	connreg_close(r);
}

static int null_rd_cb(const connreg_reader_t *rd, void *arg)
{
	(void)rd, (void)arg;
	return 0;
}

Test(readers, null_arguments_return_EINVAL)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "rd-null", 16, 0, 0, 0);
	cr_assert_eq(connreg_readers(NULL, null_rd_cb, NULL), -EINVAL);
	cr_assert_eq(connreg_readers(r, NULL, NULL), -EINVAL);
	cr_assert_eq(connreg_readers(r, null_rd_cb, NULL), 0);
	connreg_close(r);
}

static int rd_echild_child(void *arg)
{
	return connreg_readers(arg, null_rd_cb, NULL) == -ECHILD ? 0 : 1;
}

Test(readers, parent_handle_in_forked_child_returns_ECHILD)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "rd-echild", 16, 0, 0, 0);
	pid_t pid = t_fork(rd_echild_child, r);
	cr_assert_eq(t_wait(pid, 10000), 0);
	connreg_close(r);
}

/* Child: open, look up (claims a slot), report its pid, then either spin on
 * lookups (spin=1) or sleep until killed. */
struct victim_args {
	const char *name;
	int fd; /* write end */
	int spin;
	int close_and_exit;
};

static int victim_child(void *p)
{
	struct victim_args *a = p;
	connreg_t *r = NULL;
	if (connreg_open(a->name, &r) != 0)
		return 10;
	uint64_t v;
	if (connreg_get_transport(r, "a", 1, &v) != 0)
		return 11;
	pid_t me = getpid();
	if (t_write_all(a->fd, &me, sizeof me) != 0)
		return 12;
	if (a->close_and_exit) {
		connreg_close(r);
		return 0;
	}
	if (a->spin) {
		for (;;)
			connreg_get_transport(r, "a", 1, &v);
	}
	for (;;)
		pause();
	return 0;
}

static pid_t start_victim(const char *name, int spin, int close_and_exit, pid_t *child_pid)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	struct victim_args a = { name, fds[1], spin, close_and_exit };
	pid_t pid = t_fork(victim_child, &a);
	cr_assert_gt(pid, 0);
	close(fds[1]);
	pid_t reported = 0;
	cr_assert_eq(t_read_all(fds[0], &reported, sizeof reported), 0, "victim did not report");
	close(fds[0]);
	cr_assert_eq(reported, pid);
	*child_pid = pid;
	return pid;
}

static void assert_never_alive_pid(connreg_t *r, pid_t dead)
{
	struct seen_readers s = list_readers(r);
	for (int i = 0; i < s.n && i < MAX_SEEN; i++)
		if (s.r[i].pid == dead)
			cr_assert_eq(s.r[i].alive, 0, "slot %u of dead pid %d shown alive", s.r[i].slot,
				     (int)dead);
}

Test(readers, slot_of_a_killed_process_is_never_shown_alive)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "rd-kill", 64, 0, 8, 0);
	cr_assert_eq(connreg_register(r, "a", 1, 1), 0);
	pid_t pid;
	start_victim(name, 0, 0, &pid);

	struct seen_readers s = list_readers(r);
	int listed = 0;
	for (int i = 0; i < s.n && i < MAX_SEEN; i++)
		if (s.r[i].pid == pid) {
			listed++;
			cr_assert_eq(s.r[i].alive, 1, "the running child's slot shown dead");
		}
	cr_assert_eq(listed, 1, "the running child owns %d listed slots", listed);

	kill(pid, SIGKILL);
	cr_assert_eq(t_wait(pid, 10000), T_WAIT_SIGNALED + SIGKILL);
	assert_never_alive_pid(r, pid);

	/* the registry keeps working, and recovering the slot does not show it alive either */
	for (int i = 0; i < 3000; i++)
		cr_assert_eq(connreg_update_transport(r, "a", 1, (uint64_t)i), 0);
	assert_never_alive_pid(r, pid);
	connreg_close(r);
}

Test(readers, writers_progress_after_a_reader_is_killed_mid_lookups)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "rd-killspin", 64, 0, 8, 0);
	cr_assert_eq(connreg_register(r, "a", 1, 1), 0);
	for (int round = 0; round < 3; round++) {
		pid_t pid;
		start_victim(name, 1, 0, &pid);
		t_sleep_ms(5);
		kill(pid, SIGKILL); /* quite likely inside a lookup */
		cr_assert_eq(t_wait(pid, 10000), T_WAIT_SIGNALED + SIGKILL);
		assert_never_alive_pid(r, pid);
		/* many more updates than entries: grace periods must complete */
		connreg_stats_t st = get_stats(r);
		uint64_t t0 = t_now_ns();
		for (uint64_t i = 0; i < st.entries + 500; i++) {
			int rc = connreg_update_transport(r, "a", 1, i);
			cr_assert_eq(rc, 0, "update %" PRIu64 " after a reader died: %d (%s)", i, rc,
				     connreg_strerror(rc));
		}
		cr_assert_lt(x_ms_since(t0), 10000.0);
		assert_never_alive_pid(r, pid);
	}
	connreg_close(r);
}

Test(readers, slot_of_a_process_that_closed_is_released)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "rd-closed", 64, 0, 8, 0);
	cr_assert_eq(connreg_register(r, "a", 1, 1), 0);
	pid_t pid;
	start_victim(name, 0, 1, &pid);
	cr_assert_eq(t_wait(pid, 10000), 0);
	struct seen_readers s = list_readers(r);
	for (int i = 0; i < s.n && i < MAX_SEEN; i++)
		cr_assert_neq(s.r[i].pid, pid, "slot %u of a process that closed its handle is still "
			      "listed", s.r[i].slot);
	X_ASSERT_CHECK_CLEAN(r);
	connreg_close(r);
}

/*
 * A process that was killed has exited even while its parent has not yet
 * waited for it (a zombie): its slot must not be shown alive, and a slot it
 * left inside a lookup must not hold back writers.
 */
static void kill_and_leave_zombie(pid_t pid)
{
	kill(pid, SIGKILL);
	siginfo_t si;
	memset(&si, 0, sizeof si);
	int rc;
	do
		rc = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT);
	while (rc < 0 && errno == EINTR);
	cr_assert_eq(rc, 0, "waitid: %s", strerror(errno));
	cr_assert_eq(si.si_pid, pid);
}

Test(readers, killed_process_not_yet_waited_for_is_not_shown_alive)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "rd-zombie", 64, 0, 8, 0);
	cr_assert_eq(connreg_register(r, "a", 1, 1), 0);
	pid_t pid;
	start_victim(name, 0, 0, &pid);
	kill_and_leave_zombie(pid); /* exited; not waited for yet */
	struct seen_readers s = list_readers(r);
	for (int i = 0; i < s.n && i < MAX_SEEN; i++)
		cr_assert(s.r[i].pid != pid || s.r[i].alive == 0,
			  "slot %u of pid %d, killed (exited, not yet waited for), shown alive",
			  s.r[i].slot, (int)pid);
	cr_assert_eq(t_wait(pid, 10000), T_WAIT_SIGNALED + SIGKILL);
	connreg_close(r);
}

static int find_slot_epoch(const connreg_reader_t *rd, void *arg)
{
	const pid_t *pid = arg;
	return rd->pid == *pid && rd->epoch != 0 ? 1 : 0;
}

Test(readers, writers_progress_while_a_reader_killed_mid_lookup_is_not_yet_waited_for)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "rd-zombiespin", 64, 0, 8, 0);
	cr_assert_eq(connreg_register(r, "a", 1, 1), 0);
	pid_t pid = 0;
	int tries;
	/* until a spinning reader dies inside a lookup (its slot keeps an epoch) */
	for (tries = 0; tries < 200; tries++) {
		start_victim(name, 1, 0, &pid);
		t_sleep_ms(2);
		kill_and_leave_zombie(pid);
		if (connreg_readers(r, find_slot_epoch, &pid) == 1)
			break;
		cr_assert_eq(t_wait(pid, 10000), T_WAIT_SIGNALED + SIGKILL);
		pid = 0;
	}
	cr_assert_neq(pid, 0, "no reader was killed inside a lookup in %d tries", tries);
	connreg_stats_t st = get_stats(r);
	int rc = 0;
	uint64_t i;
	for (i = 0; i < st.entries + 500; i++) {
		rc = connreg_update_transport(r, "a", 1, i);
		if (rc != 0)
			break;
	}
	int zst = t_wait(pid, 10000);
	cr_assert_eq(rc, 0, "update #%" PRIu64 " = %d (%s) while a reader killed inside a lookup "
		     "(pid %d) had not been waited for yet", i, rc, connreg_strerror(rc), (int)pid);
	cr_assert_eq(zst, T_WAIT_SIGNALED + SIGKILL);
	connreg_close(r);
}
