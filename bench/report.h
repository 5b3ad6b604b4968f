/*
 * report.h: everything the harness prints or writes: the header (machine,
 * method), one machine-readable RESULT line per figure, the table, the
 * connreg-to-peer ratios, the targets, and the JSON file.
 */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "bench.h"

void report_header(FILE *out, const struct results *r);
void report_result_line(FILE *out, const struct figure *f);
void report_table(FILE *out, const struct results *r);
void report_ratios(FILE *out, const struct results *r);
/* Returns the number of targets missed. */
unsigned report_targets(FILE *out, const struct results *r);
int report_json(const char *path, const struct results *r);

/*
 * Ratio of connreg's figure to f's: ns per lookup (wall clock, or counting
 * only the readers' CPU time); writer ops/s when there are no readers.
 */
double report_ratio(const struct results *r, const struct figure *f, bool on_cpu);

#endif /* BENCH_REPORT_H */
