/*
 * scenario.h: the named scenarios (the same for every contender) and how
 * one figure is measured.
 */
#ifndef BENCH_SCENARIO_H
#define BENCH_SCENARIO_H

#include <stdbool.h>

#include "bench.h"
#include "contender.h"
#include "keys.h"
#include "workers.h"

struct scenario {
	const char *name;
	const char *what;
	unsigned readers_min;	/* 0: none (writer alone) */
	bool readers_scale;	/* run readers_min .. max readers */
	enum role reader;	/* ROLE_READ or ROLE_BULK */
	enum key_pool pool;	/* what readers look up */
	bool has_writer;
	enum role writer;
	bool fixed_rate;	/* writer paced at cfg->rate */
};

/* In the order they run: churn last, since it changes which ids are registered. */
extern const struct scenario scenario_table[];
extern const unsigned scenario_table_len;

/* Reader counts to run for sc, given the CPUs: out[0..return). */
unsigned scenario_reader_counts(const struct scenario *sc, const struct bench_config *cfg,
				unsigned *out, unsigned max);

struct sequences {
	struct sequence hit, miss;
};

/* One figure being measured: its workers, and what is accumulated over its reps. */
struct figure_run {
	struct group g;
	struct figure *fig;
	const struct scenario *sc;
	unsigned readers, batch;
	uint64_t busy, steal, total;	/* /proc/stat ticks summed over this figure's reps */
	uint64_t epoch0;
	bool have_epoch;
};

/*
 * Set up fig and start its workers (attached, warmed up, waiting for rep 0).
 * Returns 0 or the failure, also left in fig->failed.
 */
int scenario_prepare(const struct bench_config *cfg, struct instance *in,
		     const struct scenario *sc, unsigned readers, const struct sequences *seqs,
		     struct figure *fig, struct figure_run *fr);

/* Run rep r of the figure (nothing once it failed). */
void scenario_rep(const struct bench_config *cfg, struct figure_run *fr, unsigned r);

/* Join the workers and compute the figure. */
void scenario_complete(const struct bench_config *cfg, struct figure_run *fr);

#endif /* BENCH_SCENARIO_H */
