/*
 * test_handle_cycles.c: a thread pool whose handle is closed and reopened
 * by another thread, again and again, must not leak reader slots or
 * liveness tokens (issue #9): only a mutex's owner can unlock it, so each
 * pool thread lets go of the token of a closed handle at its next first
 * call through a new one.
 */
#include "common.h"

#include <criterion/criterion.h>

#define HC_THREADS 4
#define HC_CYCLES 60

struct hc_pool {
	connreg_t *_Atomic reg;		/* the handle of the current cycle */
	atomic_uint cycle;		/* bumped by main after each reopen */
	atomic_uint done[HC_THREADS];	/* cycle each thread finished */
	atomic_int bad;
	atomic_bool stop;
};

struct hc_arg {
	struct hc_pool *p;
	unsigned i;
};

static void *hc_worker(void *arg)
{
	struct hc_arg *a = arg;
	struct hc_pool *p = a->p;
	unsigned seen = 0;

	while (!atomic_load(&p->stop)) {
		unsigned c = atomic_load(&p->cycle);

		if (c == seen) {
			sched_yield();
			continue;
		}
		uint64_t v = 0;
		int rc = connreg_get_transport(atomic_load(&p->reg), "k", 1, &v);

		if (rc != 0 || v != c)
			atomic_fetch_add(&p->bad, 1);
		seen = c;
		atomic_store(&p->done[a->i], c);
	}
	return NULL;
}

Test(handle_cycles, pool_threads_survive_many_close_and_reopen_cycles_without_leaking)
{
	char name[T_NAME_BUF];
	/* As many reader slots as pool threads plus main: any leak shows within a cycle or two. */
	connreg_config_t cfg = t_cfg(8, 0, HC_THREADS + 1);
	struct hc_pool p;
	struct hc_arg args[HC_THREADS];
	pthread_t th[HC_THREADS];
	connreg_t *r;

	memset(&p, 0, sizeof p);
	t_name(name, "hcyc");
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	cr_assert_eq(connreg_register(r, "k", 1, 1), 0);
	atomic_store(&p.reg, r);
	for (unsigned i = 0; i < HC_THREADS; i++) {
		args[i] = (struct hc_arg){ &p, i };
		cr_assert_eq(pthread_create(&th[i], NULL, hc_worker, &args[i]), 0);
	}
	atomic_store(&p.cycle, 1);
	for (unsigned c = 1; c <= HC_CYCLES; c++) {
		/* Wait until every pool thread used this cycle's handle. */
		uint64_t deadline = t_now_ms() + 10000;
		for (unsigned i = 0; i < HC_THREADS; i++)
			while (atomic_load(&p.done[i]) != c && t_now_ms() < deadline)
				sched_yield();
		for (unsigned i = 0; i < HC_THREADS; i++)
			cr_assert_eq(atomic_load(&p.done[i]), c, "cycle %u: thread %u stuck", c, i);
		cr_assert_eq(atomic_load(&p.bad), 0, "cycle %u: a lookup failed (a leaked slot or token?)",
			     c);
		/* Close from this thread while the pool threads live, then reopen. */
		connreg_t *next;
		connreg_close(r);
		cr_assert_eq(connreg_open(name, &next), 0);
		cr_assert_eq(connreg_update_transport(next, "k", 1, c + 1), 0, "cycle %u", c);
		r = next;
		atomic_store(&p.reg, r);
		atomic_store(&p.cycle, c + 1);
	}
	atomic_store(&p.stop, true);
	for (unsigned i = 0; i < HC_THREADS; i++)
		pthread_join(th[i], NULL);
	connreg_stats_t st = { .size = sizeof(st) };
	cr_assert_eq(connreg_stats(r, &st), 0);
	cr_assert_leq(st.readers, 1, "%u reader slots still claimed after the pool exited",
		      st.readers);
	cr_assert_eq(connreg_check(r, NULL, NULL), 0);
	connreg_close(r);
	connreg_unlink(name);
}
