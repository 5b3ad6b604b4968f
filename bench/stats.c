/*
 * stats.c: medians and percentiles.
 */
#include <math.h>
#include <stdlib.h>

#include "stats.h"

const double pct_points[NPCT] = { 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100 };
const char *const pct_names[NPCT] = { "p50",  "p75",   "p90",    "p95",    "p99",
				      "p995", "p999",  "p9995",  "p9999",  "max" };

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

struct triple stats_triple(double *v, size_t n)
{
	struct triple t = { NAN, NAN, NAN };
	size_t k = 0;

	/* A rep without a figure (e.g. a reader that got no CPU at all) is left out. */
	for (size_t i = 0; i < n; i++)
		if (!isnan(v[i]))
			v[k++] = v[i];
	n = k;
	if (n == 0)
		return t;
	qsort(v, n, sizeof(*v), cmp_double);
	t.min = v[0];
	t.max = v[n - 1];
	t.med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return t;
}

void stats_percentiles(uint32_t *v, size_t n, double scale, double out[NPCT])
{
	if (n == 0) {
		for (int i = 0; i < NPCT; i++)
			out[i] = NAN;
		return;
	}
	qsort(v, n, sizeof(*v), cmp_u32);
	for (int i = 0; i < NPCT; i++) {
		/* Nearest rank: the smallest value with at least p% at or below it. */
		double rank = ceil(pct_points[i] / 100.0 * (double)n);
		size_t k = rank < 1 ? 0 : (size_t)rank - 1;

		if (k >= n)
			k = n - 1;
		out[i] = (double)v[k] * scale;
	}
}
