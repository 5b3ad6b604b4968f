/*
 * connreg_reap on registries created with CONNREG_TRANSPORT_IS_PID: it
 * removes exactly the ids whose transport process is gone, never one whose
 * process is alive (not even while that process keeps re-registering), and
 * is refused on registries without the flag.
 */
#include "ext_common.h"

TestSuite(reap, .fini = t_cleanup_names, .timeout = 60);

/* A pid that no process has: above any possible pid_max (2^22). */
#define NEVER_PID 0x7ffffff0u

static uint64_t reap_ok(connreg_t *r)
{
	uint64_t removed = 0xdeadbeef;
	int rc = connreg_reap(r, &removed);
	cr_assert_eq(rc, 0, "connreg_reap = %d (%s)", rc, connreg_strerror(rc));
	return removed;
}

Test(reap, registry_without_pid_flag_returns_EOPNOTSUPP)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "reap-noflag", 16, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "dead", 4, NEVER_PID), 0);
	uint64_t removed = 77;
	cr_assert_eq(connreg_reap(r, &removed), -EOPNOTSUPP);
	cr_assert_eq(connreg_reap(r, NULL), -EOPNOTSUPP);
	x_expect_value(r, "dead", 4, NEVER_PID);
	cr_assert_eq(connreg_reap(NULL, &removed), -EINVAL);
	connreg_close(r);
}

Test(reap, empty_registry_and_live_transports_remove_nothing)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "reap-none", 64, 0, 0, CONNREG_TRANSPORT_IS_PID);
	cr_assert_eq(reap_ok(r), 0);
	uint64_t me = (uint64_t)getpid();
	cr_assert_eq(connreg_register(r, "me", 2, me), 0);
	cr_assert_eq(connreg_register(r, "me-hi", 5, (0xabcdull << 32) | me), 0);
	cr_assert_eq(connreg_register(r, "parent", 6, (uint64_t)getppid()), 0);
	cr_assert_eq(connreg_register(r, "init", 4, 1), 0);
	cr_assert_eq(reap_ok(r), 0);
	x_expect_value(r, "me", 2, me);
	x_expect_value(r, "me-hi", 5, (0xabcdull << 32) | me);
	x_expect_value(r, "parent", 6, (uint64_t)getppid());
	x_expect_value(r, "init", 4, 1);
	cr_assert_eq(connreg_reap(r, NULL), 0, "removed may be NULL");
	connreg_close(r);
}

Test(reap, transport_of_a_pid_that_never_existed_is_reaped)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "reap-never", 64, 0, 0, CONNREG_TRANSPORT_IS_PID);
	uint64_t me = (uint64_t)getpid();
	cr_assert_eq(connreg_register(r, "never", 5, NEVER_PID), 0);
	cr_assert_eq(connreg_register(r, "never-hi", 8, (0x1234ull << 32) | NEVER_PID), 0);
	cr_assert_eq(connreg_register(r, "alive", 5, me), 0);
	cr_assert_eq(reap_ok(r), 2);
	x_expect_absent(r, "never", 5);
	x_expect_absent(r, "never-hi", 8);
	x_expect_value(r, "alive", 5, me);
	cr_assert_eq(reap_ok(r), 0, "second reap found more");
	/* removed may be NULL when there is something to remove */
	cr_assert_eq(connreg_register(r, "never", 5, NEVER_PID), 0);
	cr_assert_eq(connreg_reap(r, NULL), 0);
	x_expect_absent(r, "never", 5);
	connreg_stats_t st = { .size = sizeof(st) };
	cr_assert_eq(connreg_stats(r, &st), 0);
	cr_assert_eq(st.live, 1);
	X_ASSERT_CHECK_CLEAN(r);
	connreg_close(r);
}

/* ------------------------------------------------------------------ */
/* transports that are child processes                                 */
/* ------------------------------------------------------------------ */

#define RC_CHILDREN 8
#define RC_IDS 3 /* ids per child */

enum fate { FATE_LIVE, FATE_KILL, FATE_EXIT_CLOSED, FATE_EXIT_UNCLOSED };

struct tr_args {
	const char *name;
	int idx;
	int report_fd; /* write end: one byte once registered */
	int hold_fd;   /* read end: EOF or a byte means "exit" */
	int close_first;
};

static size_t tr_id(char *buf, int child, int k)
{
	return (size_t)snprintf(buf, 64, "transport-%d-conn-%d", child, k);
}

static int transport_child(void *p)
{
	struct tr_args *a = p;
	connreg_t *r = NULL;
	if (connreg_open(a->name, &r) != 0)
		return 10;
	uint64_t me = (uint64_t)getpid();
	for (int k = 0; k < RC_IDS; k++) {
		char id[64];
		/* odd ids carry extra high bits: only the low 32 are the pid */
		uint64_t v = me | ((uint64_t)(k & 1) << 40);
		if (connreg_register(r, id, tr_id(id, a->idx, k), v) != 0)
			return 11;
	}
	char c = 'r';
	if (t_write_all(a->report_fd, &c, 1) != 0)
		return 12;
	x_pipe_wait(a->hold_fd);
	if (a->close_first)
		connreg_close(r);
	return 0;
}

struct tr_child {
	pid_t pid;
	int hold_w;
	enum fate fate;
};

static void start_transports(const char *name, struct tr_child *ch, const enum fate *fates,
			     int n)
{
	int rep[2];
	cr_assert_eq(pipe(rep), 0);
	for (int i = 0; i < n; i++) {
		int hold[2];
		cr_assert_eq(pipe(hold), 0);
		struct tr_args a = { name, i, rep[1], hold[0], fates[i] == FATE_EXIT_CLOSED };
		ch[i].fate = fates[i];
		ch[i].pid = t_fork(transport_child, &a);
		cr_assert_gt(ch[i].pid, 0);
		close(hold[0]);
		ch[i].hold_w = hold[1];
	}
	close(rep[1]);
	for (int i = 0; i < n; i++) {
		char c;
		cr_assert_eq(t_read_all(rep[0], &c, 1), 0, "a transport child failed to register");
	}
	close(rep[0]);
}

/*
 * Tell a child to exit: a byte, not EOF (later children inherited the
 * write ends of earlier children's hold pipes).
 */
static void release_child(struct tr_child *c)
{
	char x = 'x';
	cr_assert_eq(t_write_all(c->hold_w, &x, 1), 0);
	close(c->hold_w);
}

/* End the children whose fate is to die, and reap (waitpid) them. */
static int end_doomed(struct tr_child *ch, int n)
{
	int dead = 0;
	for (int i = 0; i < n; i++) {
		switch (ch[i].fate) {
		case FATE_KILL:
			kill(ch[i].pid, SIGKILL);
			cr_assert_eq(t_wait(ch[i].pid, 10000), T_WAIT_SIGNALED + SIGKILL);
			close(ch[i].hold_w);
			dead++;
			break;
		case FATE_EXIT_CLOSED:
		case FATE_EXIT_UNCLOSED:
			release_child(&ch[i]);
			cr_assert_eq(t_wait(ch[i].pid, 10000), 0, "transport child %d failed", i);
			dead++;
			break;
		default:
			break;
		}
	}
	return dead;
}

static void end_survivors(struct tr_child *ch, int n)
{
	for (int i = 0; i < n; i++)
		if (ch[i].fate == FATE_LIVE) {
			release_child(&ch[i]);
			cr_assert_eq(t_wait(ch[i].pid, 10000), 0, "live transport child %d failed", i);
		}
}

Test(reap, removes_exactly_the_ids_of_dead_transport_processes)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "reap-kids", 256, 0, 0, CONNREG_TRANSPORT_IS_PID);
	const enum fate fates[RC_CHILDREN] = { FATE_KILL,	  FATE_LIVE, FATE_EXIT_CLOSED,
					       FATE_LIVE,	  FATE_KILL, FATE_EXIT_UNCLOSED,
					       FATE_EXIT_CLOSED, FATE_LIVE };
	struct tr_child ch[RC_CHILDREN];
	start_transports(name, ch, fates, RC_CHILDREN);
	/* the parent's own ids, alive throughout */
	uint64_t me = (uint64_t)getpid();
	cr_assert_eq(connreg_register(r, "parent-0", 8, me), 0);
	cr_assert_eq(connreg_register(r, "parent-1", 8, me | (7ull << 33)), 0);

	/* nobody has died yet */
	cr_assert_eq(reap_ok(r), 0, "reap removed ids while every transport was alive");

	int dead = end_doomed(ch, RC_CHILDREN);
	uint64_t removed = reap_ok(r);
	cr_assert_eq(removed, (uint64_t)dead * RC_IDS, "reap removed %" PRIu64 ", want %d (%d dead "
		     "transports x %d ids)", removed, dead * RC_IDS, dead, RC_IDS);
	for (int i = 0; i < RC_CHILDREN; i++) {
		for (int k = 0; k < RC_IDS; k++) {
			char id[64];
			size_t len = tr_id(id, i, k);
			if (ch[i].fate == FATE_LIVE)
				x_expect_value(r, id, len,
					       (uint64_t)ch[i].pid | ((uint64_t)(k & 1) << 40));
			else
				x_expect_absent(r, id, len);
		}
	}
	x_expect_value(r, "parent-0", 8, me);
	x_expect_value(r, "parent-1", 8, me | (7ull << 33));
	cr_assert_eq(reap_ok(r), 0, "a second reap removed more");
	connreg_stats_t st = { .size = sizeof(st) };
	cr_assert_eq(connreg_stats(r, &st), 0);
	cr_assert_eq(st.live, (uint64_t)(RC_CHILDREN - dead) * RC_IDS + 2);

	/* now the survivors go too */
	end_survivors(ch, RC_CHILDREN);
	removed = reap_ok(r);
	cr_assert_eq(removed, (uint64_t)(RC_CHILDREN - dead) * RC_IDS);
	x_expect_value(r, "parent-0", 8, me);
	cr_assert_eq(connreg_stats(r, &st), 0);
	cr_assert_eq(st.live, 2);
	connreg_close(r);
}

/* Reap from another process (not the one that created the registry). */
static int reaper_child(void *p)
{
	const char *name = p;
	connreg_t *r = NULL;
	if (connreg_open(name, &r) != 0)
		return 10;
	uint64_t removed = 0;
	int rc = connreg_reap(r, &removed);
	connreg_close(r);
	if (rc != 0)
		return 11;
	return removed > 200 ? 200 : (int)removed;
}

Test(reap, reap_from_another_process_sees_the_same_dead_transports)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "reap-other", 64, 0, 0, CONNREG_TRANSPORT_IS_PID);
	const enum fate fates[3] = { FATE_KILL, FATE_LIVE, FATE_EXIT_UNCLOSED };
	struct tr_child ch[3];
	start_transports(name, ch, fates, 3);
	int dead = end_doomed(ch, 3);
	pid_t pid = t_fork(reaper_child, (void *)name);
	int st = t_wait(pid, 10000);
	cr_assert_eq(st, dead * RC_IDS, "reaper process removed %d, want %d", st, dead * RC_IDS);
	for (int k = 0; k < RC_IDS; k++) {
		char id[64];
		x_expect_absent(r, id, tr_id(id, 0, k));
		x_expect_value(r, id, tr_id(id, 1, k), (uint64_t)ch[1].pid | ((uint64_t)(k & 1) << 40));
	}
	end_survivors(ch, 3);
	connreg_close(r);
}

/* ------------------------------------------------------------------ */
/* reap racing a live process that keeps re-registering                */
/* ------------------------------------------------------------------ */

#define RR_IDS 64
#define RR_MS 800

struct rr_shared {
	t_report_t rep;
	atomic_uint ready;
	atomic_int stop;
	uint64_t ops;
};

struct rr_args {
	const char *name;
	struct rr_shared *sh;
};

static int rereg_child(void *p)
{
	struct rr_args *a = p;
	struct rr_shared *sh = a->sh;
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(&sh->rep, rc == 0, return 1, "open: %d", rc);
	T_CHECK(&sh->rep, t_barrier(&sh->ready, 2, 10000) == 0, return 1, "barrier");
	uint64_t me = (uint64_t)getpid(), seed = 4242, n = 0, hard_end = t_now_ms() + 20000;
	while (!atomic_load(&sh->stop) && t_now_ms() < hard_end) {
		uint64_t x = t_rand(&seed);
		uint32_t k = (uint32_t)(x % RR_IDS);
		char id[32];
		size_t len = t_sid(id, sizeof id, "mine-", k);
		uint64_t v = me | ((n & 0xffffff) << 32);
		if ((x >> 40) & 1) {
			/* unregister + register: a fresh entry for the same id each time */
			rc = connreg_unregister(r, id, len);
			T_CHECK(&sh->rep, rc == 0, return 1, "unregister: %d", rc);
		}
		rc = connreg_register(r, id, len, v);
		T_CHECK(&sh->rep, rc == 0, return 1, "register: %d (%s)", rc, connreg_strerror(rc));
		/* nobody else touches it: a live pid must never be reaped */
		uint64_t got = 0;
		rc = connreg_get_transport(r, id, len, &got);
		T_CHECK(&sh->rep, rc == 0, return 1,
			"id %u, just registered with live pid %" PRIu64 ", is gone: %d (reaped?)", k,
			me, rc);
		T_CHECK(&sh->rep, got == v, return 1, "id %u: %#" PRIx64 ", want %#" PRIx64, k, got, v);
		n++;
	}
	sh->ops = n;
	/* every id is still there at the end */
	for (uint32_t k = 0; k < RR_IDS; k++) {
		char id[32];
		uint64_t got = 0;
		rc = connreg_get_transport(r, id, t_sid(id, sizeof id, "mine-", k), &got);
		T_CHECK(&sh->rep, rc == 0 && (uint32_t)got == (uint32_t)me, return 1,
			"final: id %u rc %d", k, rc);
	}
	connreg_close(r);
	return 0;
}

Test(reap, concurrent_reap_never_removes_ids_of_a_live_reregistering_process)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "reap-race", 2048, 0, 0, CONNREG_TRANSPORT_IS_PID);
	/* ids of the live child, registered before the race too */
	struct rr_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	struct rr_args a = { name, sh };
	pid_t pid = t_fork(rereg_child, &a);
	cr_assert_gt(pid, 0);
	cr_assert_eq(t_barrier(&sh->ready, 2, 10000), 0);

	/* plant dead ids (pids that never existed) while reaping repeatedly */
	uint64_t planted = 0, removed_total = 0, reaps = 0;
	uint64_t end = t_now_ms() + RR_MS;
	while (t_now_ms() < end) {
		for (int i = 0; i < 20; i++) {
			char id[32];
			size_t len = t_sid(id, sizeof id, "dead-", planted);
			uint64_t v = (uint64_t)(NEVER_PID - (planted % 1000)) | (planted << 32);
			int rc = connreg_register(r, id, len, v);
			cr_assert_eq(rc, 0, "plant: %d (%s)", rc, connreg_strerror(rc));
			planted++;
		}
		removed_total += reap_ok(r);
		reaps++;
	}
	removed_total += reap_ok(r);
	atomic_store(&sh->stop, 1);
	X_ASSERT_CHILD_OK(pid, 30000, &sh->rep);
	T_ASSERT_REPORT_OK(&sh->rep);
	cr_assert_eq(removed_total, planted,
		     "reaps removed %" PRIu64 " ids, but only %" PRIu64 " had dead transports",
		     removed_total, planted);
	cr_assert_gt(sh->ops, 100u, "the live child made only %" PRIu64 " registrations", sh->ops);
	cr_log_info("reaps %" PRIu64 ", planted %" PRIu64 ", child ops %" PRIu64, reaps, planted,
		    sh->ops);
	/* the child has exited now: its ids go */
	uint64_t removed = reap_ok(r);
	cr_assert_eq(removed, RR_IDS, "after the child exited reap removed %" PRIu64 ", want %d",
		     removed, RR_IDS);
	connreg_stats_t st = { .size = sizeof(st) };
	cr_assert_eq(connreg_stats(r, &st), 0);
	cr_assert_eq(st.live, 0);
	X_ASSERT_CHECK_CLEAN(r);
	connreg_close(r);
}

/*
 * Passes over RR_IDS ids: register each with a dead pid (a distinct one, so
 * reap has to ask the kernel about each), then take each over with this
 * live process's pid, then verify every id. Reap may remove the dead
 * registrations, but a reap that judged one dead must not remove the live
 * registration that replaced it in the meantime.
 */
static int takeover_child(void *p)
{
	struct rr_args *a = p;
	struct rr_shared *sh = a->sh;
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(&sh->rep, rc == 0, return 1, "open: %d", rc);
	T_CHECK(&sh->rep, t_barrier(&sh->ready, 2, 10000) == 0, return 1, "barrier");
	uint64_t me = (uint64_t)getpid(), n = 0, hard_end = t_now_ms() + 20000;
	char id[RR_IDS][32];
	size_t len[RR_IDS];
	for (uint32_t k = 0; k < RR_IDS; k++)
		len[k] = t_sid(id[k], sizeof id[k], "mine-", k);
	while (!atomic_load(&sh->stop) && t_now_ms() < hard_end) {
		uint64_t tag = (n & 0xffffff) << 32;
		for (uint32_t k = 0; k < RR_IDS; k++) {
			rc = connreg_register(r, id[k], len[k], (NEVER_PID - k) | tag);
			T_CHECK(&sh->rep, rc == 0, return 1, "register dead: %d (%s)", rc,
				connreg_strerror(rc));
		}
		for (uint32_t k = 0; k < RR_IDS; k++) {
			rc = connreg_register(r, id[k], len[k], me | tag);
			T_CHECK(&sh->rep, rc == 0, return 1, "take over: %d (%s)", rc,
				connreg_strerror(rc));
		}
		for (uint32_t k = 0; k < RR_IDS; k++) {
			uint64_t got = 0;
			rc = connreg_get_transport(r, id[k], len[k], &got);
			T_CHECK(&sh->rep, rc == 0, return 1,
				"pass %" PRIu64 ": id %u, taken over by live pid %" PRIu64
				", is gone: %d (reaped?)", n, k, me, rc);
			T_CHECK(&sh->rep, got == (me | tag), return 1, "id %u: %#" PRIx64, k, got);
		}
		n++;
	}
	sh->ops = n;
	connreg_close(r);
	return 0;
}

Test(reap, reap_racing_a_live_takeover_of_dead_ids_never_removes_the_live_registration)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "reap-takeover", 256, 0, 0, CONNREG_TRANSPORT_IS_PID);
	struct rr_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	struct rr_args a = { name, sh };
	pid_t pid = t_fork(takeover_child, &a);
	cr_assert_gt(pid, 0);
	cr_assert_eq(t_barrier(&sh->ready, 2, 10000), 0);
	uint64_t removed_total = 0, reaps = 0, end = t_now_ms() + RR_MS;
	while (t_now_ms() < end) {
		removed_total += reap_ok(r);
		reaps++;
	}
	atomic_store(&sh->stop, 1);
	X_ASSERT_CHILD_OK(pid, 30000, &sh->rep);
	T_ASSERT_REPORT_OK(&sh->rep);
	cr_assert_gt(sh->ops, 20u, "the live child made only %" PRIu64 " passes", sh->ops);
	cr_log_info("reaps %" PRIu64 ", dead registrations reaped %" PRIu64 ", passes %" PRIu64,
		    reaps, removed_total, sh->ops);
	X_ASSERT_CHECK_CLEAN(r);
	connreg_close(r);
}

/* Several reapers at once: each dead id is removed exactly once in total. */
#define MR_P 3
#define MR_DEAD 1500

struct mr_shared {
	atomic_uint ready;
	uint64_t removed[MR_P];
	int rc[MR_P];
};

struct mr_args {
	const char *name;
	struct mr_shared *sh;
	int idx;
};

static int multi_reaper(void *p)
{
	struct mr_args *a = p;
	connreg_t *r = NULL;
	if (connreg_open(a->name, &r) != 0)
		return 10;
	if (t_barrier(&a->sh->ready, MR_P, 10000) != 0)
		return 11;
	a->sh->rc[a->idx] = connreg_reap(r, &a->sh->removed[a->idx]);
	connreg_close(r);
	return 0;
}

Test(reap, concurrent_reapers_remove_each_dead_id_once)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "reap-multi", 2 * MR_DEAD, 0, 0, CONNREG_TRANSPORT_IS_PID);
	uint64_t me = (uint64_t)getpid();
	for (uint64_t i = 0; i < MR_DEAD; i++) {
		char id[32];
		cr_assert_eq(connreg_register(r, id, t_sid(id, sizeof id, "dead-", i), NEVER_PID - i % 7), 0);
		cr_assert_eq(connreg_register(r, id, t_sid(id, sizeof id, "live-", i), me), 0);
	}
	struct mr_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	struct mr_args args[MR_P];
	pid_t pids[MR_P];
	for (int i = 0; i < MR_P; i++) {
		args[i] = (struct mr_args){ name, sh, i };
		pids[i] = t_fork(multi_reaper, &args[i]);
	}
	uint64_t total = 0;
	for (int i = 0; i < MR_P; i++) {
		cr_assert_eq(t_wait(pids[i], 20000), 0, "reaper %d", i);
		cr_assert_eq(sh->rc[i], 0, "reaper %d: %d", i, sh->rc[i]);
		total += sh->removed[i];
	}
	cr_assert_eq(total, MR_DEAD, "reapers removed %" PRIu64 " in total, want %d", total, MR_DEAD);
	for (uint64_t i = 0; i < MR_DEAD; i++) {
		char id[32];
		x_expect_absent(r, id, t_sid(id, sizeof id, "dead-", i));
		x_expect_value(r, id, t_sid(id, sizeof id, "live-", i), me);
	}
	X_ASSERT_CHECK_CLEAN(r);
	connreg_close(r);
}

static int reap_echild_child(void *arg)
{
	uint64_t removed;
	return connreg_reap(arg, &removed) == -ECHILD ? 0 : 1;
}

Test(reap, parent_handle_in_forked_child_returns_ECHILD)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "reap-echild", 16, 0, 0, CONNREG_TRANSPORT_IS_PID);
	pid_t pid = t_fork(reap_echild_child, r);
	cr_assert_eq(t_wait(pid, 10000), 0);
	connreg_close(r);
}
