/*
 * bench.h: the run configuration and the figures a run produces.
 */
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine.h"
#include "stats.h"

#define MAX_NS 8
#define MAX_CPUS 256

struct bench_config {
	bool quick;
	unsigned reps;		/* repetitions per figure */
	uint64_t duration_ns;	/* per repetition */
	uint64_t warmup_ns;	/* per worker, once per figure */
	uint64_t rep_warmup_ns;	/* per worker, at the start of every rep (untimed) */
	unsigned sample_period;	/* time 1 lookup in this many; 0: none */
	uint32_t sample_cap;	/* samples kept per worker per repetition */
	double rate;		/* fixed updater rate, ops/s */
	unsigned batch;		/* bulk_lookup ids per call */
	double headroom_pct;	/* connreg capacity = n * (1 + headroom/100) */
	uint64_t seed;
	bool pin;
	unsigned max_readers;
	uint64_t n[MAX_NS];
	unsigned n_count;
	const char *contenders;	/* comma list, NULL: all built */
	const char *scenarios;	/* comma list, NULL: all */
	const char *json_path;
	const char *plot_dir;
	int cpus[MAX_CPUS];	/* CPUs we may use, in pinning order */
	unsigned ncpus;
	unsigned online_cpus;
};

struct figure {
	const char *scenario;
	const char *contender;
	bool processes;		/* workers were processes (else threads) */
	uint64_t n;
	unsigned readers;
	const char *writer;	/* writer role, NULL: none */
	double writer_rate;	/* 0: as fast as it can */
	unsigned reps;
	unsigned batch;		/* ids per bulk call (1: single lookups) */

	struct triple ns;	/* ns per lookup: mean over readers, per repetition */
	struct triple ns_worst;	/* ns per lookup of the slowest reader */
	struct triple ns_cpu;	/* ns per lookup counting only the readers' own CPU time */
	struct triple ns_cpu_worst; /* the same for the slowest reader */
	double oncpu;		/* share of wall time the readers were on a CPU (median) */
	double w_oncpu;		/* the same for the writer */
	struct triple agg;	/* lookups/s summed over readers */
	struct triple wops;	/* writer ops/s */
	double pct[NPCT];	/* reader latency, ns per lookup, pooled over reps and readers */
	uint64_t nsamples;
	double wpct[NPCT];	/* writer latency, ns per op (per storm for reconnect_storm) */
	uint64_t wnsamples;
	double storm_ids;	/* ids re-pointed per storm */
	double hit_ratio;
	uint64_t lookup_errors;	/* lookup_hit misses / lookup_miss hits */
	uint64_t writer_errors;
	char pinning[160];
	double busy_cpus;	/* CPUs busy on average while it ran (all processes) */
	double steal_pct;	/* CPU time the hypervisor gave to other guests */
	double grace_periods;	/* connreg: epoch advance during the figure; NaN elsewhere */
	/*
	 * connreg with a writer: its lookup_hit without the writer, measured
	 * in the same block (reps interleaved); NaN elsewhere.
	 */
	struct triple ref_ns, ref_ns_cpu;
	double ref_oncpu;
	int failed;		/* 0, or the worker failure code */
};

struct instance_info {
	const char *contender;
	uint64_t n;
	double populate_s;
};

struct results {
	struct figure *fig;
	size_t len, cap;
	struct instance_info inst[64];
	unsigned n_inst;
	struct machine machine;
	const struct bench_config *cfg;
	char skipped[512];	/* contenders not built, with the reason */
	double loadavg_end;
};

struct figure *results_add(struct results *r);

/* The figure for (scenario, contender, n, readers), or NULL. */
const struct figure *results_find(const struct results *r, const char *scenario,
				  const char *contender, uint64_t n, unsigned readers);

#endif /* BENCH_BENCH_H */
