/*
 * workers.c: process and thread orchestration, CPU pinning, the
 * repetition protocol (see workers.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workers.h"

#define READY_TIMEOUT_NS (120ull * 1000000000ull)
#define DONE_GRACE_NS (60ull * 1000000000ull)

const char *role_name(enum role r)
{
	switch (r) {
	case ROLE_READ:
		return "read";
	case ROLE_BULK:
		return "bulk";
	case ROLE_UPDATE:
		return "update";
	case ROLE_STORM:
		return "storm";
	case ROLE_CHURN:
		return "churn";
	}
	return "?";
}

unsigned cpus_allowed(int *cpus, unsigned max)
{
	cpu_set_t set;
	unsigned n = 0;

	if (sched_getaffinity(0, sizeof(set), &set) != 0) {
		long k = sysconf(_SC_NPROCESSORS_ONLN);

		for (long i = 0; i < k && n < max; i++)
			cpus[n++] = (int)i;
		return n;
	}
	for (int i = 0; i < CPU_SETSIZE && n < max; i++)
		if (CPU_ISSET(i, &set))
			cpus[n++] = i;
	return n;
}

/* ---- worker side ---- */

static long futex(_Atomic uint32_t *word, int op, uint32_t val)
{
	/* Not FUTEX_PRIVATE: the word is shared with forked processes. */
	return syscall(SYS_futex, word, op, val, NULL, NULL, 0);
}

void worker_ready(struct worker *w)
{
	atomic_fetch_add_explicit(&w->ctl->ready, 1, memory_order_release);
}

void worker_wait_go(struct worker *w, unsigned r)
{
	for (;;) {
		uint32_t g = atomic_load_explicit(&w->ctl->go, memory_order_acquire);

		if (g > r)
			return;
		/* Sleeps only while go still equals g: a wake in between is not lost. */
		futex(&w->ctl->go, FUTEX_WAIT, g);
	}
}

void worker_finish(struct worker *w, unsigned r, const struct worker_result *res)
{
	w->ctl->res[r][w->index] = *res;
	atomic_fetch_add_explicit(&w->ctl->done[r], 1, memory_order_release);
}

static void fail(struct worker *w, int err)
{
	int32_t zero = 0;

	atomic_compare_exchange_strong(&w->ctl->failed, &zero, err ? err : 1);
}

static int pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* 0: the calling thread (a process's only thread, or this pthread). */
	return sched_setaffinity(0, sizeof(set), &set) == 0 ? 0 : -errno;
}

static int worker_main(struct worker *w)
{
	struct instance *in = w->in;
	void *h = NULL;
	int rc;

	rc = pin_self(w->cpu);
	if (rc) {
		fprintf(stderr, "bench: worker %u: sched_setaffinity(cpu %d): %s\n", w->index,
			w->cpu, strerror(-rc));
		fail(w, rc);
		return rc;
	}
	rc = in->c->attach(in, &h);
	if (rc) {
		fprintf(stderr, "bench: %s worker %u: attach failed: %s\n", in->c->name, w->index,
			strerror(rc < 0 ? -rc : rc));
		fail(w, rc);
		return rc;
	}
	rc = in->c->run(in, h, w);
	if (rc) {
		fprintf(stderr, "bench: %s worker %u (%s): failed: %d\n", in->c->name, w->index,
			role_name(w->role), rc);
		fail(w, rc);
	}
	in->c->detach(in, h);
	return rc;
}

static void *worker_thread(void *arg)
{
	return (void *)(intptr_t)worker_main(arg);
}

/* ---- parent side ---- */

struct run_ctl *run_ctl_new(unsigned reps, unsigned workers, uint32_t sample_cap)
{
	size_t head = (sizeof(struct run_ctl) + 63) & ~(size_t)63;
	size_t bytes = head + (size_t)reps * workers * sample_cap * sizeof(uint32_t);
	struct run_ctl *c;

	if (reps == 0 || reps > MAX_REPS || workers == 0 || workers > MAX_WORKERS)
		return NULL;
	c = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c == MAP_FAILED)
		return NULL;
	c->reps = reps;
	c->workers = workers;
	c->sample_cap = sample_cap;
	c->bytes = bytes;
	c->samples = (uint32_t *)((char *)c + head);
	return c;
}

void run_ctl_free(struct run_ctl *c)
{
	if (c)
		munmap(c, c->bytes);
}

static void release_all(struct run_ctl *c)
{
	atomic_store(&c->stop, c->reps);
	atomic_store(&c->go, c->reps);
	futex(&c->go, FUTEX_WAKE, INT32_MAX);
}

static void set_failed(struct group *g, int err)
{
	int32_t zero = 0;

	atomic_compare_exchange_strong(&g->ctl->failed, &zero, err ? err : 1);
	if (!g->failed)
		g->failed = atomic_load(&g->ctl->failed);
}

static bool any_child_exited(struct group *g, int *status)
{
	for (unsigned i = 0; i < g->started; i++) {
		struct spawned *s = &g->s[i];

		if (s->thread || s->joined)
			continue;
		if (waitpid(s->pid, status, WNOHANG) == s->pid) {
			s->joined = true;
			return true;
		}
	}
	return false;
}

/* Wait until *ctr reaches want; false on a failure or timeout. */
static bool wait_count(struct group *g, _Atomic uint32_t *ctr, uint32_t want, uint64_t timeout_ns)
{
	uint64_t t0 = now_ns();
	int status;

	while (atomic_load_explicit(ctr, memory_order_acquire) < want) {
		if (atomic_load(&g->ctl->failed)) {
			set_failed(g, atomic_load(&g->ctl->failed));
			return false;
		}
		/*
		 * A worker that exits 0 has finished its last rep (its done++
		 * may have landed after our load above): look again.
		 */
		if (any_child_exited(g, &status) && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
			fprintf(stderr, "bench: a %s worker process died (status 0x%x)\n",
				g->in->c->name, status);
			set_failed(g, 1);
			return false;
		}
		if (now_ns() - t0 > timeout_ns) {
			fprintf(stderr, "bench: %s workers did not report within %.0f s\n",
				g->in->c->name, (double)timeout_ns / 1e9);
			set_failed(g, -ETIMEDOUT);
			return false;
		}
		sleep_ns(50000);
	}
	return true;
}

int group_start(struct group *g)
{
	struct run_ctl *ctl = g->ctl;

	g->started = 0;
	g->failed = 0;
	memset(g->s, 0, sizeof(g->s));
	fflush(NULL);	/* no stdio buffer is duplicated into a child */
	for (unsigned i = 0; i < g->nworkers; i++) {
		struct worker *w = &g->w[i];
		struct spawned *s = &g->s[i];
		int rc;

		w->ctl = ctl;
		w->in = g->in;
		w->index = i;
		w->reps = ctl->reps;
		if (g->in->c->processes) {
			pid_t pid = fork();

			if (pid < 0) {
				fprintf(stderr, "bench: fork: %s\n", strerror(errno));
				set_failed(g, -errno);
				break;
			}
			if (pid == 0)
				_exit(worker_main(w) ? 1 : 0);
			s->pid = pid;
		} else {
			s->thread = true;
			rc = pthread_create(&s->tid, NULL, worker_thread, w);
			if (rc) {
				fprintf(stderr, "bench: pthread_create: %s\n", strerror(rc));
				set_failed(g, -rc);
				break;
			}
		}
		g->started++;
	}
	if (!g->failed)
		wait_count(g, &ctl->ready, g->nworkers, READY_TIMEOUT_NS);
	if (g->failed)
		release_all(ctl);
	return g->failed;
}

int group_rep(struct group *g, unsigned r, uint64_t run_ns)
{
	struct run_ctl *ctl = g->ctl;

	if (g->failed)
		return g->failed;
	atomic_store_explicit(&ctl->go, r + 1, memory_order_release);
	futex(&ctl->go, FUTEX_WAKE, INT32_MAX);
	sleep_ns(run_ns);
	atomic_store_explicit(&ctl->stop, r + 1, memory_order_release);
	if (!wait_count(g, &ctl->done[r], g->nworkers, run_ns + DONE_GRACE_NS))
		release_all(ctl);
	return g->failed;
}

int group_finish(struct group *g)
{
	bool kill_them = g->failed == -ETIMEDOUT;

	release_all(g->ctl);
	for (unsigned i = 0; i < g->started; i++) {
		struct spawned *s = &g->s[i];

		if (s->joined)
			continue;
		if (s->thread) {
			void *ret = NULL;

			pthread_join(s->tid, &ret);
			if (ret && !g->failed)
				g->failed = 1;
		} else {
			int status = 0;

			if (kill_them)
				kill(s->pid, SIGKILL);
			while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
				;
			if ((!WIFEXITED(status) || WEXITSTATUS(status) != 0) && !g->failed)
				g->failed = 1;
		}
		s->joined = true;
	}
	return g->failed;
}
