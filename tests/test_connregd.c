/*
 * connregd, started for real (fork + exec of the built binary): it creates
 * the registry with the given mode and configuration; a second instance
 * with another configuration exits 2, one with the same configuration
 * exits 3; it reaps, within a second, the ids another process registered
 * to a process that is then killed, and counts them in
 * connreg_reaped_total; /metrics and /healthz answer over HTTP (a small
 * client here), /healthz turns 503 when the check finds a corrupted entry;
 * a fake $NOTIFY_SOCKET receives READY=1, STATUS=, WATCHDOG=1, RELOADING=1
 * and STOPPING=1; SIGTERM and SIGINT exit 0 and --unlink-on-exit removes
 * the name; a corrupt segment under the name is refused with a clear
 * error; SIGHUP re-reads --config; `connreg stat --prometheus` prints the
 * daemon's metrics; a connregd in another pid namespace (as its pid 1)
 * serves the same registry alongside, and the last one out unlinks it.
 *
 * The binaries are $CONNREGD and $CONNREG_CLI, else connregd and connreg
 * next to this test binary. Each daemon's stderr goes to a file in a
 * temporary directory, which the tests read.
 */
#include "common.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>

static void cleanup(void);

TestSuite(connregd, .fini = cleanup, .timeout = 60);

#define START_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS	 5000

/* ------------------------------------------------------------------ */
/* the temporary directory and the daemons of this test process         */
/* ------------------------------------------------------------------ */

static char g_dir[80];
static pid_t g_pids[16];
static unsigned g_npids;

static const char *tmp_dir(void)
{
	if (!g_dir[0]) {
		snprintf(g_dir, sizeof(g_dir), "/tmp/connregd-test-%ld.XXXXXX", (long)getpid());
		cr_assert_not_null(mkdtemp(g_dir), "mkdtemp: %s", strerror(errno));
	}
	return g_dir;
}

static void tmp_path(char *buf, size_t len, const char *file)
{
	snprintf(buf, len, "%s/%s", tmp_dir(), file);
}

static void cleanup(void)
{
	for (unsigned i = 0; i < g_npids; i++)
		if (g_pids[i] > 0 && waitpid(g_pids[i], NULL, WNOHANG) == 0) {
			kill(g_pids[i], SIGKILL);
			waitpid(g_pids[i], NULL, 0);
		}
	g_npids = 0;
	t_cleanup_names();
	if (g_dir[0]) {
		t_rm_dir(g_dir);
		g_dir[0] = '\0';
	}
}

static const char *binary(const char *env, const char *file)
{
	static char path[2][PATH_MAX + 32];

	return t_sibling_binary(env, file, path[strcmp(file, "connregd") == 0], sizeof(path[0]));
}

/* ------------------------------------------------------------------ */
/* running connregd                                                    */
/* ------------------------------------------------------------------ */

struct dmn {
	pid_t pid;
	char log[PATH_MAX];	/* its stderr */
	int port;		/* metrics port, once known */
	int status;		/* t_wait's result once it has exited, else -1 */
};

/*
 * Start connregd with args (NULL-terminated) and the "KEY=VALUE" strings
 * of env (NULL-terminated, may be NULL) added to a clean environment.
 */
static void dmn_start(struct dmn *d, const char *tag, const char *const env[],
		      const char *const args[])
{
	const char *path = binary("CONNREGD", "connregd");
	const char *argv[48];
	size_t n = 0;

	cr_assert(access(path, X_OK) == 0, "connregd not found at %s (set CONNREGD)", path);
	memset(d, 0, sizeof(*d));
	d->status = -1;
	snprintf(d->log, sizeof(d->log), "%s/%s.log", tmp_dir(), tag);
	argv[n++] = path;
	for (size_t i = 0; args[i]; i++) {
		cr_assert(n < 47);
		argv[n++] = args[i];
	}
	argv[n] = NULL;

	fflush(stdout);
	fflush(stderr);
	pid_t parent = getpid();
	d->pid = fork();
	cr_assert(d->pid >= 0, "fork: %s", strerror(errno));
	if (d->pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int nul = open("/dev/null", O_RDWR);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || fd < 0 || nul < 0)
			_exit(127);
		dup2(nul, 0);
		dup2(nul, 1);
		dup2(fd, 2);
		unsetenv("NOTIFY_SOCKET");
		unsetenv("WATCHDOG_USEC");
		unsetenv("WATCHDOG_PID");
		unsetenv("JOURNAL_STREAM");
		for (size_t i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	if (g_npids < sizeof(g_pids) / sizeof(g_pids[0]))
		g_pids[g_npids++] = d->pid;
}

/*
 * Start connregd as pid 1 of a new pid namespace: d->pid is the process
 * that created the namespace and waits for connregd (it exits with
 * connregd's status, 77 when a new pid namespace is not allowed here);
 * *inner receives connregd's pid as this namespace numbers it.
 */
static void dmn_start_pidns(struct dmn *d, const char *tag, const char *const args[],
			    pid_t *inner)
{
	const char *path = binary("CONNREGD", "connregd");
	const char *argv[48];
	size_t n = 0;
	int pfd[2];

	memset(d, 0, sizeof(*d));
	d->status = -1;
	*inner = -1;
	snprintf(d->log, sizeof(d->log), "%s/%s.log", tmp_dir(), tag);
	argv[n++] = path;
	for (size_t i = 0; args[i]; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
	fflush(stdout);
	fflush(stderr);
	pid_t parent = getpid();
	d->pid = fork();
	cr_assert(d->pid >= 0);
	if (d->pid == 0) {
		pid_t init;
		int st;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		if (unshare(CLONE_NEWPID) != 0)
			_exit(77);
		init = fork();
		if (init == 0) {
			int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

			/* Its parent is outside its namespace: getppid() is 0 here. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (fd < 0)
				_exit(127);
			dup2(fd, 2);
			unsetenv("NOTIFY_SOCKET");
			unsetenv("JOURNAL_STREAM");
			execv(path, (char *const *)argv);
			_exit(127);
		}
		if (init < 0 || write(pfd[1], &init, sizeof(init)) != (ssize_t)sizeof(init))
			_exit(98);
		while (waitpid(init, &st, 0) < 0 && errno == EINTR)
			;
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st));
	}
	close(pfd[1]);
	if (g_npids < sizeof(g_pids) / sizeof(g_pids[0]))
		g_pids[g_npids++] = d->pid;
	if (t_read_all(pfd[0], inner, sizeof(*inner)) != 0)
		*inner = -1;
	close(pfd[0]);
}

/* Its log so far (malloc'd, never NULL). */
static char *dmn_log(const struct dmn *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = fopen(d->log, "r");
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

static bool dmn_exited(struct dmn *d)
{
	int st;

	if (d->status >= 0)
		return true;
	if (waitpid(d->pid, &st, WNOHANG) != d->pid)
		return false;
	d->status = WIFEXITED(st) ? WEXITSTATUS(st) : T_WAIT_SIGNALED + WTERMSIG(st);
	return true;
}

/* Wait until its log contains needle (true), or it exits or the time is up (false). */
static bool dmn_wait_log(struct dmn *d, const char *needle, unsigned timeout_ms)
{
	uint64_t deadline = t_now_ms() + timeout_ms;

	for (;;) {
		char *log = dmn_log(d);
		bool found = strstr(log, needle) != NULL;

		free(log);
		if (found)
			return true;
		if (dmn_exited(d) || t_now_ms() > deadline)
			return false;
		t_sleep_ms(5);
	}
}

/* Wait for "ready" (and the metrics port, when it serves them). */
static void dmn_wait_ready(struct dmn *d)
{
	char *log, *p;

	if (!dmn_wait_log(d, "ready: serving", START_TIMEOUT_MS)) {
		log = dmn_log(d);
		cr_assert_fail("connregd did not become ready (exit %d); its log:\n%s", d->status,
			       log);
	}
	log = dmn_log(d);
	p = strstr(log, "listening on http://127.0.0.1:");
	if (p)
		d->port = atoi(p + strlen("listening on http://127.0.0.1:"));
	free(log);
}

/* Wait for it to exit on its own; returns its status (t_wait's encoding). */
static int dmn_wait_exit(struct dmn *d, unsigned timeout_ms)
{
	uint64_t deadline = t_now_ms() + timeout_ms;

	while (!dmn_exited(d)) {
		if (t_now_ms() > deadline) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, NULL, 0);
			d->status = T_WAIT_TIMEOUT;
			break;
		}
		t_sleep_ms(2);
	}
	return d->status;
}

static int dmn_stop(struct dmn *d, int sig)
{
	if (!dmn_exited(d))
		kill(d->pid, sig);
	return dmn_wait_exit(d, STOP_TIMEOUT_MS);
}

#define EXPECT_LOG(d, needle)                                                              \
	do {                                                                               \
		char *_log = dmn_log(d);                                                   \
		cr_expect(strstr(_log, needle) != NULL, "log lacks \"%s\":\n%s", needle, _log); \
		free(_log);                                                                \
	} while (0)

/* ------------------------------------------------------------------ */
/* a small HTTP client                                                 */
/* ------------------------------------------------------------------ */

struct resp {
	int status;
	char *head;	/* status line and headers */
	char *body;
	char *raw;
};

static void resp_free(struct resp *r)
{
	free(r->raw);
	memset(r, 0, sizeof(*r));
}

/* One request over HTTP/1.0 to 127.0.0.1:port; the whole answer in *r. */
static void http_req(int port, const char *method, const char *path, struct resp *r)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 5 };
	char req[512], chunk[8192];
	size_t len = 0;
	FILE *m;
	int fd;

	cr_assert_gt(port, 0, "no metrics port");
	memset(r, 0, sizeof(*r));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect to port %d: %s",
		     port, strerror(errno));
	snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
		 method, path);
	cr_assert_eq(t_write_all(fd, req, strlen(req)), 0);
	m = open_memstream(&r->raw, &len);
	for (;;) {
		ssize_t k = read(fd, chunk, sizeof(chunk));

		if (k < 0 && errno == EINTR)
			continue;
		cr_assert_geq(k, 0, "reading the answer to %s %s: %s", method, path, strerror(errno));
		if (k == 0)
			break;
		fwrite(chunk, 1, (size_t)k, m);
	}
	fclose(m);
	close(fd);
	cr_assert(sscanf(r->raw, "HTTP/1.%*d %d", &r->status) == 1, "not HTTP:\n%s", r->raw);
	r->head = r->raw;
	r->body = strstr(r->raw, "\r\n\r\n");
	cr_assert_not_null(r->body, "no end of headers:\n%s", r->raw);
	*r->body = '\0';
	r->body += 4;
}

/* The value of the sample `metric{registry="NAME"}` in text; NAN when absent. */
static double sample(const char *text, const char *metric, const char *name)
{
	char key[512];
	const char *p;

	snprintf(key, sizeof(key), "\n%s{registry=\"%s\"} ", metric, name);
	p = strstr(text, key);
	if (!p)
		return NAN;
	return strtod(p + strlen(key), NULL);
}

static double metric(struct dmn *d, const char *metric, const char *name)
{
	struct resp r;
	double v;

	http_req(d->port, "GET", "/metrics", &r);
	cr_assert_eq(r.status, 200, "GET /metrics: %d", r.status);
	v = sample(r.body - 1, metric, name); /* the body starts after a newline */
	resp_free(&r);
	return v;
}

/* ------------------------------------------------------------------ */
/* a fake systemd notification socket                                  */
/* ------------------------------------------------------------------ */

struct notify {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char env[sizeof(((struct sockaddr_un *)0)->sun_path) + 16];
	char got[16384];	/* every datagram so far, each followed by "\n--\n" */
	size_t len;
};

static void notify_open(struct notify *n)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	memset(n, 0, sizeof(*n));
	snprintf(n->path, sizeof(n->path), "%s/notify", tmp_dir());
	snprintf(n->env, sizeof(n->env), "NOTIFY_SOCKET=%s", n->path);
	memcpy(a.sun_path, n->path, strlen(n->path) + 1);
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(n->fd, 0);
	cr_assert_eq(bind(n->fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind %s: %s", n->path,
		     strerror(errno));
}

/* Receive datagrams until one contains needle (true) or timeout_ms passes. */
static bool notify_wait(struct notify *n, const char *needle, unsigned timeout_ms)
{
	uint64_t deadline = t_now_ms() + timeout_ms;
	size_t from = n->len;

	for (;;) {
		struct pollfd pfd = { .fd = n->fd, .events = POLLIN };
		char dg[4096];
		int64_t left = (int64_t)(deadline - t_now_ms());
		ssize_t k;

		if (strstr(n->got + from, needle))
			return true;
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return strstr(n->got + from, needle) != NULL;
		k = recv(n->fd, dg, sizeof(dg) - 1, 0);
		if (k <= 0)
			continue;
		dg[k] = '\0';
		n->len += (size_t)snprintf(n->got + n->len, sizeof(n->got) - n->len, "%s\n--\n", dg);
		if (n->len >= sizeof(n->got) - 1)
			n->len = from = 0; /* keep the buffer bounded */
	}
}

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

static connreg_t *open_reg(const char *name)
{
	connreg_t *r = NULL;
	int rc = connreg_open(name, &r);

	cr_assert_eq(rc, 0, "connreg_open(%s): %s", name, connreg_strerror(rc));
	return r;
}

static int open_rc(const char *name)
{
	connreg_t *r = NULL;
	int rc = connreg_open(name, &r);

	connreg_close(r);
	return rc;
}

/* ------------------------------------------------------------------ */
/* creating, adopting, refusing                                        */
/* ------------------------------------------------------------------ */

Test(connregd, creates_the_registry_with_the_given_mode_and_configuration)
{
	char name[T_NAME_BUF];
	connreg_stats_t st = { .size = sizeof(st) };
	struct stat sb;
	char shm[T_NAME_BUF + 16];
	struct dmn d;

	t_name(name, "cd-create");
	dmn_start(&d, "d", NULL,
		  (const char *[]){ "--name", name, "--capacity", "123", "--key-max", "40",
				    "--max-threads", "8", "--mode", "0640", NULL });
	dmn_wait_ready(&d);

	snprintf(shm, sizeof(shm), "/dev/shm%s", name);
	cr_assert_eq(stat(shm, &sb), 0, "stat %s: %s", shm, strerror(errno));
	cr_expect_eq(sb.st_mode & 0777, 0640, "mode 0%o, wanted 0640", sb.st_mode & 0777);
	connreg_t *r = open_reg(name);
	cr_assert_eq(connreg_stats(r, &st), 0);
	cr_expect_eq(st.capacity, 123);
	cr_expect_eq(st.key_max, 40);
	cr_expect_eq(st.max_threads, 8);
	cr_expect_eq(st.flags, 0);
	cr_expect_eq(connreg_register(r, "x", 1, 7), 0, "the registry is usable");
	connreg_close(r);
	EXPECT_LOG(&d, "created ");

	/* SIGINT stops it as cleanly; without --unlink-on-exit the registry stays. */
	cr_assert_eq(dmn_stop(&d, SIGINT), 0, "exit status %d after SIGINT", d.status);
	EXPECT_LOG(&d, "SIGINT");
	cr_expect_eq(open_rc(name), 0, "the registry was removed without --unlink-on-exit");
}

Test(connregd, second_instance_with_another_configuration_exits_2)
{
	char name[T_NAME_BUF];
	struct dmn a, b, c;
	uint64_t t = 0;

	t_name(name, "cd-second");
	dmn_start(&a, "a", NULL, (const char *[]){ "--name", name, "--capacity", "100", NULL });
	dmn_wait_ready(&a);
	connreg_t *r = open_reg(name);
	cr_assert_eq(connreg_register(r, "kept", 4, 42), 0);
	connreg_close(r);

	/* Another capacity: exit 2 and a message naming both values. */
	dmn_start(&b, "b", NULL, (const char *[]){ "--name", name, "--capacity", "200", NULL });
	cr_assert_eq(dmn_wait_exit(&b, START_TIMEOUT_MS), 2, "exit status %d", b.status);
	EXPECT_LOG(&b, "already exists with another configuration");
	EXPECT_LOG(&b, "capacity 100 (requested 200)");
	/* Another key-max and pid flag: each is named. */
	dmn_start(&b, "b2", NULL,
		  (const char *[]){ "--name", name, "--capacity", "100", "--key-max", "32",
				    "--transport-is-pid", NULL });
	cr_assert_eq(dmn_wait_exit(&b, START_TIMEOUT_MS), 2, "exit status %d", b.status);
	EXPECT_LOG(&b, "key-max 64 (requested 32)");
	EXPECT_LOG(&b, "transport-is-pid no (requested yes)");

	/* The same configuration: the name is served already, exit 3. */
	dmn_start(&b, "b3", NULL, (const char *[]){ "--name", name, "--capacity", "100", NULL });
	cr_assert_eq(dmn_wait_exit(&b, START_TIMEOUT_MS), 3, "exit status %d", b.status);
	EXPECT_LOG(&b, "already served by another connregd");

	cr_assert(!dmn_exited(&a), "the first instance died (status %d)", a.status);
	cr_assert_eq(dmn_stop(&a, SIGTERM), 0);

	/* A new instance adopts the registry, contents and all. */
	dmn_start(&c, "c", NULL, (const char *[]){ "--name", name, "--capacity", "100", NULL });
	dmn_wait_ready(&c);
	EXPECT_LOG(&c, "adopted the existing registry");
	r = open_reg(name);
	cr_expect_eq(connreg_get_transport(r, "kept", 4, &t), 0);
	cr_expect_eq(t, 42);
	connreg_close(r);
	cr_assert_eq(dmn_stop(&c, SIGTERM), 0);
}

Test(connregd, refuses_a_corrupt_segment_with_a_clear_error)
{
	char name[T_NAME_BUF];
	unsigned char junk[65536], back[sizeof(junk)];
	struct dmn d;
	int fd;

	t_name(name, "cd-corrupt");
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(0xA5 ^ (i * 131));
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0, "shm_open: %s", strerror(errno));
	cr_assert_eq(t_write_all(fd, junk, sizeof(junk)), 0);
	close(fd);

	dmn_start(&d, "d", NULL,
		  (const char *[]){ "--name", name, "--capacity", "100", "--unlink-on-exit", NULL });
	cr_assert_eq(dmn_wait_exit(&d, START_TIMEOUT_MS), 3, "exit status %d (%d+ is a signal)",
		     d.status, T_WAIT_SIGNALED);
	EXPECT_LOG(&d, "is not a usable connreg registry");
	EXPECT_LOG(&d, "EPROTO");

	/* Left exactly as it was, even with --unlink-on-exit. */
	fd = shm_open(name, O_RDONLY, 0);
	cr_assert_geq(fd, 0, "the corrupt segment was removed");
	cr_assert_eq(t_read_all(fd, back, sizeof(back)), 0);
	close(fd);
	cr_expect(memcmp(junk, back, sizeof(junk)) == 0, "the corrupt segment was changed");
}

Test(connregd, usage_errors_exit_2_and_touch_nothing)
{
	char name[T_NAME_BUF], port[16], listen_at[32];
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	struct dmn d;
	int busy;

	t_name(name, "cd-usage");
	dmn_start(&d, "help", NULL, (const char *[]){ "--help", NULL });
	cr_expect_eq(dmn_wait_exit(&d, START_TIMEOUT_MS), 0);
	dmn_start(&d, "version", NULL, (const char *[]){ "--version", NULL });
	cr_expect_eq(dmn_wait_exit(&d, START_TIMEOUT_MS), 0);

	static const struct {
		const char *args[8];
		const char *says;
	} bad[] = {
		{ { "--capacity", "10", NULL }, "--name /NAME is required" },
		{ { "--name", "/x", NULL }, "--capacity N is required" },
		{ { "--name", "/x", "--capacity", "0", NULL }, "bad --capacity" },
		{ { "--name", "/x", "--capacity", "10", "--mode", "0999", NULL }, "bad --mode" },
		{ { "--name", "/x", "--capacity", "10", "--bogus", NULL }, "unknown option" },
		{ { "--name", "/x", "--capacity", "10", "--reap-interval-ms", "1", NULL },
		  "bad --reap-interval-ms" },
		{ { "--name", "/x", "--capacity", "10", "--metrics-listen", "127.0.0.1", NULL },
		  "bad --metrics-listen" },
		{ { "--name", "/a/b", "--capacity", "10", NULL }, "bad --name" },
		{ { "--name", "/x", "--capacity", "10", "--config", "/nonexistent/c.conf", NULL },
		  "cannot read --config" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dmn_start(&d, "bad", NULL, bad[i].args);
		cr_expect_eq(dmn_wait_exit(&d, START_TIMEOUT_MS), 2, "case %zu: exit %d", i,
			     d.status);
		EXPECT_LOG(&d, bad[i].says);
	}

	/* A metrics port already taken: a system error (3), before the registry exists. */
	busy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(busy, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(busy, 1), 0);
	cr_assert_eq(getsockname(busy, (struct sockaddr *)&a, &al), 0);
	snprintf(port, sizeof(port), "%d", ntohs(a.sin_port));
	snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%s", port);
	dmn_start(&d, "busy", NULL,
		  (const char *[]){ "--name", name, "--capacity", "10", "--metrics-listen",
				    listen_at, NULL });
	cr_expect_eq(dmn_wait_exit(&d, START_TIMEOUT_MS), 3, "exit %d", d.status);
	EXPECT_LOG(&d, "cannot listen on");
	close(busy);
	cr_expect_eq(open_rc(name), -ENOENT, "a failed start created the registry");
}

/* ------------------------------------------------------------------ */
/* reaping                                                             */
/* ------------------------------------------------------------------ */

#define REAP_IDS 5

struct registrar {
	const char *name;
	pid_t victim;
};

/* Child: register REAP_IDS ids to the victim's pid and one to our parent (alive). */
static int registrar_main(void *arg)
{
	struct registrar *g = arg;
	connreg_t *r = NULL;
	char id[32];

	if (connreg_open(g->name, &r) != 0)
		return 10;
	for (int i = 0; i < REAP_IDS; i++) {
		snprintf(id, sizeof(id), "victim-%d", i);
		if (connreg_register(r, id, strlen(id), (uint64_t)g->victim) != 0)
			return 11;
	}
	if (connreg_register(r, "alive", 5, (uint64_t)getppid()) != 0)
		return 12;
	connreg_close(r);
	return 0;
}

static int victim_main(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return 0;
}

static int victims_live(connreg_t *r)
{
	char id[32];
	uint64_t t;
	int n = 0;

	for (int i = 0; i < REAP_IDS; i++) {
		snprintf(id, sizeof(id), "victim-%d", i);
		n += connreg_get_transport(r, id, strlen(id), &t) == 0;
	}
	return n;
}

Test(connregd, reaps_ids_of_a_killed_transport_within_a_second)
{
	char name[T_NAME_BUF];
	struct registrar g;
	struct dmn d;
	uint64_t t, t0, took;
	pid_t victim, reg_pid;

	t_name(name, "cd-reap");
	dmn_start(&d, "d", NULL,
		  (const char *[]){ "--name", name, "--capacity", "100", "--transport-is-pid",
				    "--reap-interval-ms", "100", "--metrics-listen", "127.0.0.1:0",
				    NULL });
	dmn_wait_ready(&d);

	victim = t_fork(victim_main, NULL);
	cr_assert_gt(victim, 0);
	g = (struct registrar){ name, victim };
	reg_pid = t_fork(registrar_main, &g);
	cr_assert_eq(t_wait(reg_pid, 10000), 0, "the registering process failed");

	/* While the victim lives, several reap passes leave its ids alone. */
	t_sleep_ms(350);
	connreg_t *r = open_reg(name);
	cr_assert_eq(victims_live(r), REAP_IDS, "ids of a live process were reaped");
	cr_expect_eq(metric(&d, "connreg_reaped_total", name), 0);

	kill(victim, SIGKILL);
	cr_assert_eq(t_wait(victim, 5000), T_WAIT_SIGNALED + SIGKILL);
	t0 = t_now_ms();
	while (victims_live(r) > 0 && t_now_ms() - t0 < 3000)
		t_sleep_ms(5);
	took = t_now_ms() - t0;
	cr_assert_eq(victims_live(r), 0, "ids of the killed process still registered after %" PRIu64
		     " ms", took);
	cr_expect_lt(took, 1000, "reaped after %" PRIu64 " ms, wanted under 1 s", took);
	cr_expect_eq(connreg_get_transport(r, "alive", 5, &t), 0, "a live transport was reaped");
	cr_expect_eq(t, (uint64_t)getpid());
	connreg_close(r);

	cr_expect_eq(metric(&d, "connreg_reaped_total", name), REAP_IDS);
	cr_expect_geq(metric(&d, "connreg_reap_runs_total", name), 3);
	cr_expect_eq(metric(&d, "connreg_reap_errors_total", name), 0);
	EXPECT_LOG(&d, "whose transport process had exited");
	cr_assert_eq(dmn_stop(&d, SIGTERM), 0);
}

/* ------------------------------------------------------------------ */
/* metrics and health                                                  */
/* ------------------------------------------------------------------ */

/* Every sample has HELP and TYPE lines before it, and the registry label. */
static void expect_well_formed(const char *body, const char *name)
{
	char label[T_NAME_BUF + 32], *copy = strdup(body), *save = NULL;
	unsigned samples = 0;

	snprintf(label, sizeof(label), "registry=\"%s\"", name);
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char metric_name[128], help[160], type[160];
		size_t n;

		if (line[0] == '#')
			continue;
		n = strcspn(line, "{ ");
		cr_assert_lt(n, sizeof(metric_name));
		memcpy(metric_name, line, n);
		metric_name[n] = '\0';
		snprintf(help, sizeof(help), "# HELP %s ", metric_name);
		snprintf(type, sizeof(type), "# TYPE %s ", metric_name);
		cr_expect(strstr(body, help) && strstr(body, help) < strstr(body, line),
			  "no HELP before %s", line);
		cr_expect(strstr(body, type) && strstr(body, type) < strstr(body, line),
			  "no TYPE before %s", line);
		cr_expect(strstr(line, label), "no %s label: %s", label, line);
		samples++;
	}
	cr_expect_geq(samples, 20, "only %u samples", samples);
	free(copy);
}

Test(connregd, serves_metrics_and_healthz)
{
	char name[T_NAME_BUF];
	struct resp r;
	struct dmn d;
	uint64_t t;

	t_name(name, "cd-metrics");
	dmn_start(&d, "d", NULL,
		  (const char *[]){ "--name", name, "--capacity", "50", "--max-threads", "16",
				    "--metrics-listen", "127.0.0.1:0", NULL });
	dmn_wait_ready(&d);
	connreg_t *reg = open_reg(name);
	for (int i = 0; i < 3; i++) {
		char id[16];

		snprintf(id, sizeof(id), "m-%d", i);
		cr_assert_eq(connreg_register(reg, id, strlen(id), (uint64_t)i), 0);
	}
	cr_assert_eq(connreg_get_transport(reg, "m-1", 3, &t), 0);

	http_req(d.port, "GET", "/metrics", &r);
	cr_assert_eq(r.status, 200, "GET /metrics: %d\n%s", r.status, r.raw);
	cr_expect(strstr(r.head, "Content-Type: text/plain; version=0.0.4"), "%s", r.head);
	expect_well_formed(r.body, name);
	static const char *const types[] = {
		"# TYPE connreg_live_ids gauge",	"# TYPE connreg_capacity_ids gauge",
		"# TYPE connreg_reaped_total counter", "# TYPE connreg_check_problems gauge",
		"# TYPE connreg_writer_eagain_total counter",
		"# TYPE connreg_slots_recovered_total counter",
		"# TYPE connreg_grace_periods_total counter",
		"# TYPE connreg_reader_slots_in_use gauge",
	};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		cr_expect(strstr(r.body, types[i]), "no \"%s\" in:\n%s", types[i], r.body);
	cr_expect_eq(sample(r.body - 1, "connreg_live_ids", name), 3);
	cr_expect_eq(sample(r.body - 1, "connreg_capacity_ids", name), 50);
	cr_expect_eq(sample(r.body - 1, "connreg_check_problems", name), 0);
	cr_expect_eq(sample(r.body - 1, "connreg_reaped_total", name), 0);
	cr_expect_eq(sample(r.body - 1, "connreg_reader_slots", name), 16);
	/* This test's thread and the daemon's two threads hold reader slots. */
	cr_expect_geq(sample(r.body - 1, "connreg_reader_slots_in_use", name), 2);
	cr_expect_geq(sample(r.body - 1, "connreg_check_runs_total", name), 1);
	resp_free(&r);
	connreg_close(reg);

	http_req(d.port, "GET", "/healthz", &r);
	cr_expect_eq(r.status, 200, "GET /healthz: %d\n%s", r.status, r.raw);
	cr_expect(strncmp(r.body, "ok", 2) == 0, "%s", r.body);
	resp_free(&r);
	http_req(d.port, "HEAD", "/metrics", &r);
	cr_expect_eq(r.status, 200);
	cr_expect_str_empty(r.body, "HEAD has a body");
	resp_free(&r);
	http_req(d.port, "GET", "/nope", &r);
	cr_expect_eq(r.status, 404);
	resp_free(&r);
	http_req(d.port, "POST", "/metrics", &r);
	cr_expect_eq(r.status, 405);
	cr_expect(strstr(r.head, "Allow: GET, HEAD"), "%s", r.head);
	resp_free(&r);
	cr_assert_eq(dmn_stop(&d, SIGTERM), 0);
}

/* Map /dev/shm<name>, find pat (exactly once) and flip one bit in it. */
static void flip_bit_in(const char *name, const uint8_t *pat, size_t patlen)
{
	int fd = shm_open(name, O_RDWR, 0);
	struct stat sb;
	uint8_t *m, *hit = NULL;
	unsigned found = 0;

	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &sb), 0);
	m = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	close(fd);
	for (uint8_t *p = m; (p = memmem(p, (size_t)(m + sb.st_size - p), pat, patlen)) != NULL;
	     p++) {
		hit = p;
		found++;
	}
	cr_assert_eq(found, 1, "the id occurs %u times in the segment", found);
	hit[patlen / 2] ^= 0x10;
	munmap(m, (size_t)sb.st_size);
}

static int wait_health(struct dmn *d, int want, unsigned timeout_ms, char *body, size_t len)
{
	uint64_t deadline = t_now_ms() + timeout_ms;
	struct resp r;
	int got;

	do {
		http_req(d->port, "GET", "/healthz", &r);
		got = r.status;
		snprintf(body, len, "%s", r.body);
		resp_free(&r);
		if (got == want)
			break;
		t_sleep_ms(20);
	} while (t_now_ms() < deadline);
	return got;
}

Test(connregd, healthz_answers_503_while_the_check_finds_a_problem)
{
	char name[T_NAME_BUF], body[512];
	uint8_t victim[16], flipped[16];
	struct dmn d;

	t_name(name, "cd-health");
	dmn_start(&d, "d", NULL,
		  (const char *[]){ "--name", name, "--capacity", "100", "--check-interval-ms",
				    "100", "--metrics-listen", "127.0.0.1:0", NULL });
	dmn_wait_ready(&d);
	connreg_t *r = open_reg(name);
	cr_assert_eq(getrandom(victim, sizeof(victim), 0), (ssize_t)sizeof(victim));
	victim[0] = 0xC7;
	cr_assert_eq(connreg_register(r, victim, sizeof(victim), 0xbad), 0);
	for (int i = 0; i < 20; i++) {
		char id[16];

		snprintf(id, sizeof(id), "h-%d", i);
		cr_assert_eq(connreg_register(r, id, strlen(id), (uint64_t)i), 0);
	}
	connreg_close(r);
	cr_assert_eq(wait_health(&d, 200, 2000, body, sizeof(body)), 200, "%s", body);

	/* Damage one entry's key behind the library's back. */
	flip_bit_in(name, victim, sizeof(victim));
	cr_assert_eq(wait_health(&d, 503, 3000, body, sizeof(body)), 503,
		     "/healthz still %s after a corrupted entry", body);
	cr_expect(strstr(body, "problem"), "%s", body);
	cr_expect_geq(metric(&d, "connreg_check_problems", name), 1);
	EXPECT_LOG(&d, "error: check: ");
	EXPECT_LOG(&d, "confirmed by a second pass");

	/* Repaired: sound again. */
	memcpy(flipped, victim, sizeof(victim));
	flipped[sizeof(flipped) / 2] ^= 0x10;
	flip_bit_in(name, flipped, sizeof(flipped));
	cr_assert_eq(wait_health(&d, 200, 3000, body, sizeof(body)), 200,
		     "/healthz still %s after the repair", body);
	cr_expect_eq(metric(&d, "connreg_check_problems", name), 0);
	EXPECT_LOG(&d, "is sound again");
	cr_assert_eq(dmn_stop(&d, SIGTERM), 0);
}

Test(connregd, connreg_stat_prometheus_prints_the_same_metrics)
{
	char name[T_NAME_BUF], out_path[PATH_MAX];
	struct resp r;
	struct dmn d;
	pid_t pid;
	char *cli, *copy, *save = NULL;
	size_t n = 0;
	FILE *f;

	t_name(name, "cd-stat");
	dmn_start(&d, "d", NULL,
		  (const char *[]){ "--name", name, "--capacity", "70", "--metrics-listen",
				    "127.0.0.1:0", NULL });
	dmn_wait_ready(&d);
	connreg_t *reg = open_reg(name);
	cr_assert_eq(connreg_register(reg, "s-1", 3, 1), 0);
	cr_assert_eq(connreg_register(reg, "s-2", 3, 2), 0);
	connreg_close(reg);

	tmp_path(out_path, sizeof(out_path), "stat.prom");
	fflush(stdout);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(fd, 1);
		execl(binary("CONNREG_CLI", "connreg"), "connreg", "stat", "--prometheus", name,
		      (char *)NULL);
		_exit(127);
	}
	cr_assert_eq(t_wait(pid, 10000), 0, "connreg stat --prometheus failed");
	f = fopen(out_path, "r");
	cr_assert_not_null(f);
	cli = calloc(1, 65536);
	n = fread(cli + 1, 1, 65534, f);
	fclose(f);
	cli[0] = '\n'; /* so that sample() finds the first line too */
	cr_assert_gt(n, 0, "no output");

	http_req(d.port, "GET", "/metrics", &r);
	cr_assert_eq(r.status, 200);
	expect_well_formed(cli + 1, name);
	/* Every family the tool prints, the daemon serves, with the same HELP. */
	copy = strdup(cli + 1);
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, "# ", 2) == 0)
			cr_expect(strstr(r.body, line), "the daemon lacks \"%s\"", line);
	free(copy);
	cr_expect_eq(sample(cli, "connreg_live_ids", name), 2);
	cr_expect_eq(sample(cli, "connreg_capacity_ids", name), 70);
	cr_expect_eq(sample(cli, "connreg_check_problems", name), 0);
	cr_expect(isnan(sample(cli, "connreg_reaped_total", name)),
		  "the tool printed the daemon's own counter");
	cr_expect_eq(sample(r.body - 1, "connreg_live_ids", name), 2);
	resp_free(&r);
	free(cli);
	cr_assert_eq(dmn_stop(&d, SIGTERM), 0);
}

/* ------------------------------------------------------------------ */
/* systemd, signals, pidfile, configuration                           */
/* ------------------------------------------------------------------ */

Test(connregd, notify_socket_gets_ready_status_watchdog_reloading_stopping)
{
	char name[T_NAME_BUF];
	struct notify n;
	struct dmn d;
	unsigned pings = 0;

	t_name(name, "cd-notify");
	notify_open(&n);
	dmn_start(&d, "d", (const char *[]){ n.env, "WATCHDOG_USEC=200000", NULL },
		  (const char *[]){ "--name", name, "--capacity", "100", NULL });
	cr_assert(notify_wait(&n, "READY=1", START_TIMEOUT_MS), "no READY=1; got:\n%s", n.got);
	/* READY=1 only once the registry is usable. */
	cr_expect_eq(open_rc(name), 0);
	cr_expect(strstr(n.got, "STATUS=serving "), "no STATUS=; got:\n%s", n.got);

	/* WatchdogSec=200ms: pinged every 100 ms (3 pings within 1.5 s, even on a loaded machine). */
	for (uint64_t end = t_now_ms() + 1500; t_now_ms() < end && pings < 3;)
		pings += notify_wait(&n, "WATCHDOG=1", 500);
	cr_expect_geq(pings, 3, "%u watchdog pings in 1.5 s; got:\n%s", pings, n.got);

	kill(d.pid, SIGHUP);
	cr_expect(notify_wait(&n, "RELOADING=1", 2000), "no RELOADING=1; got:\n%s", n.got);
	cr_expect(notify_wait(&n, "READY=1", 2000), "no READY=1 after reload; got:\n%s", n.got);

	kill(d.pid, SIGTERM);
	cr_expect(notify_wait(&n, "STOPPING=1", 2000), "no STOPPING=1; got:\n%s", n.got);
	cr_assert_eq(dmn_wait_exit(&d, STOP_TIMEOUT_MS), 0);
	close(n.fd);
}

Test(connregd, sigterm_exits_0_and_unlink_on_exit_removes_the_name)
{
	char name[T_NAME_BUF], pidfile[PATH_MAX], buf[32] = "";
	struct dmn d;
	FILE *f;

	t_name(name, "cd-unlink");
	tmp_path(pidfile, sizeof(pidfile), "connregd.pid");
	dmn_start(&d, "d", NULL,
		  (const char *[]){ "--name", name, "--capacity", "100", "--unlink-on-exit",
				    "--pidfile", pidfile, NULL });
	dmn_wait_ready(&d);
	cr_assert_eq(open_rc(name), 0);
	f = fopen(pidfile, "r");
	cr_assert_not_null(f, "no pidfile");
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	cr_expect_eq(atol(buf), (long)d.pid, "pidfile says %s", buf);

	cr_assert_eq(dmn_stop(&d, SIGTERM), 0, "exit status %d after SIGTERM", d.status);
	cr_expect_eq(open_rc(name), -ENOENT, "the name is still there");
	cr_expect_neq(access(pidfile, F_OK), 0, "the pidfile is still there");
	EXPECT_LOG(&d, "removed the name");
}

Test(connregd, one_per_pid_namespace_pid_1_stops_on_sigterm_and_the_last_one_unlinks)
{
	char name[T_NAME_BUF];
	struct dmn a, b, ns;
	pid_t inner;

	t_name(name, "cd-pidns");
	dmn_start(&a, "a", NULL,
		  (const char *[]){ "--name", name, "--capacity", "100", "--transport-is-pid",
				    "--unlink-on-exit", NULL });
	dmn_wait_ready(&a);

	/* A connregd in another pid namespace serves the same registry alongside. */
	dmn_start_pidns(&ns, "ns", (const char *[]){ "--name", name, "--capacity", "100",
						     "--transport-is-pid", "--unlink-on-exit",
						     NULL }, &inner);
	if (inner < 0 && dmn_wait_exit(&ns, START_TIMEOUT_MS) == 77)
		cr_skip_test("no new pid namespace allowed here (unshare(CLONE_NEWPID))");
	cr_assert_gt(inner, 0, "no pid for the namespaced connregd (status %d)", ns.status);
	cr_assert(dmn_wait_log(&ns, "ready: serving", START_TIMEOUT_MS), "not ready (status %d)",
		  ns.status);
	EXPECT_LOG(&ns, "connregd[1] ");	/* pid 1 of its namespace */
	EXPECT_LOG(&ns, "adopted the existing registry");

	/* In our namespace, a second one is still refused. */
	dmn_start(&b, "b", NULL,
		  (const char *[]){ "--name", name, "--capacity", "100", "--transport-is-pid",
				    NULL });
	cr_assert_eq(dmn_wait_exit(&b, START_TIMEOUT_MS), 3, "exit status %d", b.status);
	EXPECT_LOG(&b, "already served by another connregd in this pid namespace");

	/* As pid 1 it still stops on SIGTERM; the other one serves on: the name stays. */
	cr_assert_eq(kill(inner, SIGTERM), 0);
	cr_assert_eq(dmn_wait_exit(&ns, STOP_TIMEOUT_MS), 0, "pid 1 connregd: status %d",
		     ns.status);
	EXPECT_LOG(&ns, "still serves");
	cr_assert_eq(open_rc(name), 0, "the name was removed while another connregd serves it");

	/* The last one out removes it. */
	cr_assert_eq(dmn_stop(&a, SIGTERM), 0);
	cr_expect_eq(open_rc(name), -ENOENT, "the last connregd left the name");
}

Test(connregd, sighup_rereads_the_config_file)
{
	char name[T_NAME_BUF], conf[PATH_MAX];
	struct dmn d;
	FILE *f;
	double runs;

	t_name(name, "cd-hup");
	tmp_path(conf, sizeof(conf), "connregd.conf");
	f = fopen(conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "# test\ncapacity = 50\ncheck-interval-ms = 100000\n"
		   "metrics-listen = 127.0.0.1:0\n");
	fclose(f);
	dmn_start(&d, "d", NULL, (const char *[]){ "--name", name, "--config", conf, NULL });
	dmn_wait_ready(&d);
	runs = metric(&d, "connreg_check_runs_total", name);

	f = fopen(conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "capacity = 60\ncheck-interval-ms = 50\nmetrics-listen = 127.0.0.1:0\n");
	fclose(f);
	kill(d.pid, SIGHUP);
	cr_assert(dmn_wait_log(&d, "reloaded", 3000), "no reload");
	EXPECT_LOG(&d, "check-interval-ms 100000 -> 50");
	EXPECT_LOG(&d, "capacity changed (50 -> 60) but only a restart applies it");
	t_sleep_ms(500);
	cr_expect_geq(metric(&d, "connreg_check_runs_total", name), runs + 4,
		      "the new check interval is not in force");
	cr_expect_eq(metric(&d, "connreg_capacity_ids", name), 50);

	/* A broken file: logged, the settings in force are kept. */
	f = fopen(conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "capacity = many\n");
	fclose(f);
	kill(d.pid, SIGHUP);
	cr_assert(dmn_wait_log(&d, "keeping the settings in force", 3000), "no error logged");
	cr_assert(!dmn_exited(&d), "a bad config on SIGHUP stopped it (status %d)", d.status);
	cr_assert_eq(dmn_stop(&d, SIGTERM), 0);
}
