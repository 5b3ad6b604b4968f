/*
 * test_linearizability.c: multi-process histories checked for
 * linearizability per id (tests/lincheck.h). Worker processes (fork, then
 * open by name) run random set/get/delete/update/cas operations on a few
 * shared ids, stamping each with CLOCK_MONOTONIC at invocation and
 * response into a shared log. The checker must accept the real library's
 * histories and reject those of a deliberately broken build (writers that
 * publish an entry before filling in its transport, breaking INV-2 as
 * readers see it; ORD-5 in docs/design.md §14).
 */
#include <criterion/criterion.h>

#include "common.h"
#include "fault.h"
#include "lincheck.h"

#define LZ_PROCS 4
#define LZ_OPS 3000
#define LZ_IDS 4

struct lz_log {
	struct lc_op op[LZ_PROCS][LZ_OPS];
	atomic_uint ready;
};

struct lz_args {
	const char *name;
	struct lz_log *log;
	int proc;
	int broken;
};

static void lz_fini(void)
{
	t_cleanup_names();
}

TestSuite(linearizability, .fini = lz_fini, .timeout = 120);

static int lz_worker(void *p)
{
	struct lz_args *a = p;
	struct lc_op *ops = a->log->op[a->proc];
	uint64_t s = 0x1234567ull * (uint64_t)(a->proc + 1), seq = 0;
	connreg_t *r;
	uint8_t id[T_ID_LEN];

	if (connreg_open(a->name, &r) != 0)
		return 10;
	/* Only even workers write broken; odd ones read what they publish. */
	cr_debug_publish_unfilled = a->broken && !(a->proc & 1);
	t_barrier(&a->log->ready, LZ_PROCS, 10000);
	for (int k = 0; k < LZ_OPS; k++) {
		struct lc_op *op = &ops[k];
		uint32_t i = (uint32_t)(t_rand(&s) % LZ_IDS);
		size_t n = t_id(id, 5, i);
		/* Unique, never zero: process in the high bits, sequence below. */
		uint64_t v = ((uint64_t)(a->proc + 1) << 40) | ++seq;

		memset(op, 0, sizeof(*op));
		op->id = (uint8_t)i;
		op->kind = (uint8_t)(t_rand(&s) % 8);
		if (op->kind > LC_CAS)
			op->kind = LC_GET;	/* reads are half the mix */
		op->arg = v;
		if (op->kind == LC_CAS) {
			/* Expect what we last saw somewhere: sometimes right, sometimes stale. */
			op->arg = k > 0 ? ops[k - 1].out : 0;
			op->arg2 = v;
		}
		op->inv = t_now_ns();
		switch (op->kind) {
		case LC_SET:
			op->rc = connreg_register(r, id, n, v);
			break;
		case LC_GET:
			op->rc = connreg_get_transport(r, id, n, &op->out);
			break;
		case LC_DEL:
			op->rc = connreg_unregister(r, id, n);
			break;
		case LC_UPD:
			op->rc = connreg_update_transport(r, id, n, v);
			break;
		default:
			op->rc = connreg_cas_transport(r, id, n, op->arg, op->arg2, &op->out);
			break;
		}
		op->resp = t_now_ns();
		if (op->rc == -EAGAIN && op->kind != LC_CAS)
			return 11;	/* reclamation stalled: not expected here */
	}
	cr_debug_publish_unfilled = 0;
	connreg_close(r);
	return 0;
}

/* Run the workers; return how many ids had a non-linearizable history. */
static int lz_run(int broken)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(64, 0, 0);
	connreg_t *r;
	struct lz_log *log = t_shared(sizeof(*log));
	struct lz_args a[LZ_PROCS];
	pid_t pid[LZ_PROCS];
	static struct lc_op per_id[LZ_PROCS * LZ_OPS];
	int bad = 0;

	cr_assert_not_null(log);
	t_name(name, broken ? "linbad" : "lin");
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	for (int p = 0; p < LZ_PROCS; p++) {
		a[p] = (struct lz_args){ name, log, p, broken };
		pid[p] = t_fork(lz_worker, &a[p]);
		cr_assert_gt(pid[p], 0);
	}
	for (int p = 0; p < LZ_PROCS; p++)
		cr_assert_eq(t_wait(pid[p], 60000), 0, "worker %d failed", p);
	for (uint8_t i = 0; i < LZ_IDS; i++) {
		size_t n = 0;

		for (int p = 0; p < LZ_PROCS; p++)
			for (int k = 0; k < LZ_OPS; k++)
				if (log->op[p][k].id == i)
					per_id[n++] = log->op[p][k];
		int res = lc_check(per_id, n, (struct lc_state){ false, 0 });
		cr_assert_neq(res, -1, "id %u: checker gave up on %zu operations", i, n);
		bad += res == 0;
	}
	connreg_close(r);
	munmap(log, sizeof(*log));
	return bad;
}

Test(linearizability, checker_accepts_and_rejects_hand_made_histories)
{
	/* Two overlapping sets then reads: either order is fine, a third value is not. */
	struct lc_op good[] = {
		{ .inv = 0, .resp = 10, .kind = LC_SET, .arg = 1 },
		{ .inv = 5, .resp = 15, .kind = LC_SET, .arg = 2 },
		{ .inv = 20, .resp = 30, .kind = LC_GET, .out = 1 },
		{ .inv = 31, .resp = 40, .kind = LC_CAS, .arg = 1, .arg2 = 3 },
		{ .inv = 41, .resp = 50, .kind = LC_UPD, .arg = 4 },
		{ .inv = 51, .resp = 60, .kind = LC_DEL },
		{ .inv = 61, .resp = 70, .kind = LC_GET, .rc = -ENOENT },
		{ .inv = 71, .resp = 80, .kind = LC_UPD, .arg = 5, .rc = -ENOENT },
	};
	cr_assert_eq(lc_check(good, sizeof(good) / sizeof(good[0]), (struct lc_state){ 0 }), 1);

	/* A read of the older value after a later, completed write: not linearizable. */
	struct lc_op stale[] = {
		{ .inv = 0, .resp = 10, .kind = LC_SET, .arg = 1 },
		{ .inv = 11, .resp = 20, .kind = LC_SET, .arg = 2 },
		{ .inv = 21, .resp = 30, .kind = LC_GET, .out = 1 },
	};
	cr_assert_eq(lc_check(stale, 3, (struct lc_state){ 0 }), 0);

	/* A CAS that failed while the value it expected was the only one possible. */
	struct lc_op cas[] = {
		{ .inv = 0, .resp = 10, .kind = LC_SET, .arg = 7 },
		{ .inv = 11, .resp = 20, .kind = LC_CAS, .arg = 7, .arg2 = 8, .rc = -EAGAIN, .out = 9 },
	};
	cr_assert_eq(lc_check(cas, 2, (struct lc_state){ 0 }), 0);

	/* A value never written. */
	struct lc_op ghost[] = {
		{ .inv = 0, .resp = 10, .kind = LC_GET, .out = 0 },
	};
	cr_assert_eq(lc_check(ghost, 1, (struct lc_state){ 0 }), 0);
}

Test(linearizability, multi_process_histories_are_linearizable_per_id)
{
	for (int round = 0; round < 3; round++)
		cr_assert_eq(lz_run(0), 0, "round %d: a history was not linearizable", round);
}

Test(linearizability, checker_catches_the_broken_publish_build)
{
	int caught = 0;

	/* The broken window is 200 us per write; a few runs make detection certain. */
	for (int round = 0; round < 5 && !caught; round++)
		caught = lz_run(1) > 0;
	cr_assert(caught, "the checker passed a build that publishes unfilled entries");
}
