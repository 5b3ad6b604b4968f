/*
 * matrix.h: the whole run: every N, every contender, every scenario,
 * every reader count.
 */
#ifndef BENCH_MATRIX_H
#define BENCH_MATRIX_H

#include "bench.h"

/* Returns the number of figures that failed (they are kept, marked failed). */
int matrix_run(const struct bench_config *cfg, struct results *res);

/* True when name is in the comma-separated list (NULL list: everything). */
bool list_has(const char *list, const char *name);

/* Remove shm segments and LMDB dirs left by runs whose process is gone. */
void matrix_clean_stale(void);

#endif /* BENCH_MATRIX_H */
