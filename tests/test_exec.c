/*
 * test_exec.c: execve keeps the pid and the start time, but ends every
 * thread of the image it replaces (issue #9). The reader slots those
 * threads held must not stay taken, and a thread caught inside a lookup
 * at the exec must not hold back grace periods forever.
 *
 * The daemon is tests/exec_helper.c, a real program that re-executes
 * itself (see its header); its path comes from $CONNREG_EXEC_HELPER (set
 * by ctest) or the CONNREG_EXEC_HELPER_PATH compile definition. After its
 * exec chain, while its last image is still running, a fresh process
 * opens the registry by name and must be able to register, look up and
 * re-register at churn without a single -EAGAIN.
 */
#include "common.h"

#include <poll.h>

TestSuite(exec, .fini = t_cleanup_names, .timeout = 60);

#define EX_IDS 32
#define EX_CHURN_MS 2000

static const char *ex_helper_path(void)
{
	const char *p = getenv("CONNREG_EXEC_HELPER");

	if (p && *p)
		return p;
#ifdef CONNREG_EXEC_HELPER_PATH
	return CONNREG_EXEC_HELPER_PATH;
#else
	return NULL;
#endif
}

struct ex_daemon {
	pid_t pid;
	int to_fd;   /* its stdin: closing it lets the last image exit */
	int from_fd; /* its stdout */
	int rc;      /* the last image's lookup of the probe id */
	uint64_t value;
	long pinned; /* images whose looping thread was caught inside a lookup */
};

/* Start the helper; return once its last image reported "ready". */
static void ex_daemon_start(struct ex_daemon *d, const char *name, int total)
{
	const char *helper = ex_helper_path();
	int in[2], out[2];
	char c_total[16];

	cr_assert_not_null(helper, "no exec_helper: set CONNREG_EXEC_HELPER");
	cr_assert_eq(access(helper, X_OK), 0, "%s: %s", helper, strerror(errno));
	cr_assert_eq(pipe(in), 0);
	cr_assert_eq(pipe(out), 0);
	snprintf(c_total, sizeof c_total, "%d", total);
	fflush(stdout);
	fflush(stderr);
	d->pid = fork();
	cr_assert_geq(d->pid, 0);
	if (d->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		execl(helper, "exec_helper", name, "0", c_total, "0", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	d->to_fd = in[1];
	d->from_fd = out[0];

	char line[256];
	size_t n = 0;
	uint64_t deadline = t_now_ms() + 20000;
	while (n < sizeof line - 1 && (n == 0 || line[n - 1] != '\n')) {
		struct pollfd pfd = { d->from_fd, POLLIN, 0 };
		int left = (int)(deadline - t_now_ms());

		cr_assert_gt(left, 0, "the exec chain did not report ready within 20 s");
		if (poll(&pfd, 1, left) <= 0)
			continue;
		ssize_t k = read(d->from_fd, line + n, 1);
		cr_assert_eq(k, 1, "the exec helper ended without a report (status %d)",
			     t_wait(d->pid, 1000));
		n++;
	}
	line[n] = '\0';
	cr_assert_eq(sscanf(line, "ready %d %" SCNu64 " %ld", &d->rc, &d->value, &d->pinned), 3,
		     "exec helper: %s", line);
}

static int ex_daemon_stop(struct ex_daemon *d)
{
	close(d->to_fd);
	int st = t_wait(d->pid, 10000);
	close(d->from_fd);
	return st;
}

struct ex_sh {
	t_report_t rep;
	const char *name;
	uint64_t ops;
	uint64_t first_eagain_ms; /* into the churn; 0: none */
};

/*
 * A fresh process: register EX_IDS new ids and look them up, then remove
 * and re-register them at churn for EX_CHURN_MS. Every call must succeed on its first try.
 */
static int ex_fresh(void *p)
{
	struct ex_sh *sh = p;
	connreg_t *r = NULL;
	uint8_t id[T_ID_LEN];
	uint64_t val[EX_IDS], v = 0, seed = 99;
	int rc = connreg_open(sh->name, &r);

	T_CHECK(&sh->rep, rc == 0, return 1, "open: %d", rc);
	for (uint32_t k = 0; k < EX_IDS; k++) {
		size_t n = t_id(id, 0x60, k);

		val[k] = t_enc(1, k, 1);
		rc = connreg_register(r, id, n, val[k]);
		T_CHECK(&sh->rep, rc == 0, return 1, "register of new id %u: %d (%s)", k, rc,
			connreg_strerror(rc));
		rc = connreg_get_transport(r, id, n, &v);
		T_CHECK(&sh->rep, rc == 0 && v == val[k], return 1,
			"lookup of id %u: rc %d, value %#" PRIx64, k, rc, v);
	}
	uint64_t t0 = t_now_ms();
	for (uint32_t seq = 2; t_now_ms() - t0 < EX_CHURN_MS; seq++) {
		for (int b = 0; b < 256; b++) {
			uint32_t k = (uint32_t)(t_rand(&seed) % EX_IDS);
			size_t n = t_id(id, 0x60, k);
			uint64_t nv = t_enc(1, k, seq);

			/*
			 * Remove and re-register: each new record needs a
			 * position, and a removed one is reused only after a
			 * grace period, so the churn cannot go on without them.
			 */
			rc = connreg_unregister(r, id, n);
			T_CHECK(&sh->rep, rc == 0, return 1, "unregister: %d", rc);
			rc = connreg_register(r, id, n, nv);
			if (rc == -EAGAIN)
				sh->first_eagain_ms = t_now_ms() - t0 + 1;
			T_CHECK(&sh->rep, rc == 0, return 1,
				"re-registration %" PRIu64 " (%llu ms into the churn): %d (%s)", sh->ops,
				(unsigned long long)(t_now_ms() - t0), rc, connreg_strerror(rc));
			val[k] = nv;
			sh->ops++;
			rc = connreg_get_transport(r, id, n, &v);
			T_CHECK(&sh->rep, rc == 0 && v == val[k], return 1,
				"lookup of id %u: rc %d, value %#" PRIx64 ", expected %#" PRIx64, k, rc,
				v, val[k]);
		}
	}
	connreg_close(r);
	return 0;
}

static connreg_stats_t ex_stats(connreg_t *r)
{
	connreg_stats_t st;

	memset(&st, 0, sizeof st);
	st.size = sizeof st;
	cr_assert_eq(connreg_stats(r, &st), 0);
	return st;
}

struct ex_alive {
	unsigned alive, claimed;
};

static int ex_alive_fn(const connreg_reader_t *rd, void *arg)
{
	struct ex_alive *a = arg;

	a->claimed++;
	if (rd->alive)
		a->alive++;
	return 0;
}

struct ex_problems {
	char text[1024];
	size_t len;
};

static void ex_problem(const char *problem, void *arg)
{
	struct ex_problems *p = arg;
	int n = snprintf(p->text + p->len, sizeof p->text - p->len, "%s; ", problem);

	if (n > 0 && p->len + (size_t)n < sizeof p->text)
		p->len += (size_t)n;
}

/*
 * The daemon re-executes itself `total` times, then stays; a fresh process
 * must then work without -EAGAIN, and the registry must be sound.
 */
static void ex_run(uint32_t max_threads, int total, long min_pinned)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(64, 0, max_threads);
	connreg_t *r = NULL;
	uint8_t id[T_ID_LEN];
	struct ex_sh *sh = t_shared(sizeof *sh);
	struct ex_daemon d;

	cr_assert_not_null(sh);
	t_name(name, "exec");
	sh->name = name;
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	/* This thread takes its slot first; the probe id is what the daemon looks up. */
	cr_assert_eq(connreg_register(r, id, t_id(id, 0x50, 1), 4242), 0);

	ex_daemon_start(&d, name, total);
	cr_log_info("%d execs, %ld with a thread caught inside a lookup", total, d.pinned);
	cr_assert_geq(d.pinned, min_pinned,
		      "only %ld of %d images caught their looping thread inside a lookup",
		      d.pinned, total);

	connreg_stats_t st0 = ex_stats(r);
	int fst = t_wait(t_fork(ex_fresh, sh), 20000);
	connreg_stats_t st1 = ex_stats(r);

	T_ASSERT_REPORT_OK(&sh->rep);
	cr_assert_eq(fst, 0, "fresh process: status %d", fst);
	cr_assert_eq(sh->first_eagain_ms, 0u, "-EAGAIN %llu ms into the churn",
		     (unsigned long long)sh->first_eagain_ms);
	/* Enough re-registrations that every position was reclaimed several times over. */
	cr_assert_geq(sh->ops, 3 * st0.entries,
		      "only %" PRIu64 " re-registrations in %d ms (%" PRIu64 " positions)", sh->ops,
		      EX_CHURN_MS, st0.entries);
	cr_assert_gt(st1.grace_periods, st0.grace_periods, "no grace period completed");
	cr_assert_eq(st1.writer_eagain, st0.writer_eagain, "stats.writer_eagain grew by %" PRIu64,
		     st1.writer_eagain - st0.writer_eagain);
	cr_assert_eq(d.rc, 0, "the daemon's last image: lookup of the probe id: %d (%s)", d.rc,
		     connreg_strerror(d.rc));
	cr_assert_eq(d.value, 4242u);

	struct ex_problems p = { "", 0 };
	int rc = connreg_check(r, ex_problem, &p);
	cr_assert_eq(rc, 0, "connreg_check: %d problem(s): %s", rc, p.text);
	/* Live threads now: this one and the daemon's main thread. */
	struct ex_alive a = { 0, 0 };
	cr_assert_eq(connreg_readers(r, ex_alive_fn, &a), 0);
	cr_assert_leq(a.alive, 2u,
		      "%u reader slots reported alive (of %u claimed) with only 2 live threads",
		      a.alive, a.claimed);

	cr_assert_eq(ex_daemon_stop(&d), 0, "the daemon's exit status");
	connreg_close(r);
}

/* More execs than reader slots: dead images' slots must come back. */
Test(exec, reexec_more_times_than_max_threads_leaves_no_slot_taken)
{
	ex_run(4, 12, 1);
}

/* One exec while another thread is inside a lookup: grace periods go on. */
Test(exec, exec_while_a_thread_is_inside_a_lookup_does_not_pin_grace_periods)
{
	ex_run(16, 1, 1);
}
