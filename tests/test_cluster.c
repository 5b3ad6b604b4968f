/*
 * connregd --cluster (issue #12, docs/cluster.md), for real: each test
 * starts its own redis-server on a unix socket in a temporary directory
 * (--port 0 --save '' --appendonly no) and three connregd processes with
 * three local registries and three views, as hosts A, B and C, and shows:
 *
 * - ids registered on A are in B's and C's views within 1 s, with A's host
 *   number and transport; an update replaces them; unregister removes them;
 *   the hosts registries name every host;
 * - an id registered on two hosts converges to the later write on every
 *   host, and to the one left when the later one unregisters it;
 * - A SIGSTOPped past its lease: its ids leave B's and C's views within
 *   lease + 1 s; SIGCONT: they come back;
 * - A SIGKILLed: the same, its host number is freed (and reused after the
 *   counter wraps), and A started again re-asserts its ids;
 * - A stopped cleanly (SIGTERM) and started again within its lease takes
 *   the lease over: its ids never leave the other views;
 * - redis-server killed and restarted empty: views keep their last state
 *   while it is down, and converge to the truth within 5 s after;
 * - the feed trimmed while B is stopped: B finds the gap, resyncs, converges;
 * - garbage records, garbage state entries, a forged record and a key of
 *   the wrong type are logged and skipped; nothing crashes and changes
 *   still propagate.
 *
 * Binaries: $CONNREGD (else connregd beside this test) and $REDIS_SERVER
 * (else redis-server on the PATH; the test is skipped without it).
 */
#include "common.h"

#include <dirent.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "../tools/connregd/cluster_view.h"

#if __has_include(<hiredis/hiredis.h>)
#include <hiredis/hiredis.h>
#define HAVE_HIREDIS 1
#endif

#ifndef HAVE_HIREDIS
Test(cluster, needs_hiredis)
{
	cr_skip_test("hiredis (libhiredis-dev) was not found when this test was built");
}
#else

static void cleanup(void);

TestSuite(cluster, .fini = cleanup);

#define NHOST	 3
#define LEASE_MS 1000
#define START_MS 5000

struct host {
	char id[8];
	char name[T_NAME_BUF];
	char view[T_NAME_BUF];
	char hosts[T_NAME_BUF + 8];
	char log[PATH_MAX];
	pid_t pid;
	connreg_t *reg;		/* its local registry */
	connreg_t *v;		/* its view */
	connreg_t *hv;		/* its hosts registry */
};

static struct {
	char dir[80];
	char sock[128];
	char url[160];
	pid_t redis;
	struct host h[NHOST];
} g;

/* ------------------------------------------------------------------ */
/* processes and cleanup                                               */
/* ------------------------------------------------------------------ */

static void kill_wait(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGCONT);
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
	}
	*pid = 0;
}

static void cleanup(void)
{
	for (int i = 0; i < NHOST; i++) {
		connreg_close(g.h[i].reg);
		connreg_close(g.h[i].v);
		connreg_close(g.h[i].hv);
		g.h[i].reg = g.h[i].v = g.h[i].hv = NULL;
		kill_wait(&g.h[i].pid);
	}
	kill_wait(&g.redis);
	t_cleanup_names();
	if (g.dir[0]) {
		t_rm_dir(g.dir);
		g.dir[0] = '\0';
	}
}

static const char *connregd_path(void)
{
	static char path[PATH_MAX + 32];

	return t_sibling_binary("CONNREGD", "connregd", path, sizeof(path));
}

static const char *redis_path(void)
{
	static char path[PATH_MAX];
	const char *e = getenv("REDIS_SERVER");
	const char *dirs[] = { "/usr/bin", "/usr/local/bin", "/usr/sbin", "/bin" };

	if (e && *e)
		return access(e, X_OK) == 0 ? e : NULL;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/redis-server", dirs[i]);
		if (access(path, X_OK) == 0)
			return path;
	}
	return NULL;
}

/* fork + exec with stdout/stderr to `log` (appended). */
static pid_t spawn(const char *log, const char *const argv[])
{
	pid_t parent = getpid(), pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int nul = open("/dev/null", O_RDWR);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || fd < 0 || nul < 0)
			_exit(127);
		dup2(nul, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		unsetenv("NOTIFY_SOCKET");
		unsetenv("WATCHDOG_USEC");
		unsetenv("JOURNAL_STREAM");
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static redisContext *redis_connect(void)
{
	struct timeval tv = { .tv_sec = 2 };
	redisContext *ctx = redisConnectUnixWithTimeout(g.sock, tv);

	if (ctx && !ctx->err && redisSetTimeout(ctx, tv) == REDIS_OK)
		return ctx;
	redisFree(ctx);
	return NULL;
}

/* Start (or restart, empty) redis-server on g.sock; wait until it answers PING. */
static void redis_start(void)
{
	const char *bin = redis_path();
	char log[PATH_MAX];
	uint64_t deadline = t_now_ms() + START_MS;

	cr_assert_not_null(bin);
	snprintf(log, sizeof(log), "%s/redis.log", g.dir);
	unlink(g.sock);
	const char *argv[] = { bin, "--port", "0", "--unixsocket", g.sock, "--unixsocketperm", "700",
			       "--save", "", "--appendonly", "no", "--dir", g.dir, "--daemonize", "no",
			       NULL };
	g.redis = spawn(log, argv);
	for (;;) {
		redisContext *ctx = redis_connect();
		redisReply *r = ctx ? redisCommand(ctx, "PING") : NULL;
		bool ok = r && r->type == REDIS_REPLY_STATUS;

		if (r)
			freeReplyObject(r);
		redisFree(ctx);
		if (ok)
			return;
		cr_assert(t_now_ms() < deadline, "redis-server did not answer on %s (see %s)", g.sock,
			  log);
		cr_assert_eq(waitpid(g.redis, NULL, WNOHANG), 0, "redis-server exited (see %s)", log);
		t_sleep_ms(10);
	}
}

/* One command to the test's Redis; the reply must not be an error. */
static void redis_do(const char *fmt, ...)
{
	redisContext *ctx = redis_connect();
	redisReply *r;
	va_list ap;

	cr_assert_not_null(ctx, "cannot connect to redis");
	va_start(ap, fmt);
	r = redisvCommand(ctx, fmt, ap);
	va_end(ap);
	cr_assert_not_null(r, "redis: %s", ctx->errstr);
	cr_assert_neq(r->type, REDIS_REPLY_ERROR, "redis %s: %s", fmt, r->str);
	freeReplyObject(r);
	redisFree(ctx);
}

/* A string reply (malloc'd), or NULL. */
static char *redis_str(const char *fmt, ...)
{
	redisContext *ctx = redis_connect();
	redisReply *r;
	char *out = NULL;
	va_list ap;

	cr_assert_not_null(ctx);
	va_start(ap, fmt);
	r = redisvCommand(ctx, fmt, ap);
	va_end(ap);
	if (r && r->type == REDIS_REPLY_STRING)
		out = strndup(r->str, r->len);
	if (r)
		freeReplyObject(r);
	redisFree(ctx);
	return out;
}

static char *host_log(int i)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = fopen(g.h[i].log, "r");
	FILE *m = open_memstream(&buf, &len);
	char chunk[4096];
	size_t k;

	cr_assert_not_null(m);
	while (f && (k = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, k, m);
	if (f)
		fclose(f);
	fclose(m);
	return buf;
}

static bool log_has(int i, const char *needle)
{
	char *log = host_log(i);
	bool r = strstr(log, needle) != NULL;

	free(log);
	return r;
}

static int count_in_log(int i, const char *needle)
{
	char *log = host_log(i), *p = log;
	int n = 0;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p += strlen(needle);
	}
	free(log);
	return n;
}

static bool alive(int i)
{
	return g.h[i].pid > 0 && waitpid(g.h[i].pid, NULL, WNOHANG) == 0;
}

/* Start host i's connregd; wait until it holds a lease and its view is synced. */
static void host_start(int i)
{
	struct host *h = &g.h[i];
	uint64_t deadline = t_now_ms() + START_MS;
	char cap[] = "4000", lease[16];

	snprintf(lease, sizeof(lease), "%d", LEASE_MS);
	const char *argv[] = { connregd_path(), "--name", h->name, "--capacity", cap, "--cluster",
			       g.url, "--host-id", h->id, "--cluster-view", h->view, "--lease-ms",
			       lease, "--check-interval-ms", "600000", NULL };
	int leases = count_in_log(i, "lease taken"), syncs = count_in_log(i, "view resynced");

	cr_assert(access(argv[0], X_OK) == 0, "connregd not found at %s (set CONNREGD)", argv[0]);
	h->pid = spawn(h->log, argv);
	while (count_in_log(i, "lease taken") == leases || count_in_log(i, "view resynced") == syncs) {
		char *log;

		if (alive(i) && t_now_ms() < deadline) {
			t_sleep_ms(5);
			continue;
		}
		log = host_log(i);
		cr_assert_fail("connregd %s did not start (alive %d); its log:\n%s", h->id, alive(i),
			       log);
	}
	if (!h->reg)
		cr_assert_eq(connreg_open(h->name, &h->reg), 0);
	if (!h->v)
		cr_assert_eq(connreg_open(h->view, &h->v), 0);
	if (!h->hv)
		cr_assert_eq(connreg_open(h->hosts, &h->hv), 0);
}

/* A temporary directory, redis-server, and the three hosts. */
static void cluster_up(void)
{
	if (!redis_path())
		cr_skip_test("redis-server is not installed (apt-get install redis-server)");
	snprintf(g.dir, sizeof(g.dir), "/tmp/connreg-cluster-%ld.XXXXXX", (long)getpid());
	cr_assert_not_null(mkdtemp(g.dir));
	snprintf(g.sock, sizeof(g.sock), "%s/redis.sock", g.dir);
	snprintf(g.url, sizeof(g.url), "unix://%s", g.sock);
	redis_start();
	for (int i = 0; i < NHOST; i++) {
		struct host *h = &g.h[i];

		snprintf(h->id, sizeof(h->id), "%c", 'A' + i);
		t_name(h->name, "cl");
		t_name(h->view, "clv");
		/* Separate members of g: built in locals (gcc's -Wrestrict cannot tell). */
		char view[T_NAME_BUF], dir[sizeof(g.dir)];

		memcpy(view, h->view, sizeof(view));
		memcpy(dir, g.dir, sizeof(dir));
		snprintf(h->hosts, sizeof(h->hosts), "%s" CONNREG_ROUTE_HOSTS_SUFFIX, view);
		t_name_track(h->hosts);
		snprintf(h->log, sizeof(h->log), "%s/%c.log", dir, 'A' + i);
	}
	for (int i = 0; i < NHOST; i++)
		host_start(i);
}

/* ------------------------------------------------------------------ */
/* what the views hold                                                 */
/* ------------------------------------------------------------------ */

/* Host j's number as host i's hosts registry gives it (0: unknown). */
static uint16_t host_num(int i, int j)
{
	uint64_t v;

	if (connreg_get_transport(g.h[i].hv, g.h[j].id, strlen(g.h[j].id), &v) != 0)
		return 0;
	return (uint16_t)(v & CONNREG_ROUTE_HOST_MASK);
}

static bool hosts_all_known(void)
{
	for (int i = 0; i < NHOST; i++)
		for (int j = 0; j < NHOST; j++)
			if (host_num(i, j) == 0)
				return false;
	return true;
}

/* Does host i's view route id to host j with transport t (j < 0: not there)? */
static bool routes(int i, const char *id, int j, uint64_t t)
{
	uint64_t v;
	int rc = connreg_get_transport(g.h[i].v, id, strlen(id), &v);

	if (j < 0)
		return rc == -ENOENT;
	return rc == 0 && connreg_route_host(v) == host_num(i, j) && host_num(i, j) != 0 &&
	       connreg_route_transport(v) == t;
}

struct truth {
	int i;		/* whose view */
	int j;		/* whose registry */
	bool ok;
	uint64_t n;
};

static int check_one(const void *id, size_t len, uint64_t t, void *arg)
{
	struct truth *tr = arg;
	uint64_t v;

	tr->n++;
	if (connreg_get_transport(g.h[tr->i].v, id, len, &v) != 0 ||
	    connreg_route_host(v) != host_num(tr->i, tr->j) ||
	    connreg_route_transport(v) != (t & CONNREG_ROUTE_TRANSPORT_MASK)) {
		tr->ok = false;
		return 1;
	}
	return 0;
}

/*
 * Is host i's view exactly the other hosts' registries (ids distinct
 * across hosts)? Hosts in `skip` (a bit set) are expected absent.
 */
static bool view_is_truth(int i, unsigned skip)
{
	connreg_stats_t st = { .size = sizeof(st) };
	uint64_t total = 0;

	for (int j = 0; j < NHOST; j++) {
		struct truth tr = { i, j, true, 0 };

		if (j == i || (skip & (1u << j)))
			continue;
		if (host_num(i, j) == 0)
			return false;
		connreg_foreach(g.h[j].reg, check_one, &tr);
		if (!tr.ok)
			return false;
		total += tr.n;
	}
	return connreg_stats(g.h[i].v, &st) == 0 && st.live == total;
}

static bool all_views_true(unsigned skip)
{
	for (int i = 0; i < NHOST; i++)
		if (!(skip & (1u << i)) && !view_is_truth(i, skip))
			return false;
	return true;
}

/* Wait up to ms for cond; the time it took, or -1. */
#define WAIT_FOR(ms, cond)                                                   \
	({                                                                   \
		uint64_t _t0 = t_now_ms();                                   \
		int64_t _r = -1;                                             \
		for (;;) {                                                   \
			if (cond) {                                          \
				_r = (int64_t)(t_now_ms() - _t0);            \
				break;                                       \
			}                                                    \
			if (t_now_ms() - _t0 > (uint64_t)(ms))               \
				break;                                       \
			t_sleep_ms(2);                                       \
		}                                                            \
		_r;                                                          \
	})

static void reg_n(int i, const char *prefix, int n, uint64_t base)
{
	char id[64];

	for (int k = 0; k < n; k++) {
		snprintf(id, sizeof(id), "%s%d", prefix, k);
		cr_assert_eq(connreg_register(g.h[i].reg, id, strlen(id), base + (uint64_t)k), 0);
	}
}

/* Do views b and c (not host i's) route every prefix<k> to host i with base+k (j<0: none)? */
static bool others_see(int i, const char *prefix, int n, uint64_t base, bool present)
{
	char id[64];

	for (int o = 0; o < NHOST; o++) {
		if (o == i)
			continue;
		for (int k = 0; k < n; k++) {
			snprintf(id, sizeof(id), "%s%d", prefix, k);
			if (!routes(o, id, present ? i : -1, base + (uint64_t)k))
				return false;
		}
	}
	return true;
}

static void dump_logs(void)
{
	for (int i = 0; i < NHOST; i++) {
		char *log = host_log(i);

		cr_log_info("---- connregd %s ----\n%s", g.h[i].id, log);
		free(log);
	}
}

#define ASSERT_WITHIN(ms, cond, ...)                                         \
	do {                                                                 \
		int64_t _took = WAIT_FOR(ms, cond);                          \
		if (_took < 0)                                               \
			dump_logs();                                         \
		cr_assert_geq(_took, 0, __VA_ARGS__);                        \
	} while (0)

/* ------------------------------------------------------------------ */
/* the tests                                                           */
/* ------------------------------------------------------------------ */

Test(cluster, register_update_unregister_reach_the_other_views_within_a_second)
{
	int64_t took;

	cluster_up();
	/* Every host knows every other host's number, and they differ. */
	ASSERT_WITHIN(1000, hosts_all_known(), "the hosts registries do not name every host");
	for (int i = 0; i < NHOST; i++)
		for (int j = 0; j < NHOST; j++) {
			cr_assert_eq(host_num(i, j), host_num(0, j), "host numbers disagree");
			if (i != j)
				cr_assert_neq(host_num(0, i), host_num(0, j));
		}

	reg_n(0, "a-", 100, 1000);
	took = WAIT_FOR(1000, others_see(0, "a-", 100, 1000, true));
	if (took < 0)
		dump_logs();
	cr_assert_geq(took, 0, "A's ids did not reach B's and C's views within 1 s");
	cr_log_info("register: in both views after %" PRId64 " ms", took);
	cr_assert(routes(0, "a-0", -1, 0), "a host's own ids are not in its own view");

	reg_n(0, "a-", 100, 5000);
	took = WAIT_FOR(1000, others_see(0, "a-", 100, 5000, true));
	cr_assert_geq(took, 0, "A's updates did not reach the views within 1 s");

	for (int k = 0; k < 100; k++) {
		char id[16];

		snprintf(id, sizeof(id), "a-%d", k);
		cr_assert_eq(connreg_unregister(g.h[0].reg, id, strlen(id)), 0);
	}
	took = WAIT_FOR(1000, others_see(0, "a-", 100, 0, false));
	cr_assert_geq(took, 0, "A's unregisters did not reach the views within 1 s");

	/* Transports use 48 bits in the view: the largest survives. */
	cr_assert_eq(connreg_register(g.h[1].reg, "big", 3, CONNREG_ROUTE_TRANSPORT_MASK), 0);
	ASSERT_WITHIN(1000, routes(0, "big", 1, CONNREG_ROUTE_TRANSPORT_MASK) &&
				    routes(2, "big", 1, CONNREG_ROUTE_TRANSPORT_MASK),
		      "B's id with a 48-bit transport did not arrive");
	cr_assert(all_views_true(0));
}

Test(cluster, one_id_on_two_hosts_converges_to_the_later_write)
{
	cluster_up();
	cr_assert_eq(connreg_register(g.h[0].reg, "dup", 3, 11), 0);
	ASSERT_WITHIN(1000, routes(1, "dup", 0, 11) && routes(2, "dup", 0, 11), "A's dup");
	cr_assert_eq(connreg_register(g.h[1].reg, "dup", 3, 22), 0);
	ASSERT_WITHIN(1000, routes(0, "dup", 1, 22) && routes(2, "dup", 1, 22) &&
				    routes(1, "dup", -1, 0),
		      "B's later write of dup did not win everywhere");
	/* B lets it go; A still holds it: A's becomes the answer again. */
	cr_assert_eq(connreg_unregister(g.h[1].reg, "dup", 3), 0);
	ASSERT_WITHIN(1000, routes(1, "dup", 0, 11) && routes(2, "dup", 0, 11) &&
				    routes(0, "dup", -1, 0),
		      "after B unregistered dup, A's was not asserted again");
}

Test(cluster, a_stopped_host_leaves_the_views_within_lease_plus_1s_and_comes_back)
{
	int64_t took;

	cluster_up();
	reg_n(0, "s-", 30, 300);
	reg_n(1, "sb-", 5, 900);
	ASSERT_WITHIN(1000, others_see(0, "s-", 30, 300, true), "A's ids");
	cr_assert_eq(kill(g.h[0].pid, SIGSTOP), 0);
	took = WAIT_FOR(LEASE_MS + 1000, others_see(0, "s-", 30, 300, false));
	if (took < 0) {
		kill(g.h[0].pid, SIGCONT);
		dump_logs();
	}
	cr_assert_geq(took, 0, "a stopped A's ids were still in the views after lease + 1 s");
	cr_log_info("stopped A's ids left after %" PRId64 " ms (lease %d)", took, LEASE_MS);
	cr_assert(routes(2, "sb-0", 1, 900), "B's ids stay");
	cr_assert_eq(kill(g.h[0].pid, SIGCONT), 0);
	ASSERT_WITHIN(LEASE_MS + 1000, others_see(0, "s-", 30, 300, true),
		      "A's ids did not come back after SIGCONT");
	ASSERT_WITHIN(1000, all_views_true(0), "views differ from the registries");
	cr_assert(log_has(0, "lost its lease"), "A did not report its lost lease");
}

Test(cluster, a_killed_host_leaves_the_views_and_reasserts_its_ids_when_restarted)
{
	int64_t took;

	cluster_up();
	reg_n(0, "k-", 30, 700);
	ASSERT_WITHIN(1000, others_see(0, "k-", 30, 700, true), "A's ids");
	kill_wait(&g.h[0].pid);
	took = WAIT_FOR(LEASE_MS + 1000, others_see(0, "k-", 30, 700, false));
	if (took < 0)
		dump_logs();
	cr_assert_geq(took, 0, "a killed A's ids were still in the views after lease + 1 s");
	/* A reaped host's number is free again: the hosts registries forget it. */
	ASSERT_WITHIN(1000, host_num(1, 0) == 0 && host_num(2, 0) == 0,
		      "the hosts registries still list the reaped A");
	/* Numbers wrap after 65535: the next one is the first free (A's old 1). */
	cr_assert_eq(host_num(1, 1), 2);
	cr_assert_eq(host_num(1, 2), 3);
	redis_do("HSET {connreg}:meta nexthost 65535");
	/* A's registry lives on (the gateways still hold those connections); A restarts. */
	reg_n(0, "k2-", 5, 50);
	host_start(0);
	ASSERT_WITHIN(1000, host_num(1, 0) == 1 && host_num(2, 0) == 1 && host_num(0, 0) == 1,
		      "the restarted A did not get the free number 1");
	ASSERT_WITHIN(1000, others_see(0, "k-", 30, 700, true) && others_see(0, "k2-", 5, 50, true),
		      "a restarted A did not re-assert its ids");
	ASSERT_WITHIN(1000, all_views_true(0), "views differ from the registries");
}

Test(cluster, a_cleanly_restarted_host_hands_its_lease_over_and_its_ids_stay)
{
	uint64_t t0;
	int status;
	bool stayed = true;

	cluster_up();
	reg_n(0, "h-", 20, 40);
	ASSERT_WITHIN(1000, others_see(0, "h-", 20, 40, true), "A's ids");
	cr_assert_eq(kill(g.h[0].pid, SIGTERM), 0);
	cr_assert_eq(waitpid(g.h[0].pid, &status, 0), g.h[0].pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "connregd A: status %d", status);
	g.h[0].pid = 0;
	cr_assert(log_has(0, "lease handed over"));
	host_start(0);
	cr_assert(log_has(0, "handed over by a connregd that stopped cleanly"),
		  "the restarted A did not take the lease over");
	/* Through the restart and two leases after it, A's ids never left. */
	t0 = t_now_ms();
	while (t_now_ms() - t0 < 2 * LEASE_MS && stayed) {
		stayed = others_see(0, "h-", 20, 40, true);
		t_sleep_ms(5);
	}
	cr_assert(stayed, "A's ids left a view after a clean restart");
	cr_assert_eq(count_in_log(1, "is gone"), 0, "B saw A go");
}

Test(cluster, redis_restarted_empty_views_converge_within_5s)
{
	int64_t took;

	cluster_up();
	reg_n(0, "ra-", 40, 100);
	reg_n(1, "rb-", 40, 200);
	reg_n(2, "rc-", 40, 300);
	ASSERT_WITHIN(1000, all_views_true(0), "initial convergence");
	kill_wait(&g.redis);
	/* Redis down: local writes go on, views keep their last state. */
	reg_n(0, "ra2-", 10, 400);
	for (int k = 0; k < 10; k++) {
		char id[16];

		snprintf(id, sizeof(id), "rc-%d", k);
		cr_assert_eq(connreg_unregister(g.h[2].reg, id, strlen(id)), 0);
	}
	t_sleep_ms(300);
	cr_assert(routes(1, "ra-0", 0, 100) && routes(1, "rc-0", 2, 300),
		  "a view lost its state while Redis was down");
	redis_start();
	took = WAIT_FOR(5000, all_views_true(0));
	if (took < 0)
		dump_logs();
	cr_assert_geq(took, 0, "views did not converge within 5 s of an empty Redis restart");
	cr_log_info("converged %" PRId64 " ms after Redis came back empty", took);
	for (int i = 0; i < NHOST; i++)
		cr_assert(alive(i));
}

Test(cluster, a_feed_trimmed_while_a_mirror_is_stopped_makes_it_resync)
{
	int64_t took;
	int before;

	cluster_up();
	reg_n(0, "t-", 50, 10);
	ASSERT_WITHIN(1000, all_views_true(0), "initial convergence");
	before = count_in_log(1, "view resynced");
	cr_assert_eq(kill(g.h[1].pid, SIGSTOP), 0);
	/*
	 * Changes in separate feed records (each chunk confirmed in C's view
	 * before the next): B's XREAD, pending when it stopped, can get the
	 * first, and the trim removes the ones after it.
	 */
	for (int chunk = 0; chunk < 4; chunk++) {
		char prefix[16];

		snprintf(prefix, sizeof(prefix), "t%d-", chunk);
		reg_n(0, prefix, 50, 20);
		ASSERT_WITHIN(1000, view_is_truth(2, 0), "C's view");
	}
	for (int k = 0; k < 25; k++) {
		char id[16];

		snprintf(id, sizeof(id), "t-%d", k);
		cr_assert_eq(connreg_unregister(g.h[0].reg, id, strlen(id)), 0);
	}
	ASSERT_WITHIN(1000, view_is_truth(2, 0), "C's view");
	redis_do("XTRIM {connreg}:feed MAXLEN 0");
	cr_assert_eq(connreg_register(g.h[0].reg, "after-trim", 10, 99), 0);
	ASSERT_WITHIN(1000, routes(2, "after-trim", 0, 99), "C did not get the change after the trim");
	cr_assert_eq(kill(g.h[1].pid, SIGCONT), 0);
	/*
	 * The resync fills the view before it logs: wait for the log line too,
	 * or a view seen complete between the two reads as "no resync".
	 */
	took = WAIT_FOR(3000, view_is_truth(1, 0) && routes(1, "after-trim", 0, 99) &&
				      count_in_log(1, "view resynced") > before);
	if (took < 0)
		dump_logs();
	cr_assert_geq(took, 0, "B did not converge and log a resync after the feed was trimmed");
	cr_assert_gt(count_in_log(1, "view resynced"), before, "B did not resync");
	cr_assert(log_has(1, "view resynced (a gap in the feed") ||
			  log_has(1, "view resynced (the feed holds no record after"),
		  "B's resync does not name the gap");
}

Test(cluster, garbage_and_wrong_types_in_redis_are_logged_and_skipped)
{
	char *epoch;

	cluster_up();
	reg_n(0, "g-", 5, 1);
	ASSERT_WITHIN(1000, all_views_true(0), "initial convergence");

	/* Records no connregd wrote. */
	redis_do("XADD {connreg}:feed * junk 1");
	redis_do("XADD {connreg}:feed * s notanumber e x h 1 o c");
	redis_do("XADD {connreg}:feed * s 1 e x h 99999 o c id 1");
	redis_do("XADD {connreg}:feed * s 1 e x h 1 o z");
	redis_do("XADD {connreg}:feed * %b %b", "\0\xff", (size_t)2, "\x01", (size_t)1);
	epoch = redis_str("HGET {connreg}:meta epoch");
	cr_assert_not_null(epoch);
	/* Well-formed but forged: a seq beyond the feed's, another epoch, a bad change. */
	redis_do("XADD {connreg}:feed * s 999999 e %s h 1 o c x 1", epoch);
	redis_do("XADD {connreg}:feed * s 999999 e other-epoch h 1 o c x 1");
	/* State entries no connregd wrote (seen at the next resync). */
	redis_do("HSET {connreg}:state bad-1 nonsense bad-2 1:notanumber bad-3 0:5 bad-4 :");
	redis_do("HSET {connreg}:hostnums notanumber A 7 %b", "bad id!", (size_t)7);
	redis_do("ZADD {connreg}:hosts 0 %b", "not a host\n", (size_t)11);

	/* Changes still propagate. */
	cr_assert_eq(connreg_register(g.h[0].reg, "g-new", 5, 77), 0);
	ASSERT_WITHIN(1000, routes(1, "g-new", 0, 77) && routes(2, "g-new", 0, 77),
		      "a change after garbage records did not propagate");
	ASSERT_WITHIN(1000, log_has(1, "skipped") && log_has(2, "skipped"),
		      "the garbage was not logged");

	/* A real gap (a seq skipped): a resync reads the garbage state entries, skips them. */
	redis_do("HINCRBY {connreg}:meta seq 1");
	cr_assert_eq(connreg_register(g.h[0].reg, "g-resync", 8, 78), 0);
	ASSERT_WITHIN(3000, routes(1, "g-resync", 0, 78) && routes(2, "g-resync", 0, 78),
		      "the change after a gap did not arrive");
	ASSERT_WITHIN(3000, log_has(2, "state entry that is not"), "garbage state not logged");
	cr_assert(routes(2, "bad-1", -1, 0) && routes(2, "bad-3", -1, 0));

	/* A key of the wrong type: B's publishes fail, logged; fixed, B catches up. */
	redis_do("SET {connreg}:own:B x");
	cr_assert_eq(connreg_register(g.h[1].reg, "b-1", 3, 5), 0);
	ASSERT_WITHIN(2000, log_has(1, "WRONGTYPE"), "B did not log the wrong type");
	cr_assert(routes(0, "b-1", -1, 0), "B published through a key of the wrong type");
	redis_do("DEL {connreg}:own:B");
	ASSERT_WITHIN(3000, routes(0, "b-1", 1, 5) && routes(2, "b-1", 1, 5),
		      "B did not catch up once the key was fixed");
	ASSERT_WITHIN(1000, all_views_true(0), "views differ from the registries");
	for (int i = 0; i < NHOST; i++)
		cr_assert(alive(i), "connregd %s died", g.h[i].id);
	free(epoch);
}

#endif /* HAVE_HIREDIS */
