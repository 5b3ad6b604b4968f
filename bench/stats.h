/*
 * stats.h: medians over repetitions and percentiles over latency samples.
 */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

/* A figure over repetitions: the median, with the smallest and largest. */
struct triple {
	double med, min, max;
};

/* Median/min/max of the non-NaN values of v[0..n) (v is reordered); none: NaN. */
struct triple stats_triple(double *v, size_t n);

/* Percentiles reported for every latency distribution. */
#define NPCT 10
extern const double pct_points[NPCT];	/* 50 75 90 95 99 99.5 99.9 99.95 99.99 100 */
extern const char *const pct_names[NPCT]; /* p50 ... max */

enum { PCT_P50 = 0, PCT_P90 = 2, PCT_P99 = 4, PCT_P999 = 6, PCT_P9999 = 8, PCT_MAX = 9 };

/*
 * Sort v[0..n) and fill out[NPCT] (nearest rank), scaled by `scale`
 * (e.g. ns per tick / ids per sample). n == 0 fills NaN.
 */
void stats_percentiles(uint32_t *v, size_t n, double scale, double out[NPCT]);

#endif /* BENCH_STATS_H */
