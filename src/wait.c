/*
 * wait.c: connreg_wait_transport, and the wake-up that writers send.
 *
 * Each bucket carries a Concurrency Kit event count (struct ck_ec32) for
 * the ids homed there. Writers bump it after every publishing CAS
 * (cr_notify); ck_ec only makes a system call when its waiter bit is set.
 * A waiter snapshots the count, checks the id, and sleeps until the count
 * moves. ck_ec keeps no pointer in the counter; its futex operations are
 * supplied per process (cr_ec_ops), and use shared (not private) futexes
 * so a writer in one process wakes waiters in another.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "index.h"
#include "rcu.h"
#include "notify.h"

int connreg_wait_transport(connreg_t *reg, const void *id, size_t id_len, uint64_t seen,
			   uint64_t *transport, int timeout_ms)
{
	struct timespec deadline;
	uint64_t v;
	int rc;

	if (!reg || !id || !transport || id_len == 0 || timeout_ms < -1)
		return -EINVAL;
	if (id_len > reg->key_max)
		return -ENAMETOOLONG;
	if (timeout_ms >= 0)
		cr_deadline_after(&deadline, CLOCK_MONOTONIC, (unsigned)timeout_ms);
	struct ck_ec32 *ec = &reg->index[cr_home(reg, cr_hash(reg, id, id_len))].wake;

	for (;;) {
		/*
		 * ORD-17(r): snapshot first (ck_ec32_value: acquire), then look: a change
		 * published after the snapshot moves the count (cr_notify's
		 * increment follows the publishing CAS), so the wait below
		 * returns at once instead of missing it.
		 */
		uint32_t snap = ck_ec32_value(ec);

		rc = connreg_get_transport(reg, id, id_len, &v);
		if (rc == 0 && v != seen) {
			*transport = v;
			return 0;
		}
		if (rc != 0 && rc != -ENOENT)
			return rc;
		if (ck_ec32_wait(ec, &cr_ec_mode, snap, timeout_ms >= 0 ? &deadline : NULL) != 0)
			break;	/* deadline passed without a change */
	}
	/* One last look: a change may have landed with the deadline. */
	rc = connreg_get_transport(reg, id, id_len, &v);
	if (rc == 0 && v != seen) {
		*transport = v;
		return 0;
	}
	return rc == 0 || rc == -ENOENT ? -ETIMEDOUT : rc;
}
