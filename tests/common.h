/*
 * Shared helpers for the connreg Criterion tests.
 *
 * Include this header FIRST in every test file (it defines _GNU_SOURCE).
 *
 * Rules for tests that fork their own children:
 * - a child never uses cr_assert or cr_expect (those report to Criterion's
 *   runner); it reports through its exit status or a shared results area,
 *   and the parent asserts;
 * - a child always ends with _exit() (t_fork does this for you).
 */
#ifndef CONNREG_TESTS_COMMON_H
#define CONNREG_TESTS_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
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
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "connreg.h"

#define T_UNUSED __attribute__((unused))
#define T_NAME_BUF 256

/* ------------------------------------------------------------------ */
/* time                                                                */
/* ------------------------------------------------------------------ */

static inline uint64_t t_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t t_now_ms(void)
{
	return t_now_ns() / 1000000ull;
}

static inline void t_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ */
/* unique segment names, unlinked again by t_cleanup_names()           */
/* ------------------------------------------------------------------ */

#define T_MAX_NAMES 64
static char t_names[T_MAX_NAMES][T_NAME_BUF];
static unsigned t_names_n;

/*
 * Build "/crt-<tag>-<pid>-<counter>" into buf (T_NAME_BUF bytes), unlink any
 * leftover of that name, and remember it so t_cleanup_names() unlinks it at
 * the end of the test (also when an assertion failed).
 */
static inline const char *t_name(char *buf, const char *tag)
{
	static unsigned counter;
	unsigned c = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
	snprintf(buf, T_NAME_BUF, "/crt-%s-%ld-%u", tag, (long)getpid(), c);
	connreg_unlink(buf);
	shm_unlink(buf);
	if (t_names_n < T_MAX_NAMES)
		memcpy(t_names[t_names_n++], buf, T_NAME_BUF);
	return buf;
}

/* Remember a name built otherwise (e.g. t_name's plus a suffix) for t_cleanup_names(). */
static inline void t_name_track(const char *name)
{
	size_t n = strlen(name);

	if (t_names_n < T_MAX_NAMES && n < T_NAME_BUF)
		memcpy(t_names[t_names_n++], name, n + 1);
}

/* Remove a flat temporary directory and the files in it (test clean-up). */
static inline void t_rm_dir(const char *path)
{
	DIR *dir = opendir(path);
	struct dirent *e;

	while (dir && (e = readdir(dir)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(dir), e->d_name, 0);
	if (dir)
		closedir(dir);
	rmdir(path);
}

/*
 * A program built beside this test binary (connregd, connreg), into buf;
 * the environment variable env names another one when set.
 */
static inline const char *t_sibling_binary(const char *env, const char *file, char *buf,
					   size_t len)
{
	const char *e = getenv(env);
	char self[PATH_MAX];
	ssize_t n;

	if (e && *e)
		return e;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	cr_assert(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	snprintf(buf, len, "%s/%s", self, file);
	return buf;
}

/* Suite .fini: remove every segment name this test process built. */
static inline void t_cleanup_names(void)
{
	for (unsigned i = 0; i < t_names_n; i++) {
		connreg_unlink(t_names[i]);
		shm_unlink(t_names[i]);
	}
	t_names_n = 0;
}

/* ------------------------------------------------------------------ */
/* configuration                                                       */
/* ------------------------------------------------------------------ */

static inline connreg_config_t t_cfg(uint64_t capacity, uint32_t key_max, uint32_t max_threads)
{
	connreg_config_t c;
	memset(&c, 0, sizeof c);
	c.capacity = capacity;
	c.key_max = key_max;
	c.max_threads = max_threads;
	return c;
}

/* ------------------------------------------------------------------ */
/* ids                                                                 */
/* ------------------------------------------------------------------ */

/* Binary id: 'K', 4-byte namespace, 8-byte number (little endian): 13 bytes. */
#define T_ID_LEN 13
static inline size_t t_id(uint8_t *buf, uint32_t ns, uint64_t n)
{
	buf[0] = 'K';
	for (int i = 0; i < 4; i++)
		buf[1 + i] = (uint8_t)(ns >> (8 * i));
	for (int i = 0; i < 8; i++)
		buf[5 + i] = (uint8_t)(n >> (8 * i));
	return T_ID_LEN;
}

/* Text id "<prefix><n>" (no terminating NUL counted); buf >= 64 bytes. */
static inline size_t t_sid(char *buf, size_t len, const char *prefix, uint64_t n)
{
	int k = snprintf(buf, len, "%s%" PRIu64, prefix, n);
	return (size_t)k;
}

/* ------------------------------------------------------------------ */
/* transport values encoding (writer, id, seq) with a check byte        */
/*   bits 63..56 writer, 55..36 id, 35..8 seq, 7..0 check               */
/* ------------------------------------------------------------------ */

static inline uint8_t t_chk(uint64_t hi)
{
	uint64_t x = (hi >> 8) * 0x9E3779B97F4A7C15ull;
	x ^= x >> 29;
	return (uint8_t)((x >> 56) ^ 0x5a);
}

static inline uint64_t t_enc(uint32_t writer, uint32_t id, uint32_t seq)
{
	uint64_t v = ((uint64_t)(writer & 0xffu) << 56) | ((uint64_t)(id & 0xfffffu) << 36) |
		     ((uint64_t)(seq & 0xfffffffu) << 8);
	return v | t_chk(v);
}

/* Returns true when v is a well-formed encoded value. */
static inline bool t_dec(uint64_t v, uint32_t *writer, uint32_t *id, uint32_t *seq)
{
	if ((uint8_t)(v & 0xff) != t_chk(v & ~0xffull))
		return false;
	*writer = (uint32_t)(v >> 56);
	*id = (uint32_t)((v >> 36) & 0xfffffu);
	*seq = (uint32_t)((v >> 8) & 0xfffffffu);
	return true;
}

/* ------------------------------------------------------------------ */
/* PRNG (xorshift64*)                                                  */
/* ------------------------------------------------------------------ */

static inline uint64_t t_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x853c49e6748fea9bull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* ------------------------------------------------------------------ */
/* processes                                                           */
/* ------------------------------------------------------------------ */

typedef int (*t_child_fn)(void *arg);

/* Fork; the child runs fn(arg) and _exit()s with its return value (0..255). */
static inline pid_t t_fork(t_child_fn fn, void *arg)
{
	fflush(stdout);
	fflush(stderr);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		/* A failed assertion ends the test process: never leave a child running. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		int rc = fn(arg);
		_exit(rc & 0xff);
	}
	return pid;
}

#define T_WAIT_SIGNALED 1000 /* + signal number */
#define T_WAIT_TIMEOUT 2000
#define T_WAIT_ERROR 3000

/*
 * Wait for pid up to timeout_ms (SIGKILL it when over). Returns its exit
 * status (0..255), T_WAIT_SIGNALED + signo, T_WAIT_TIMEOUT or T_WAIT_ERROR.
 */
static inline int t_wait(pid_t pid, unsigned timeout_ms)
{
	if (pid <= 0)
		return T_WAIT_ERROR;
	uint64_t deadline = t_now_ms() + timeout_ms;
	int st;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return T_WAIT_ERROR;
		if (t_now_ms() > deadline) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			return T_WAIT_TIMEOUT;
		}
		t_sleep_ms(1);
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return T_WAIT_SIGNALED + WTERMSIG(st);
	return T_WAIT_ERROR;
}

/* Shared anonymous memory, visible to children forked afterwards. */
static inline void *t_shared(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/*
 * Start gate: children call t_gate_wait() and block until the parent calls
 * t_gate_open() after forking all of them.
 */
typedef struct { int fd[2]; } t_gate_t;

static inline int t_gate_init(t_gate_t *g)
{
	return pipe(g->fd);
}

static inline void t_gate_wait(t_gate_t *g) /* in the child */
{
	char c;
	close(g->fd[1]);
	while (read(g->fd[0], &c, 1) < 0 && errno == EINTR)
		;
	close(g->fd[0]);
}

static inline void t_gate_open(t_gate_t *g) /* in the parent */
{
	close(g->fd[1]);
	close(g->fd[0]);
}

/*
 * One-shot barrier on a counter in shared memory: returns 0 once `n`
 * parties arrived, -1 after timeout_ms.
 */
static inline int t_barrier(atomic_uint *ctr, unsigned n, unsigned timeout_ms)
{
	uint64_t deadline = t_now_ms() + timeout_ms;
	atomic_fetch_add(ctr, 1);
	while (atomic_load(ctr) < n) {
		if (t_now_ms() > deadline)
			return -1;
		sched_yield();
	}
	return 0;
}

static inline int t_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static inline int t_read_all(int fd, void *buf, size_t n)
{
	char *p = buf;
	while (n) {
		ssize_t k = read(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* -EAGAIN under concurrency                                            */
/* ------------------------------------------------------------------ */

/*
 * A writer gets -EAGAIN when no grace period completes within
 * CONNREG_RECLAIM_WAIT_MS. Besides a stopped reader, that happens when a
 * thread is preempted inside a lookup and the scheduler leaves it off the
 * CPU that long, which an overloaded 2-core machine running several test
 * binaries at once does. Concurrent tests therefore retry -EAGAIN (nothing
 * changed: the write can be repeated) for at most T_EAGAIN_BUDGET_MS and
 * count the retries in *again (a uint64_t *, may be NULL).
 */
#define T_EAGAIN_BUDGET_MS 20000
#define T_RETRY_EAGAIN(call, again)                                                    \
	({                                                                             \
		int _t_rc;                                                             \
		uint64_t _t_end = 0;                                                   \
		for (;;) {                                                             \
			_t_rc = (call);                                                \
			if (_t_rc != -EAGAIN)                                          \
				break;                                                 \
			if (_t_end == 0)                                               \
				_t_end = t_now_ms() + T_EAGAIN_BUDGET_MS;              \
			else if (t_now_ms() > _t_end)                                  \
				break;                                                 \
			uint64_t *_t_again = (again);                                  \
			if (_t_again)                                                  \
				(*_t_again)++;                                         \
			sched_yield();                                                 \
		}                                                                      \
		_t_rc;                                                                 \
	})

/* ------------------------------------------------------------------ */
/* connreg_check with its problems in the assertion message            */
/* ------------------------------------------------------------------ */

struct t_problems {
	char text[1024];
	size_t len;
};

static inline void t_problem(const char *problem, void *arg)
{
	struct t_problems *p = arg;
	int n = snprintf(p->text + p->len, sizeof p->text - p->len, "%s; ", problem);

	if (n > 0 && p->len + (size_t)n < sizeof p->text)
		p->len += (size_t)n;
}

#define T_ASSERT_CHECK_CLEAN(r, ...)                                                   \
	do {                                                                           \
		struct t_problems _tp = { { 0 }, 0 };                                  \
		int _trc = connreg_check((r), t_problem, &_tp);                        \
		cr_assert_eq(_trc, 0, "connreg_check: %d: %s", _trc, _tp.text);        \
	} while (0)

/* ------------------------------------------------------------------ */
/* failure reports from children / threads (put it in t_shared memory) */
/* ------------------------------------------------------------------ */

typedef struct t_report {
	atomic_int nfail; /* number of failed checks */
	int line;         /* line of the first failed check */
	char what[512];   /* description of the first failed check */
} t_report_t;

static inline void t_report_fail(t_report_t *rep, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline void t_report_fail(t_report_t *rep, int line, const char *fmt, ...)
{
	if (atomic_fetch_add(&rep->nfail, 1) != 0)
		return;
	rep->line = line;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rep->what, sizeof rep->what, fmt, ap);
	va_end(ap);
}

/*
 * In a child or a thread: when cond is false, record the first failure in
 * *rep and execute `onfail` (e.g. `return 1`).
 */
#define T_CHECK(rep, cond, onfail, ...)                                    \
	do {                                                               \
		if (!(cond)) {                                             \
			t_report_fail((rep), __LINE__, "(" #cond ") " __VA_ARGS__); \
			onfail;                                            \
		}                                                          \
	} while (0)

/* In the parent: assert no child/thread recorded a failure. */
#define T_ASSERT_REPORT_OK(rep)                                              \
	cr_assert_eq(atomic_load(&(rep)->nfail), 0,                          \
		     "%d failed check(s); first at line %d: %s",             \
		     atomic_load(&(rep)->nfail), (rep)->line, (rep)->what)

#endif /* CONNREG_TESTS_COMMON_H */
