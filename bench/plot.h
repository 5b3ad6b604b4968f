/*
 * plot.h: PNG charts with gnuplot. The data files (.dat) and the script
 * (charts.gp) are written to the directory first, then gnuplot runs on
 * them, so the charts can be redrawn or restyled by hand later.
 */
#ifndef BENCH_PLOT_H
#define BENCH_PLOT_H

#include "bench.h"

/* Returns 0, or -1 when the directory or gnuplot failed (a message says which). */
int plot_write(const char *dir, const struct results *r);

#endif /* BENCH_PLOT_H */
