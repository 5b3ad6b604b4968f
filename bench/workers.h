/*
 * workers.h: running readers and writers as processes or threads, pinned
 * to CPUs, through repetitions started and stopped by the parent.
 *
 * A group is the workers of one figure (one contender, one scenario, one
 * reader count). The parent starts the groups of every contender for a
 * scenario one after the other, then runs their repetitions interleaved:
 * rep 0 of each contender, rep 1 of each, ... so that a burst of noise from
 * other processes on the machine lands on every contender alike and the
 * ratios between them stay fair. Only one group runs at a time; the others
 * sleep in a futex.
 *
 * Protocol (all words live in one MAP_SHARED anonymous mapping created
 * before any fork, so processes and threads use it alike):
 *   worker: attach, warm up, ready++; for each rep r: sleep until go > r,
 *           warm up briefly, time until stop > r, write res[r][me],
 *           done[r]++; detach, exit.
 *   parent: wait ready == workers; per rep: go = r+1 (futex wake), sleep,
 *           stop = r+1, wait done[r] == workers; at the end, join.
 * A worker that fails sets `failed`; the parent then releases every rep of
 * that group at once (go = stop = reps) so that its workers finish and exit.
 */
#ifndef BENCH_WORKERS_H
#define BENCH_WORKERS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "contender.h"
#include "keys.h"
#include "timing.h"

#define MAX_REPS 32u
#define MAX_WORKERS 16u
#define MAX_BATCH 64u

enum role {
	ROLE_READ,	/* single lookups over the sequence */
	ROLE_BULK,	/* bulk lookups, `batch` ids per call */
	ROLE_UPDATE,	/* re-point hit ids, at `rate` per second or as fast as possible */
	ROLE_STORM,	/* reconnect storms: re-point every id of one transport, back to back */
	ROLE_CHURN,	/* unregister a live id, register a new one */
};

const char *role_name(enum role r);

struct worker_result {
	uint64_t ops;		/* lookups (readers) or writer ops */
	uint64_t ticks;		/* TSC ticks from go to stop */
	uint64_t sample_ticks;	/* ticks spent inside timed brackets (incl. timer cost) */
	uint64_t sampled_ops;	/* ops inside timed brackets */
	uint64_t nsamples;	/* samples offered to the reservoir */
	uint64_t hits;		/* lookups that found their id */
	uint64_t errors;	/* writer calls that failed */
	uint64_t storms;	/* completed reconnect storms */
	uint64_t checksum;	/* keeps the compiler from dropping lookups */
	uint64_t cpu_ns;	/* this worker's own CPU time during the rep */
};

struct run_ctl {
	_Atomic uint32_t ready;
	_Atomic uint32_t go;	/* futex word */
	_Atomic uint32_t stop;
	_Atomic int32_t failed;	/* first failure: negative errno, or 1 */
	_Atomic uint32_t done[MAX_REPS];
	struct worker_result res[MAX_REPS][MAX_WORKERS];
	unsigned reps, workers;
	uint32_t sample_cap;	/* samples kept per worker per rep */
	size_t bytes;
	uint32_t *samples;	/* [rep][worker][sample_cap] ticks, in the same mapping */
};

struct worker {
	unsigned index;
	enum role role;
	int cpu;		/* -1: not pinned */
	struct run_ctl *ctl;
	struct instance *in;
	unsigned reps;
	const struct sequence *seq;
	size_t seq_start;
	unsigned sample_period;	/* time 1 op in this many; 0: none */
	unsigned batch;		/* ROLE_BULK: ids per call */
	double rate;		/* ROLE_UPDATE: ops per second, 0: unthrottled */
	uint64_t warmup_ticks;	/* before the first rep */
	uint64_t rep_warmup_ticks; /* at the start of every rep, untimed */
	uint64_t rng;		/* reservoir sampling */
};

/* ---- worker side (inlined into the timed loops) ---- */

static inline bool worker_should_stop(const struct worker *w, unsigned r)
{
	return atomic_load_explicit(&w->ctl->stop, memory_order_relaxed) > r;
}

static inline uint32_t *worker_samples(const struct worker *w, unsigned r)
{
	const struct run_ctl *c = w->ctl;

	return c->samples + ((size_t)r * c->workers + w->index) * c->sample_cap;
}

/*
 * Record one timed bracket of `ticks` covering `ops` operations. The
 * reservoir keeps a uniform sample of at most sample_cap of them, with the
 * timer's own cost taken off.
 */
static inline void worker_sample(struct worker *w, unsigned r, struct worker_result *res,
				 uint64_t ticks, unsigned ops)
{
	uint64_t k = res->nsamples++;
	uint64_t net = ticks > bench_clock.overhead_ticks ? ticks - bench_clock.overhead_ticks : 0;
	uint32_t v = net > UINT32_MAX ? UINT32_MAX : (uint32_t)net;
	uint32_t cap = w->ctl->sample_cap;

	res->sample_ticks += ticks;
	res->sampled_ops += ops;
	if (k < cap) {
		worker_samples(w, r)[k] = v;
	} else {
		uint64_t j = rng_below(&w->rng, k + 1);

		if (j < cap)
			worker_samples(w, r)[j] = v;
	}
}

/* CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), ns. */
static inline uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void worker_ready(struct worker *w);
void worker_wait_go(struct worker *w, unsigned r);
void worker_finish(struct worker *w, unsigned r, const struct worker_result *res);

/* ---- parent side ---- */

struct run_ctl *run_ctl_new(unsigned reps, unsigned workers, uint32_t sample_cap);
void run_ctl_free(struct run_ctl *c);

/* Samples actually kept for (rep, worker). */
static inline uint64_t run_ctl_kept(const struct run_ctl *c, unsigned r, unsigned wi)
{
	uint64_t n = c->res[r][wi].nsamples;

	return n < c->sample_cap ? n : c->sample_cap;
}

static inline const uint32_t *run_ctl_samples(const struct run_ctl *c, unsigned r, unsigned wi)
{
	return c->samples + ((size_t)r * c->workers + wi) * c->sample_cap;
}

struct spawned {
	bool thread;
	bool joined;
	pid_t pid;
	pthread_t tid;
};

struct group {
	struct instance *in;
	struct worker w[MAX_WORKERS];
	unsigned nworkers;
	struct run_ctl *ctl;
	struct spawned s[MAX_WORKERS];
	unsigned started;
	int failed;		/* 0, or the first failure */
};

/*
 * Spawn g->nworkers workers (processes if in->c->processes, else threads)
 * for g->ctl->reps repetitions and wait until each has attached and warmed
 * up. Returns 0 or the failure (also left in g->failed).
 */
int group_start(struct group *g);

/* Run rep r: go, sleep run_ns, stop, wait for every worker. 0 or failure. */
int group_rep(struct group *g, unsigned r, uint64_t run_ns);

/* Release what is left, join every worker. Returns g->failed. */
int group_finish(struct group *g);

/* CPUs this process may run on (sched_getaffinity), in order. */
unsigned cpus_allowed(int *cpus, unsigned max);

#endif /* BENCH_WORKERS_H */
