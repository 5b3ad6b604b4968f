/*
 * notify.c: the futex operations behind every bucket's event count
 * (Concurrency Kit ck_ec32), shared by the writers' wake-up (notify.h)
 * and the waiters (wait.c). Shared (not private) futexes, so a writer in
 * one process wakes waiters in another; ck_ec keeps no pointer in the
 * counter, so it can live in the segment.
 */
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"

static int cr_ec_gettime(const struct ck_ec_ops *ops, struct timespec *out)
{
	(void)ops;
	return clock_gettime(CLOCK_MONOTONIC, out);
}

static void cr_ec_wait32(const struct ck_ec_wait_state *ws, const uint32_t *addr,
			 uint32_t expected, const struct timespec *deadline)
{
	(void)ws;
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
	syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, expected, deadline, NULL,
		FUTEX_BITSET_MATCH_ANY);
}

static void cr_ec_wake32(const struct ck_ec_ops *ops, const uint32_t *addr)
{
	(void)ops;
	syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static const struct ck_ec_ops cr_ec_ops = {
	.gettime = cr_ec_gettime,
	.wait32 = cr_ec_wait32,
	.wake32 = cr_ec_wake32,
};

const struct ck_ec_mode cr_ec_mode = {
	.ops = &cr_ec_ops,
	.single_producer = false,
};
