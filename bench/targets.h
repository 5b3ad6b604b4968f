/*
 * targets.h: the performance targets, evaluated as ratios within
 * one run (never asserted: a miss is reported with how far off it is).
 */
#ifndef BENCH_TARGETS_H
#define BENCH_TARGETS_H

#include <stdbool.h>

#include "bench.h"

struct target {
	char id[48];
	char what[200];
	bool available;		/* both figures were measured */
	bool at_most;		/* met when value <= limit (else value >= limit) */
	double value, limit;	/* value from the workers' CPU time (the verdict) */
	double value_wall;	/* the same from wall-clock time */
	double min_oncpu;	/* least on-CPU share of the workers involved (< 0.9: disturbed) */
	const char *unit;
	bool met;
	double off_pct;		/* how far past the limit, in % of the limit (0 when met) */
	char detail[240];	/* the figures behind the value */
};

#define MAX_TARGETS 24

unsigned targets_evaluate(const struct results *r, struct target *out, unsigned max);

#endif /* BENCH_TARGETS_H */
