/*
 * Extra helpers for the tests of cas / wait / bulk / foreach / stats /
 * check / readers / reap. Builds on common.h (include this instead of it).
 */
#ifndef CONNREG_TESTS_EXT_COMMON_H
#define CONNREG_TESTS_EXT_COMMON_H

#include "common.h"

#include <sys/random.h>

/* Create a registry under a fresh t_name(); asserts success. */
static inline connreg_t *x_make(char *name, const char *tag, uint64_t capacity, uint32_t key_max,
				uint32_t max_threads, uint32_t flags)
{
	t_name(name, tag);
	connreg_config_t cfg = t_cfg(capacity, key_max, max_threads);
	cfg.flags = flags;
	connreg_t *r = NULL;
	int rc = connreg_create(name, &cfg, &r);
	cr_assert_eq(rc, 0, "connreg_create(%s) = %d (%s)", name, rc, connreg_strerror(rc));
	cr_assert_not_null(r);
	return r;
}

static inline void x_expect_value(connreg_t *r, const void *id, size_t len, uint64_t want)
{
	uint64_t v = ~want;
	int rc = connreg_get_transport(r, id, len, &v);
	cr_assert_eq(rc, 0, "get_transport (len %zu) = %d (%s)", len, rc, connreg_strerror(rc));
	cr_assert_eq(v, want, "get_transport (len %zu) = %#" PRIx64 ", want %#" PRIx64, len, v,
		     want);
}

static inline void x_expect_absent(connreg_t *r, const void *id, size_t len)
{
	uint64_t v = 0;
	int rc = connreg_get_transport(r, id, len, &v);
	cr_assert_eq(rc, -ENOENT, "get_transport (len %zu) = %d (%s), want -ENOENT", len, rc,
		     connreg_strerror(rc));
}

/* Milliseconds elapsed since t0 (t_now_ns()). */
static inline double x_ms_since(uint64_t t0_ns)
{
	return (double)(t_now_ns() - t0_ns) / 1e6;
}

/* Fisher-Yates shuffle of n size_t values. */
static inline void x_shuffle(size_t *a, size_t n, uint64_t *seed)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)(t_rand(seed) % i);
		size_t tmp = a[i - 1];
		a[i - 1] = a[j];
		a[j] = tmp;
	}
}

/* Child side of a one-byte "hold" pipe: block until the parent closes it or writes. */
static inline char x_pipe_wait(int fd)
{
	char c = 0;
	ssize_t k;
	do
		k = read(fd, &c, 1);
	while (k < 0 && errno == EINTR);
	return k == 1 ? c : 0;
}

/* Wait for a child, asserting it exited 0 (within timeout_ms). */
#define X_ASSERT_CHILD_OK(pid, timeout_ms, rep)                                                \
	do {                                                                                   \
		int _st = t_wait((pid), (timeout_ms));                                         \
		cr_assert_eq(_st, 0,                                                           \
			     "child %d ended with %d (>=1000: signal/timeout); %d failed "    \
			     "check(s), first at line %d: %s",                                 \
			     (int)(pid), _st, atomic_load(&(rep)->nfail), (rep)->line,         \
			     (rep)->what);                                                     \
	} while (0)

/* connreg_check report collector. */
struct x_reports {
	int n;
	char first[256];
};

static inline void x_report_cb(const char *problem, void *arg)
{
	struct x_reports *xr = arg;
	if (xr->n++ == 0)
		snprintf(xr->first, sizeof xr->first, "%s", problem ? problem : "(null)");
}

/* Assert connreg_check finds nothing and never calls its report callback. */
#define X_ASSERT_CHECK_CLEAN(reg)                                                              \
	do {                                                                                   \
		struct x_reports _xr = { 0, "" };                                              \
		int _rc = connreg_check((reg), x_report_cb, &_xr);                             \
		cr_assert_eq(_rc, 0, "connreg_check = %d (%d reports), first: %s", _rc,        \
			     _xr.n, _xr.first);                                                \
		cr_assert_eq(_xr.n, 0, "report called %d times on a sound registry: %s",     \
			     _xr.n, _xr.first);                                                \
	} while (0)

#endif /* CONNREG_TESTS_EXT_COMMON_H */
