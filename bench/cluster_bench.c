/*
 * cluster_bench.c: connregd --cluster end to end (issue #12): a real
 * redis-server on a unix socket and connregd processes as hosts on this
 * machine.
 *
 *  1. Propagation latency: ids registered on host A at a steady rate
 *     (default 10000 changes/s for 5 s); a thread here watches host B's
 *     view and stamps each id when it appears there (a sweep of the ids
 *     not yet seen, wait-free lookups). Latency = seen on B - register on A
 *     returned: the publisher's drain period, the Lua script, XREAD, the
 *     mirror's write into the view.
 *  2. Mirroring 100k ids: 100000 ids registered on A as fast as one thread
 *     can; the time until all are in B's view.
 *  3. A new host: C started with everything already in Redis; the time
 *     until its view holds every id (a resync: HSCAN of the state).
 *
 * Usage: connreg-bench-cluster [--rate N] [--seconds S] [--ids N]
 * Binaries: $CONNREGD (default: the connregd built with this bench) and
 * $REDIS_SERVER (default: redis-server in /usr/bin).
 * Output: a table, and RESULT lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "connreg.h"

#ifndef CONNREGD_PATH
#define CONNREGD_PATH "connregd"
#endif

#define NHOST 3

static char g_dir[64], g_sock[96], g_url[128];
static pid_t g_redis, g_pid[NHOST];
static char g_name[NHOST][64], g_view[NHOST][64], g_log[NHOST][128];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "connreg-bench-cluster: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static void cleanup(void)
{
	char path[256];

	for (int i = 0; i < NHOST; i++)
		if (g_pid[i] > 0) {
			kill(g_pid[i], SIGTERM);
			waitpid(g_pid[i], NULL, 0);
			g_pid[i] = 0;
		}
	if (g_redis > 0) {
		kill(g_redis, SIGKILL);
		waitpid(g_redis, NULL, 0);
		g_redis = 0;
	}
	for (int i = 0; i < NHOST; i++) {
		if (!g_name[i][0])
			continue;
		connreg_unlink(g_name[i]);
		connreg_unlink(g_view[i]);
		snprintf(path, sizeof(path), "%s.hosts", g_view[i]);
		connreg_unlink(path);
		unlink(g_log[i]);
	}
	if (g_dir[0]) {
		snprintf(path, sizeof(path), "%s/redis.log", g_dir);
		unlink(path);
		unlink(g_sock);
		rmdir(g_dir);
	}
}

static pid_t spawn(const char *log, const char *const argv[])
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static bool sock_ready(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", g_sock);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static bool log_has(int i, const char *needle)
{
	char buf[65536];
	FILE *f = fopen(g_log[i], "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

static void start_host(int i, uint64_t capacity)
{
	const char *bin = getenv("CONNREGD") ? getenv("CONNREGD") : CONNREGD_PATH;
	char id[2] = { (char)('A' + i), 0 }, cap[24];
	uint64_t deadline = now_ns() + 10000000000ull;

	snprintf(cap, sizeof(cap), "%" PRIu64, capacity);
	const char *argv[] = { bin, "--name", g_name[i], "--capacity", cap, "--cluster", g_url,
			       "--host-id", id, "--cluster-view", g_view[i], "--lease-ms", "5000",
			       "--check-interval-ms", "600000", "--unlink-on-exit", NULL };
	g_pid[i] = spawn(g_log[i], argv);
	while (!log_has(i, "view resynced") || !log_has(i, "compared the registry")) {
		if (now_ns() > deadline || waitpid(g_pid[i], NULL, WNOHANG) != 0)
			die("connregd %s did not start (see %s; set CONNREGD)", id, g_log[i]);
		sleep_ms(5);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t live(connreg_t *r)
{
	connreg_stats_t st = { .size = sizeof(st) };

	return connreg_stats(r, &st) == 0 ? st.live : 0;
}

/* ------------------------------------------------------------------ */
/* 1. propagation latency                                              */
/* ------------------------------------------------------------------ */

struct lat {
	connreg_t *view;
	uint64_t n;
	uint64_t *t_reg, *t_seen;
	atomic_uint_fast64_t registered;
	atomic_bool give_up;
};

static size_t pid_id(char *buf, size_t len, const char *prefix, uint64_t i)
{
	return (size_t)snprintf(buf, len, "%s%08" PRIu64, prefix, i);
}

static void *watcher(void *arg)
{
	struct lat *l = arg;
	uint64_t lo = 0;
	char id[32];

	while (lo < l->n && !atomic_load(&l->give_up)) {
		uint64_t hi = atomic_load(&l->registered);

		for (uint64_t i = lo; i < hi; i++) {
			uint64_t t;

			if (l->t_seen[i])
				continue;
			size_t n = pid_id(id, sizeof(id), "p-", i);

			if (connreg_get_transport(l->view, id, n, &t) == 0)
				l->t_seen[i] = now_ns();
		}
		while (lo < hi && l->t_seen[lo])
			lo++;
		if (lo == hi)
			sched_yield();
	}
	return NULL;
}

static void propagation(connreg_t *a, connreg_t *bview, unsigned rate, unsigned seconds)
{
	struct lat l = { .view = bview, .n = (uint64_t)rate * seconds };
	uint64_t *lat, start, end, missing = 0, m = 0;
	pthread_t thr;
	char id[32];

	l.t_reg = calloc(l.n, sizeof(uint64_t));
	l.t_seen = calloc(l.n, sizeof(uint64_t));
	lat = calloc(l.n, sizeof(uint64_t));
	if (!l.t_reg || !l.t_seen || !lat)
		die("out of memory");
	pthread_create(&thr, NULL, watcher, &l);
	start = now_ns();
	for (uint64_t i = 0; i < l.n; i++) {
		uint64_t due = start + i * 1000000000ull / rate, t;
		size_t n = pid_id(id, sizeof(id), "p-", i);
		int rc;

		while ((t = now_ns()) < due) {
			if (due - t > 200000) {
				struct timespec ts = { 0, (long)(due - t - 100000) };

				nanosleep(&ts, NULL);
			}
		}
		rc = connreg_register(a, id, n, i + 1);
		if (rc)
			die("register: %s", connreg_strerror(rc));
		l.t_reg[i] = now_ns();
		atomic_store(&l.registered, i + 1);
	}
	end = now_ns();
	/* Up to 10 s more for the last ones. */
	for (int k = 0; k < 1000; k++) {
		bool all = true;

		for (uint64_t i = l.n; i-- > 0;)
			if (!l.t_seen[i]) {
				all = false;
				break;
			}
		if (all)
			break;
		sleep_ms(10);
	}
	atomic_store(&l.give_up, true);
	pthread_join(thr, NULL);
	for (uint64_t i = 0; i < l.n; i++) {
		if (!l.t_seen[i]) {
			missing++;
			continue;
		}
		lat[m++] = l.t_seen[i] > l.t_reg[i] ? l.t_seen[i] - l.t_reg[i] : 0;
	}
	qsort(lat, m, sizeof(*lat), cmp_u64);
#define PCT(p) (m ? (double)lat[(size_t)((double)(m - 1) * (p))] / 1e6 : 0.0)
	printf("\n1. propagation latency, A's register returned -> id in B's view\n");
	printf("   offered %u changes/s for %u s: %" PRIu64 " registers in %.2f s (%.0f/s)\n", rate,
	       seconds, l.n, (double)(end - start) / 1e9, (double)l.n / ((double)(end - start) / 1e9));
	printf("   %-10s %10s %10s %10s %10s %10s  missing\n", "", "p50 ms", "p90 ms", "p99 ms",
	       "p99.9 ms", "max ms");
	printf("   %-10s %10.2f %10.2f %10.2f %10.2f %10.2f  %" PRIu64 "\n", "latency", PCT(0.5),
	       PCT(0.9), PCT(0.99), PCT(0.999), m ? (double)lat[m - 1] / 1e6 : 0.0, missing);
	printf("RESULT propagation rate=%u n=%" PRIu64 " p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f "
	       "p999_ms=%.2f max_ms=%.2f missing=%" PRIu64 "\n",
	       rate, l.n, PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999),
	       m ? (double)lat[m - 1] / 1e6 : 0.0, missing);
	free(l.t_reg);
	free(l.t_seen);
	free(lat);
}

/* ------------------------------------------------------------------ */
/* 2. 100k ids at once; 3. a new host                                  */
/* ------------------------------------------------------------------ */

static double wait_live(connreg_t *v, uint64_t want, uint64_t t0, unsigned timeout_s)
{
	uint64_t deadline = t0 + (uint64_t)timeout_s * 1000000000ull;

	while (live(v) < want) {
		if (now_ns() > deadline)
			return -1;
		sleep_ms(1);
	}
	return (double)(now_ns() - t0) / 1e6;
}

static void bulk(connreg_t *a, connreg_t *bview, uint64_t nids)
{
	uint64_t base = live(bview), t0 = now_ns(), t_reg;
	char id[32];
	double done;

	for (uint64_t i = 0; i < nids; i++) {
		size_t n = pid_id(id, sizeof(id), "m-", i);
		int rc = connreg_register(a, id, n, i + 1);

		if (rc)
			die("register: %s", connreg_strerror(rc));
	}
	t_reg = now_ns();
	done = wait_live(bview, base + nids, t0, 120);
	printf("\n2. %" PRIu64 " ids registered on A as fast as one thread can\n", nids);
	printf("   registered in %.1f ms; all in B's view %.1f ms after the first register\n",
	       (double)(t_reg - t0) / 1e6, done);
	printf("RESULT mirror_bulk ids=%" PRIu64 " register_ms=%.1f mirrored_ms=%.1f\n", nids,
	       (double)(t_reg - t0) / 1e6, done);
}

static void new_host(connreg_t *a, uint64_t capacity)
{
	uint64_t want = live(a), t0 = now_ns();
	connreg_t *cview = NULL;
	double done;

	start_host(2, capacity);
	if (connreg_open(g_view[2], &cview) != 0)
		die("cannot open C's view");
	done = wait_live(cview, want, t0, 120);
	printf("\n3. host C started with %" PRIu64 " ids of A in Redis\n", want);
	printf("   C's view complete %.1f ms after connregd was started (a resync: HSCAN)\n", done);
	printf("RESULT new_host ids=%" PRIu64 " complete_ms=%.1f\n", want, done);
	connreg_close(cview);
}

int main(int argc, char **argv)
{
	unsigned rate = 10000, seconds = 5;
	uint64_t nids = 100000, capacity;
	const char *redis = getenv("REDIS_SERVER") ? getenv("REDIS_SERVER") : "/usr/bin/redis-server";
	char log[160];
	connreg_t *a = NULL, *bview = NULL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
			rate = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			seconds = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--ids") == 0 && i + 1 < argc)
			nids = strtoull(argv[++i], NULL, 10);
		else
			die("usage: connreg-bench-cluster [--rate N] [--seconds S] [--ids N]");
	}
	if (!rate || !seconds || !nids)
		die("--rate, --seconds and --ids must be positive");
	if (access(redis, X_OK) != 0)
		die("%s not found (apt-get install redis-server, or set REDIS_SERVER)", redis);
	capacity = (uint64_t)rate * seconds + nids + 1000;
	atexit(cleanup);
	signal(SIGINT, exit);
	snprintf(g_dir, sizeof(g_dir), "/tmp/connreg-bench-cluster.XXXXXX");
	if (!mkdtemp(g_dir))
		die("mkdtemp: %s", strerror(errno));
	snprintf(g_sock, sizeof(g_sock), "%s/redis.sock", g_dir);
	snprintf(g_url, sizeof(g_url), "unix://%s", g_sock);
	snprintf(log, sizeof(log), "%s/redis.log", g_dir);
	for (int i = 0; i < NHOST; i++) {
		snprintf(g_name[i], sizeof(g_name[i]), "/crb-%ld-%c", (long)getpid(), 'A' + i);
		snprintf(g_view[i], sizeof(g_view[i]), "/crb-%ld-view-%c", (long)getpid(), 'A' + i);
		snprintf(g_log[i], sizeof(g_log[i]), "%s/%c.log", g_dir, 'A' + i);
	}
	{
		const char *rargv[] = { redis, "--port", "0", "--unixsocket", g_sock, "--save", "",
					"--appendonly", "no", "--dir", g_dir, NULL };

		g_redis = spawn(log, rargv);
	}
	for (int k = 0; !sock_ready(); k++) {
		if (k > 500)
			die("redis-server did not start (see %s)", log);
		sleep_ms(10);
	}
	start_host(0, capacity);
	start_host(1, capacity);
	if (connreg_open(g_name[0], &a) != 0 || connreg_open(g_view[1], &bview) != 0)
		die("cannot open A's registry or B's view");
	printf("connregd --cluster: redis-server on a unix socket, hosts as connregd processes "
	       "on this machine (%ld CPUs online)\n", sysconf(_SC_NPROCESSORS_ONLN));
	propagation(a, bview, rate, seconds);
	bulk(a, bview, nids);
	new_host(a, capacity);
	connreg_close(bview);
	connreg_close(a);
	return 0;
}
