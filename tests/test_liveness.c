/*
 * test_liveness.c: a reader slot belongs to a thread, and the library must
 * judge that thread's liveness right in the situations of issue #9:
 *
 *  1. a process whose main thread called pthread_exit (its leader is a
 *     zombie in /proc) while a worker thread keeps using the registry;
 *  2. two processes that share /dev/shm but not a pid namespace;
 *  3. a fork child whose only thread exits (pthread_exit, or a return from
 *     the thread start routine): the pthread key destructor it inherited
 *     must not give back its parent's slot;
 *  5. an inserter stopped (SIGSTOP) while it holds a stripe lock: inserts
 *     of other new ids homed in that stripe get -EAGAIN within about
 *     CONNREG_RECLAIM_WAIT_MS instead of blocking forever;
 *  6. a child forked while another thread of its parent is inside
 *     connreg_open can open the registry itself (no process-local mutex is
 *     inherited locked).
 * (Situation 4, exec, is tests/test_exec.c.)
 *
 * Every situation runs in real separate processes that open the registry
 * by name; children report through their exit status or a shared area.
 */
#include "common.h"
#include "fault.h"

#include <sys/syscall.h>

TestSuite(liveness, .fini = t_cleanup_names, .timeout = 60);

#define LV_IDS 64         /* ids per writer side */
#define LV_SIDES 3        /* writer sides at most */
#define LV_RUN_MS 2500    /* how long the writers churn */
#define LV_SPAWN_MS 20    /* a churner starts a short-lived reader thread this often */

static pid_t lv_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* ------------------------------------------------------------------ */
/* writer sides: churn on their own ids, verify every lookup            */
/* ------------------------------------------------------------------ */

struct lv_side {
	atomic_int attached;   /* made its first successful call */
	atomic_int stopping;   /* about to close: its slot may go now */
	uint64_t ops, lookups, again, threads;
};

struct lv_sh {
	t_report_t rep;          /* first wrong lookup / failed call */
	atomic_ullong wrong;     /* lookups that returned a wrong answer */
	atomic_ullong end_ms;    /* CLOCK_MONOTONIC deadline of the churn (0: not yet set) */
	atomic_int ns_errno;     /* test 2: errno of a failed unshare */
	struct lv_side side[LV_SIDES];
};

/* Side s writes ids of namespace s + 1 with values t_enc(s, k, seq). */
static size_t lv_id(uint8_t *buf, int side, uint32_t k)
{
	return t_id(buf, (uint32_t)side + 1, k);
}

/*
 * Look up id k of another side (or our own, without knowing its state):
 * -ENOENT, or a well-formed value written by that side for that id.
 */
static void lv_check_any(connreg_t *r, struct lv_sh *sh, int me, int side, uint32_t k)
{
	uint8_t id[T_ID_LEN];
	uint64_t v = 0;
	uint32_t w, gi, s;
	int rc = connreg_get_transport(r, id, lv_id(id, side, k), &v);

	if (rc == -ENOENT)
		return;
	if (rc != 0 || !t_dec(v, &w, &gi, &s) || w != (uint32_t)side || gi != k) {
		atomic_fetch_add(&sh->wrong, 1);
		t_report_fail(&sh->rep, __LINE__,
			      "side %d: lookup of side %d id %u: rc %d, value %#" PRIx64, me, side,
			      k, rc, v);
	}
}

struct lv_reader_arg {
	connreg_t *r;
	struct lv_sh *sh;
	int me, nsides;
	uint64_t seed;
};

/* A short-lived thread: claims a slot, checks lookups, exits (gives it back). */
static void *lv_reader_thread(void *p)
{
	struct lv_reader_arg *a = p;

	for (int i = 0; i < 200; i++) {
		uint64_t x = t_rand(&a->seed);

		lv_check_any(a->r, a->sh, a->me, (int)((x >> 40) % (uint64_t)a->nsides),
			     (uint32_t)(x % LV_IDS));
	}
	return NULL;
}

/*
 * Register, update and unregister our own ids at random until the shared
 * deadline; each lookup of our own id must return exactly what we last
 * wrote (we are its only writer), a lookup of another side's id a value
 * that side wrote for it. -EAGAIN (a write that did not happen) is counted
 * and skipped: a preempted reader on a loaded machine can cause it.
 */
static int lv_churn(connreg_t *r, struct lv_sh *sh, int me, int nsides, bool spawn)
{
	struct lv_side *sd = &sh->side[me];
	uint64_t val[LV_IDS];
	uint32_t seq[LV_IDS];
	bool live[LV_IDS];
	uint8_t id[T_ID_LEN];
	uint64_t seed = 0x5eed0000ull + (uint64_t)me * 7919, next_spawn = 0;
	int rc;

	memset(seq, 0, sizeof seq);
	memset(live, 0, sizeof live);
	memset(val, 0, sizeof val);
	for (;;) {
		uint64_t end = atomic_load(&sh->end_ms), now = t_now_ms();

		if (end != 0 && now >= end)
			break;
		if (spawn && now >= next_spawn) {
			struct lv_reader_arg ra = { r, sh, me, nsides, seed ^ now };
			pthread_t th;

			next_spawn = now + LV_SPAWN_MS;
			if (pthread_create(&th, NULL, lv_reader_thread, &ra) == 0) {
				pthread_join(th, NULL);
				sd->threads++;
			}
		}
		for (int b = 0; b < 64; b++) {
			uint64_t x = t_rand(&seed);
			uint32_t k = (uint32_t)(x % LV_IDS);
			unsigned op = (unsigned)((x >> 32) % 100);
			size_t n = lv_id(id, me, k);

			if (!live[k] || op < 40) {
				uint64_t v = t_enc((uint32_t)me, k, ++seq[k]);

				rc = connreg_register(r, id, n, v);
				if (rc == 0) {
					live[k] = true;
					val[k] = v;
				}
			} else if (op < 55) {
				rc = connreg_unregister(r, id, n);
				if (rc == 0)
					live[k] = false;
			} else {
				uint64_t v = t_enc((uint32_t)me, k, ++seq[k]);

				rc = connreg_update_transport(r, id, n, v);
				if (rc == 0)
					val[k] = v;
			}
			if (rc == -EAGAIN) {
				sd->again++;
			} else if (rc != 0) {
				t_report_fail(&sh->rep, __LINE__, "side %d: write of id %u: %d (%s)",
					      me, k, rc, connreg_strerror(rc));
				return 1;
			}
			sd->ops++;
			if (!atomic_load_explicit(&sd->attached, memory_order_relaxed))
				atomic_store(&sd->attached, 1);

			/* Our own id: exactly what we last wrote. */
			uint32_t q = (uint32_t)((x >> 48) % LV_IDS);
			uint64_t got = 0;

			rc = connreg_get_transport(r, id, lv_id(id, me, q), &got);
			sd->lookups++;
			if (live[q] ? (rc != 0 || got != val[q]) : rc != -ENOENT) {
				atomic_fetch_add(&sh->wrong, 1);
				t_report_fail(&sh->rep, __LINE__,
					      "side %d: own id %u (%s, last value %#" PRIx64
					      "): rc %d, value %#" PRIx64,
					      me, q, live[q] ? "live" : "unregistered", val[q], rc, got);
			}
			/* Another side's id. */
			if (nsides > 1) {
				int other = (me + 1 + (int)((x >> 20) % (uint64_t)(nsides - 1))) % nsides;

				lv_check_any(r, sh, me, other, (uint32_t)((x >> 8) % LV_IDS));
				sd->lookups++;
			}
		}
	}
	return 0;
}

struct lv_args {
	const char *name;
	struct lv_sh *sh;
	int me, nsides;
	bool spawn;
};

/* A churning process (forked child). */
static int lv_churner(void *p)
{
	struct lv_args *a = p;
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);

	T_CHECK(&a->sh->rep, rc == 0, return 10, "side %d open: %d", a->me, rc);
	rc = lv_churn(r, a->sh, a->me, a->nsides, a->spawn);
	atomic_store(&a->sh->side[a->me].stopping, 1);
	connreg_close(r);
	return rc;
}

/* ------------------------------------------------------------------ */
/* reader-slot watch from the test process (connreg_readers)           */
/* ------------------------------------------------------------------ */

struct lv_watch {
	pid_t pid;          /* slots of this process */
	unsigned mine;      /* claimed slots whose pid is `pid` */
	unsigned others;    /* claimed slots of any other pid */
	unsigned dead;      /* claimed slots reported not alive */
	int32_t dead_pid;
};

static int lv_watch_fn(const connreg_reader_t *rd, void *arg)
{
	struct lv_watch *w = arg;

	if (rd->pid == w->pid)
		w->mine++;
	else
		w->others++;
	if (!rd->alive) {
		w->dead++;
		w->dead_pid = rd->pid;
	}
	return 0;
}

struct lv_watch_result {
	unsigned polls, missing, dead, no_other;
	int32_t dead_pid;
};

/*
 * While `side` runs (attached, not yet stopping): every poll must show a
 * slot owned by `pid`, every claimed slot alive, and (want_other) some
 * slot of another pid too.
 */
static struct lv_watch_result lv_watch(connreg_t *r, struct lv_sh *sh, pid_t pid,
				       const int *sides, int nsides, bool want_other)
{
	struct lv_watch_result res = { 0, 0, 0, 0, 0 };

	for (;;) {
		bool running = true;

		for (int i = 0; i < nsides; i++)
			if (!atomic_load(&sh->side[sides[i]].attached) ||
			    atomic_load(&sh->side[sides[i]].stopping))
				running = false;
		uint64_t end = atomic_load(&sh->end_ms);
		if (!running) {
			if (end != 0 && t_now_ms() > end)
				break;
			t_sleep_ms(1);
			continue;
		}
		struct lv_watch w = { pid, 0, 0, 0, 0 };

		cr_assert_eq(connreg_readers(r, lv_watch_fn, &w), 0);
		/* Only count the poll if every side was still running after the walk. */
		for (int i = 0; i < nsides; i++)
			if (atomic_load(&sh->side[sides[i]].stopping))
				running = false;
		if (running) {
			res.polls++;
			if (w.mine == 0)
				res.missing++;
			if (w.dead) {
				res.dead++;
				res.dead_pid = w.dead_pid;
			}
			if (want_other && w.others == 0)
				res.no_other++;
		}
		t_sleep_ms(2);
	}
	return res;
}

struct lv_problems {
	char text[1024];
	size_t len;
};

static void lv_problem(const char *problem, void *arg)
{
	struct lv_problems *p = arg;
	int n = snprintf(p->text + p->len, sizeof p->text - p->len, "%s; ", problem);

	if (n > 0 && p->len + (size_t)n < sizeof p->text)
		p->len += (size_t)n;
}

static void lv_assert_sound(connreg_t *r)
{
	struct lv_problems p = { "", 0 };
	int rc = connreg_check(r, lv_problem, &p);

	cr_assert_eq(rc, 0, "connreg_check: %d problem(s): %s", rc, p.text);
}

static void lv_assert_sides(struct lv_sh *sh, int nsides)
{
	T_ASSERT_REPORT_OK(&sh->rep);
	cr_assert_eq(atomic_load(&sh->wrong), 0, "%llu wrong lookups",
		     (unsigned long long)atomic_load(&sh->wrong));
	for (int i = 0; i < nsides; i++) {
		cr_assert_gt(sh->side[i].ops, 1000u, "side %d did only %" PRIu64 " writes", i,
			     sh->side[i].ops);
		cr_log_info("side %d: %" PRIu64 " writes, %" PRIu64 " lookups, %" PRIu64
			    " -EAGAIN, %" PRIu64 " short-lived threads",
			    i, sh->side[i].ops, sh->side[i].lookups, sh->side[i].again,
			    sh->side[i].threads);
	}
}

/* Wait until every side attached; then start the clock for all of them. */
static void lv_start_clock(struct lv_sh *sh, int nsides)
{
	uint64_t t0 = t_now_ms();

	for (int i = 0; i < nsides; i++) {
		while (!atomic_load(&sh->side[i].attached)) {
			cr_assert_eq(atomic_load(&sh->rep.nfail), 0, "side failed before attaching: %s",
				     sh->rep.what);
			cr_assert_lt(t_now_ms() - t0, 10000u, "side %d never attached", i);
			t_sleep_ms(1);
		}
	}
	atomic_store(&sh->end_ms, t_now_ms() + LV_RUN_MS);
}

/* ------------------------------------------------------------------ */
/* 1. main thread gone (pthread_exit), worker thread still using it     */
/* ------------------------------------------------------------------ */

struct lv_daemon {
	connreg_t *r;
	struct lv_args *a;
};

static void *lv_daemon_worker(void *p)
{
	struct lv_daemon *d = p;
	int rc = lv_churn(d->r, d->a->sh, d->a->me, d->a->nsides, false);

	atomic_store(&d->a->sh->side[d->a->me].stopping, 1);
	connreg_close(d->r);
	_exit(rc);
}

/* The daemon pattern: open, start the worker, then the main thread leaves. */
static int lv_daemon(void *p)
{
	static struct lv_daemon d;
	struct lv_args *a = p;
	pthread_t th;
	int rc = connreg_open(a->name, &d.r);

	T_CHECK(&a->sh->rep, rc == 0, return 10, "daemon open: %d", rc);
	d.a = a;
	T_CHECK(&a->sh->rep, pthread_create(&th, NULL, lv_daemon_worker, &d) == 0, return 11,
		"daemon: pthread_create failed");
	pthread_exit(NULL); /* the leader becomes a zombie; the worker goes on */
}

Test(liveness, worker_of_a_process_whose_main_thread_exited_keeps_its_slot)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(LV_IDS * 3, 0, 0);
	connreg_t *r = NULL;
	struct lv_sh *sh = t_shared(sizeof *sh);
	struct lv_args a[3];
	pid_t pid[3];

	cr_assert_not_null(sh);
	t_name(name, "lvzomb");
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	/* The daemon attaches first (lowest slot); churners start threads that claim slots. */
	a[0] = (struct lv_args){ name, sh, 0, 3, false };
	pid[0] = t_fork(lv_daemon, &a[0]);
	cr_assert_gt(pid[0], 0);
	while (!atomic_load(&sh->side[0].attached) && !atomic_load(&sh->rep.nfail))
		t_sleep_ms(1);
	for (int i = 1; i < 3; i++) {
		a[i] = (struct lv_args){ name, sh, i, 3, true };
		pid[i] = t_fork(lv_churner, &a[i]);
		cr_assert_gt(pid[i], 0);
	}
	lv_start_clock(sh, 3);

	/* The worker's slot stays claimed and alive the whole time. */
	int watched[1] = { 0 };
	struct lv_watch_result w = lv_watch(r, sh, pid[0], watched, 1, false);
	int st[3];

	for (int i = 0; i < 3; i++)
		st[i] = t_wait(pid[i], 15000);
	cr_assert_gt(w.polls, 10u, "only %u polls of connreg_readers while every side ran "
		     "(first failure reported: %s)", w.polls, sh->rep.what);
	cr_assert_eq(w.missing, 0u,
		     "the live worker's slot vanished from connreg_readers in %u of %u polls "
		     "(recovered while in use)",
		     w.missing, w.polls);
	cr_assert_eq(w.dead, 0u, "%u of %u polls showed a slot of pid %d as not alive", w.dead,
		     w.polls, (int)w.dead_pid);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(st[i], 0, "side %d: status %d", i, st[i]);
	lv_assert_sides(sh, 3);
	lv_assert_sound(r);
	connreg_close(r);
}

/* ------------------------------------------------------------------ */
/* 2. another pid namespace                                            */
/* ------------------------------------------------------------------ */

/* Child: unshare(CLONE_NEWPID), then its child (pid 1 there) churns. */
static int lv_nsparent(void *p)
{
	struct lv_args *a = p;

	if (unshare(CLONE_NEWPID) != 0) {
		atomic_store(&a->sh->ns_errno, errno);
		return 77;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t g = fork();
	if (g == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getpid() != 1) {
			t_report_fail(&a->sh->rep, __LINE__, "grandchild is pid %d, not 1",
				      (int)getpid());
			_exit(12);
		}
		_exit(lv_churner(a));
	}
	if (g < 0)
		return 13;
	int st;

	while (waitpid(g, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 100 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

Test(liveness, processes_in_different_pid_namespaces_keep_each_others_slots)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(LV_IDS * 2, 0, 0);
	connreg_t *r = NULL;
	struct lv_sh *sh = t_shared(sizeof *sh);
	struct lv_args a[2];
	pid_t pid[2];
	int st[2];

	cr_assert_not_null(sh);
	t_name(name, "lvpidns");
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	a[0] = (struct lv_args){ name, sh, 0, 2, true };
	pid[0] = t_fork(lv_nsparent, &a[0]);
	cr_assert_gt(pid[0], 0);
	/* Skip (not fail) where a new pid namespace cannot be made. */
	uint64_t t0 = t_now_ms();
	while (!atomic_load(&sh->side[0].attached)) {
		cr_assert_lt(t_now_ms() - t0, 10000u, "the namespaced side never attached");
		pid_t w = waitpid(pid[0], &st[0], WNOHANG);

		if (w == pid[0]) {
			if (WIFEXITED(st[0]) && WEXITSTATUS(st[0]) == 77) {
				connreg_close(r);
				cr_skip_test("unshare(CLONE_NEWPID) failed: %s (needs root or "
					     "CAP_SYS_ADMIN); the pid-namespace case is not tested",
					     strerror(atomic_load(&sh->ns_errno)));
			}
			cr_assert_fail("namespaced side exited early: status %#x; %s", st[0],
				       sh->rep.what);
		}
		t_sleep_ms(1);
	}
	a[1] = (struct lv_args){ name, sh, 1, 2, true };
	pid[1] = t_fork(lv_churner, &a[1]);
	cr_assert_gt(pid[1], 0);
	lv_start_clock(sh, 2);

	/* The host-side process's slot, and the namespaced one's, stay claimed and alive. */
	int watched[2] = { 0, 1 };
	struct lv_watch_result w = lv_watch(r, sh, pid[1], watched, 2, true);

	for (int i = 0; i < 2; i++)
		st[i] = t_wait(pid[i], 15000);
	cr_assert_gt(w.polls, 10u, "only %u polls of connreg_readers while every side ran "
		     "(first failure reported: %s)", w.polls, sh->rep.what);
	cr_assert_eq(w.missing, 0u,
		     "the host-side process's slot vanished from connreg_readers in %u of %u "
		     "polls (recovered by the other namespace while in use)",
		     w.missing, w.polls);
	cr_assert_eq(w.no_other, 0u,
		     "the namespaced process's slot vanished from connreg_readers in %u of %u polls",
		     w.no_other, w.polls);
	cr_assert_eq(w.dead, 0u, "%u of %u polls showed a slot of pid %d as not alive", w.dead,
		     w.polls, (int)w.dead_pid);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(st[i], 0, "side %d: status %d", i, st[i]);
	lv_assert_sides(sh, 2);
	lv_assert_sound(r);
	connreg_close(r);
}

/* ------------------------------------------------------------------ */
/* 3. a fork child's exiting thread must not free its parent's slot      */
/* ------------------------------------------------------------------ */

struct lv_slot_find {
	pid_t pid, tid;
	int64_t slot;  /* -1: not found */
	unsigned n;    /* slots of pid */
};

static int lv_slot_find_fn(const connreg_reader_t *rd, void *arg)
{
	struct lv_slot_find *f = arg;

	if (rd->pid != f->pid)
		return 0;
	f->n++;
	if (rd->tid == (uint32_t)f->tid)
		f->slot = rd->slot;
	return 0;
}

/* The slot connreg_readers shows for (pid, tid), or -1. */
static int64_t lv_slot_of(connreg_t *r, pid_t pid, pid_t tid)
{
	struct lv_slot_find f = { pid, tid, -1, 0 };

	if (connreg_readers(r, lv_slot_find_fn, &f) != 0)
		return -2;
	return f.slot;
}

struct lv_newthr {
	connreg_t *r;
	int rc;
	int64_t slot;
};

/* A new thread of the parent: its first call claims a slot. */
static void *lv_new_thread(void *p)
{
	struct lv_newthr *n = p;
	uint8_t id[T_ID_LEN];
	uint64_t v;

	n->rc = connreg_get_transport(n->r, id, t_id(id, 9, 1), &v);
	n->slot = lv_slot_of(n->r, getpid(), lv_gettid());
	return NULL;
}

static int lv_child_pthread_exit(void *p)
{
	(void)p;
	pthread_exit(NULL); /* the only thread: key destructors run, then exit(0) */
}

struct lv_forker {
	connreg_t *r;
	int64_t slot_before, slot_after, new_slot;
	int rc_first, rc_after, new_rc, child_status;
	pid_t tid;
};

/*
 * Check, in the parent, after a fork child's thread exited: the slot of
 * (pid, tid) is still claimed, a lookup still works, and a new thread
 * gets a different slot.
 */
static void lv_after_child(struct lv_forker *f)
{
	uint8_t id[T_ID_LEN];
	uint64_t v;
	struct lv_newthr n = { f->r, 0, -1 };
	pthread_t th;

	f->slot_after = lv_slot_of(f->r, getpid(), f->tid);
	f->rc_after = connreg_get_transport(f->r, id, t_id(id, 9, 1), &v);
	if (pthread_create(&th, NULL, lv_new_thread, &n) == 0)
		pthread_join(th, NULL);
	else
		n.rc = -EAGAIN;
	f->new_rc = n.rc;
	f->new_slot = n.slot;
}

static void lv_assert_forker(const struct lv_forker *f)
{
	cr_assert_eq(f->rc_first, 0, "first lookup: %d", f->rc_first);
	cr_assert_geq(f->slot_before, 0, "the thread's slot is not in connreg_readers");
	cr_assert_eq(f->child_status, 0, "child status %d", f->child_status);
	cr_assert_eq(f->slot_after, f->slot_before,
		     "after the fork child's thread exited, the parent thread's slot %" PRId64
		     " is %s",
		     f->slot_before,
		     f->slot_after == -1 ? "no longer claimed (the child gave it back)"
					 : "a different one");
	cr_assert_eq(f->rc_after, 0, "lookup in the parent afterwards: %d", f->rc_after);
	cr_assert_eq(f->new_rc, 0, "a new thread's lookup: %d", f->new_rc);
	cr_assert_geq(f->new_slot, 0, "the new thread's slot is not in connreg_readers");
	cr_assert_neq(f->new_slot, f->slot_before,
		      "a new thread of the parent got slot %" PRId64
		      ", which the parent's first thread still uses",
		      f->new_slot);
}

/*
 * The handle of the fork tests, kept in a global: the fork child exits
 * through exit() once its only thread is gone, and LeakSanitizer (ASan
 * builds) must see the inherited handle as reachable.
 */
static connreg_t *lv_fork_reg;

static connreg_t *lv_fork_registry(char *name, const char *tag)
{
	connreg_config_t cfg = t_cfg(64, 0, 8);
	connreg_t *r = NULL;
	uint8_t id[T_ID_LEN];

	t_name(name, tag);
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	cr_assert_eq(connreg_register(r, id, t_id(id, 9, 1), 42), 0);
	lv_fork_reg = r;
	return r;
}

Test(liveness, fork_child_pthread_exit_keeps_the_parents_slot)
{
	char name[T_NAME_BUF];
	connreg_t *r = lv_fork_registry(name, "lvfork1");
	struct lv_forker f = { .r = r, .tid = lv_gettid() };
	uint8_t id[T_ID_LEN];
	uint64_t v;

	f.rc_first = connreg_get_transport(r, id, t_id(id, 9, 1), &v);
	f.slot_before = lv_slot_of(r, getpid(), f.tid);
	f.child_status = t_wait(t_fork(lv_child_pthread_exit, NULL), 10000);
	lv_after_child(&f);
	lv_assert_forker(&f);
	lv_assert_sound(r);
	connreg_close(r);
}

/* In a fork child: wait for the thread *arg to end, then _exit(0). */
static void *lv_reaper(void *arg)
{
	_exit(pthread_join(*(pthread_t *)arg, NULL) == 0 ? 0 : 41);
}

/* Thread that holds a slot, forks, and in the child returns from its start routine. */
static void *lv_forking_thread(void *p)
{
	struct lv_forker *f = p;
	uint8_t id[T_ID_LEN];
	uint64_t v;

	f->tid = lv_gettid();
	f->rc_first = connreg_get_transport(f->r, id, t_id(id, 9, 1), &v);
	f->slot_before = lv_slot_of(f->r, getpid(), f->tid);
	fflush(stdout);
	fflush(stderr);
	pid_t c = fork();
	if (c == 0) {
		static pthread_t self;
		pthread_t reaper;

		self = pthread_self();
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/*
		 * Our thread leaves its start routine (glibc then runs the key
		 * destructors it inherited); a second thread waits for that
		 * and ends the child with _exit, so no exit-time handler
		 * (LeakSanitizer's, with the parent's main thread gone) runs.
		 */
		if (pthread_create(&reaper, NULL, lv_reaper, &self) != 0)
			_exit(40);
		return NULL;
	}
	f->child_status = t_wait(c, 10000);
	lv_after_child(f);
	return NULL;
}

Test(liveness, fork_child_of_a_thread_returning_keeps_the_parents_slot)
{
	char name[T_NAME_BUF];
	connreg_t *r = lv_fork_registry(name, "lvfork2");
	struct lv_forker f = { .r = r };
	pthread_t th;

	cr_assert_eq(pthread_create(&th, NULL, lv_forking_thread, &f), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
	lv_assert_forker(&f);
	lv_assert_sound(r);
	connreg_close(r);
}

/* ------------------------------------------------------------------ */
/* 5. an inserter stopped while it holds a stripe lock                  */
/* ------------------------------------------------------------------ */

#define LV_PROBE_IDS 16
#define LV_PROBE_TIMEOUT_MS 8000

struct lv_stop_sh {
	t_report_t rep;
	const char *name;
	long k;
	long passed;             /* fault points a full register passed (k too large) */
	atomic_int tried;        /* probe: ids tried so far */
	int rc[LV_PROBE_IDS];
	uint64_t ms[LV_PROBE_IDS];
	atomic_ullong started_ms; /* probe: when the current register began */
};

/* Inserter: attach, then register a new id, SIGSTOPping itself at fault point k. */
static int lv_inserter(void *p)
{
	struct lv_stop_sh *sh = p;
	connreg_t *r = NULL;
	uint8_t id[T_ID_LEN];
	uint64_t v;

	if (connreg_open(sh->name, &r) != 0)
		return 10;
	/* Claim our reader slot before arming: only the register's points count. */
	connreg_get_transport(r, id, t_id(id, 7, 0), &v);
	cr_fault_arm_stop(sh->k);
	int rc = connreg_register(r, id, t_id(id, 7, 0), 7);
	sh->passed = cr_fault_passed();
	cr_fault_arm(0);
	return rc == 0 ? 50 : 51; /* finished without stopping: k is past the last point */
}

/*
 * Probe: register (then unregister) new ids one by one until one was
 * refused with -EAGAIN and one succeeded (four refused in a row also end
 * it: each refusal costs about CONNREG_RECLAIM_WAIT_MS), or LV_PROBE_IDS
 * were tried.
 * rc[i], ms[i]: each register's result and duration.
 */
static int lv_probe(void *p)
{
	struct lv_stop_sh *sh = p;
	connreg_t *r = NULL;
	uint8_t id[T_ID_LEN];
	int again = 0, ok = 0;

	if (connreg_open(sh->name, &r) != 0)
		return 10;
	for (int i = 0; i < LV_PROBE_IDS && (again < 1 || ok < 1) && again < 4; i++) {
		size_t n = t_id(id, 8, (uint64_t)i);
		uint64_t t0 = t_now_ms();

		atomic_store(&sh->started_ms, t0);
		atomic_store(&sh->tried, i + 1);
		sh->rc[i] = connreg_register(r, id, n, (uint64_t)i);
		sh->ms[i] = t_now_ms() - t0;
		if (sh->rc[i] == 0) {
			ok++;
			if (connreg_unregister(r, id, n) != 0)
				return 11;
		} else if (sh->rc[i] == -EAGAIN) {
			again++;
		} else {
			return 12;
		}
	}
	connreg_close(r);
	return 0;
}

static uint64_t lv_writer_eagain(connreg_t *r)
{
	connreg_stats_t st;

	memset(&st, 0, sizeof st);
	st.size = sizeof st;
	cr_assert_eq(connreg_stats(r, &st), 0);
	return st.writer_eagain;
}

Test(liveness, stopped_inserter_holding_a_stripe_lock_gives_bounded_EAGAIN)
{
	char name[T_NAME_BUF];
	/* Capacity 4: two index buckets, so every id is homed in one of two stripes. */
	connreg_config_t cfg = t_cfg(4, 0, 0);
	connreg_t *r = NULL;
	struct lv_stop_sh *sh = t_shared(sizeof *sh);
	uint8_t id[T_ID_LEN];

	cr_assert_not_null(sh);
	t_name(name, "lvstop");
	sh->name = name;
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	cr_assert_eq(connreg_register(r, id, t_id(id, 9, 0), 1), 0);

	/*
	 * Stop the inserter at fault point k = 1, 2, ... of its register until
	 * a probe is refused: that k is inside the stripe lock (the first point
	 * after it is taken). Before it, the probe's inserts all succeed.
	 */
	for (long k = 1;; k++) {
		sh->k = k;
		pid_t ins = t_fork(lv_inserter, sh);
		int ws = 0;
		uint64_t t0 = t_now_ms();

		cr_assert_gt(ins, 0);
		while (waitpid(ins, &ws, WUNTRACED | WNOHANG) == 0 && t_now_ms() - t0 < 10000)
			t_sleep_ms(1);
		if (WIFEXITED(ws))
			cr_assert_fail("the inserter's register passed all %ld fault points (exit %d) "
				       "and no stop point refused or blocked another insert",
				       sh->passed, WEXITSTATUS(ws));
		cr_assert(WIFSTOPPED(ws), "k=%ld: the inserter did not stop (status %#x)", k, ws);

		uint64_t eagain0 = lv_writer_eagain(r);
		memset(sh->rc, 0, sizeof sh->rc);
		memset(sh->ms, 0, sizeof sh->ms);
		atomic_store(&sh->tried, 0);
		int pst = t_wait(t_fork(lv_probe, sh), LV_PROBE_TIMEOUT_MS);
		int tried = atomic_load(&sh->tried), again = 0, ok = 0;

		cr_assert_neq(pst, T_WAIT_TIMEOUT,
			      "k=%ld: with the inserter stopped holding a stripe lock, the register "
			      "of a new id (probe id %d) was still blocked after %llu ms "
			      "(expected -EAGAIN within about %d ms)",
			      k, tried - 1,
			      (unsigned long long)(t_now_ms() - atomic_load(&sh->started_ms)),
			      CONNREG_RECLAIM_WAIT_MS);
		cr_assert_eq(pst, 0, "k=%ld: probe status %d", k, pst);
		for (int i = 0; i < tried; i++) {
			if (sh->rc[i] == -EAGAIN) {
				again++;
				cr_assert_leq(sh->ms[i], 3000u,
					      "k=%ld: probe id %d got -EAGAIN only after %llu ms", k, i,
					      (unsigned long long)sh->ms[i]);
			} else {
				ok++;
			}
		}
		if (again == 0) {
			/* Not inside the lock at this point: every insert went through. */
			kill(ins, SIGKILL);
			kill(ins, SIGCONT);
			cr_assert_eq(t_wait(ins, 10000), T_WAIT_SIGNALED + SIGKILL);
			cr_assert_lt(k, 40, "no stop point up to k=%ld refused an insert", k);
			continue;
		}
		cr_log_info("inserter stopped at fault point %ld: %d of %d probe inserts got "
			    "-EAGAIN",
			    k, again, tried);
		/* The other stripe is not held: an id homed there goes in (unless 4 in a row were not). */
		cr_assert(ok >= 1 || again >= 4, "k=%ld: %d refused, %d inserted", k, again, ok);
		cr_assert_geq(lv_writer_eagain(r) - eagain0, (uint64_t)again,
			      "stats.writer_eagain did not count the refused inserts");
		/*
		 * Updates take their id's stripe lock too: bounded like inserts,
		 * -EAGAIN only when the id shares the stopped holder's stripe.
		 */
		uint64_t tu = t_now_ms();
		int urc = connreg_update_transport(r, id, t_id(id, 9, 0), 2);
		cr_assert(urc == 0 || urc == -EAGAIN, "update: %d", urc);
		cr_assert_lt(t_now_ms() - tu, 3000u, "an update waited %llu ms",
			     (unsigned long long)(t_now_ms() - tu));

		/* Once the inserter is gone, the refused ids go in. */
		kill(ins, SIGKILL);
		kill(ins, SIGCONT);
		cr_assert_eq(t_wait(ins, 10000), T_WAIT_SIGNALED + SIGKILL);
		for (int i = 0; i < tried; i++) {
			if (sh->rc[i] != -EAGAIN)
				continue;
			size_t n = t_id(id, 8, (uint64_t)i);
			int rc = connreg_register(r, id, n, 1);
			connreg_stats_t st = { .size = sizeof st };

			connreg_stats(r, &st);
			cr_assert_eq(rc, 0,
				     "register of probe id %d after the inserter died: %d (%s); "
				     "stats: live %" PRIu64 " of capacity %" PRIu64,
				     i, rc, connreg_strerror(rc), st.live, st.capacity);
			cr_assert_eq(connreg_unregister(r, id, n), 0);
		}
		break;
	}
	lv_assert_sound(r);
	connreg_close(r);
}

/* ------------------------------------------------------------------ */
/* 6. fork while another thread is inside connreg_open                   */
/* ------------------------------------------------------------------ */

/* Forker processes, each a fresh pid (fork is slow under ASan: fewer there). */
#if defined(__SANITIZE_ADDRESS__)
#define LV_FORKERS 40
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LV_FORKERS 40
#endif
#endif
#ifndef LV_FORKERS
#define LV_FORKERS 120
#endif
#define LV_DELAYS 40      /* forker j forks first (j % LV_DELAYS) * 2 us into its open loop */
#define LV_FORKS 4        /* children per forker */
#define LV_CHILD_MS 5000  /* a child that takes longer hung */

struct lv_fork_sh {
	t_report_t rep;
	const char *name;
	int j;                   /* forker index */
	atomic_int go, stop;
	atomic_ullong opens;
};

static int lv_fork_child(void *p)
{
	struct lv_fork_sh *sh = p;
	connreg_t *r = NULL;
	uint8_t id[T_ID_LEN];
	uint64_t v = 0;
	size_t n = t_id(id, 10, (uint64_t)getpid());
	int rc = connreg_open(sh->name, &r);

	if (rc != 0)
		return 20;
	if (connreg_register(r, id, n, (uint64_t)getpid()) != 0)
		return 21;
	if (connreg_get_transport(r, id, n, &v) != 0 || v != (uint64_t)getpid())
		return 22;
	connreg_unregister(r, id, n);
	connreg_close(r);
	return 0;
}

static void *lv_open_loop(void *p)
{
	struct lv_fork_sh *sh = p;

	atomic_store(&sh->go, 1);
	while (!atomic_load(&sh->stop)) {
		connreg_t *r = NULL;

		if (connreg_open(sh->name, &r) == 0) {
			atomic_fetch_add(&sh->opens, 1);
			connreg_close(r);
		}
	}
	return NULL;
}

static void lv_spin_us(unsigned us)
{
	uint64_t end = t_now_ns() + (uint64_t)us * 1000u;

	while (t_now_ns() < end)
		;
}

/*
 * Forker: a fresh process (so its first connreg_open does the full
 * per-process set-up), one thread opening and closing in a loop, the main
 * thread forking LV_FORKS children, the first one (j % LV_DELAYS) * 2 us
 * after the loop began (about where its first open holds the library's
 * process-local set-up lock, in the current code). Each child must open,
 * register and look up within LV_CHILD_MS.
 */
static int lv_forker(void *p)
{
	struct lv_fork_sh *sh = p;
	pthread_t th;
	int worst = 0;

	atomic_store(&sh->go, 0);
	atomic_store(&sh->stop, 0);
	if (pthread_create(&th, NULL, lv_open_loop, sh) != 0)
		return 30;
	while (!atomic_load(&sh->go))
		;
	lv_spin_us((unsigned)(sh->j % LV_DELAYS) * 2u);
	for (int i = 0; i < LV_FORKS; i++) {
		int st = t_wait(t_fork(lv_fork_child, sh), LV_CHILD_MS);

		if (st != 0) {
			t_report_fail(&sh->rep, __LINE__,
				      "forker %d (first fork %d us after the open loop began), fork %d: "
				      "child status %d%s",
				      sh->j, (sh->j % LV_DELAYS) * 2, i, st,
				      st == T_WAIT_TIMEOUT ? " (hung: killed after 5 s)" : "");
			worst = 1;
			break;
		}
	}
	atomic_store(&sh->stop, 1);
	pthread_join(th, NULL);
	return worst;
}

Test(liveness, fork_while_another_thread_opens_never_hangs_the_child)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(64, 0, 0);
	connreg_t *r = NULL;
	struct lv_fork_sh *sh = t_shared(sizeof *sh);

	cr_assert_not_null(sh);
	t_name(name, "lvatfork");
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	sh->name = name;
	for (int j = 0; j < LV_FORKERS; j++) {
		sh->j = j;
		int st = t_wait(t_fork(lv_forker, sh), 4 * LV_CHILD_MS);

		T_ASSERT_REPORT_OK(&sh->rep);
		cr_assert_eq(st, 0, "forker %d: status %d", j, st);
	}
	cr_assert_gt(atomic_load(&sh->opens), (unsigned long long)LV_FORKERS,
		     "the open loops ran only %llu times",
		     (unsigned long long)atomic_load(&sh->opens));
	lv_assert_sound(r);
	connreg_close(r);
}
