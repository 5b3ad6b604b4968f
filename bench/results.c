/*
 * results.c: the growing list of figures.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct figure *results_add(struct results *r)
{
	if (r->len == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		struct figure *f = realloc(r->fig, cap * sizeof(*f));

		if (!f)
			return NULL;
		r->fig = f;
		r->cap = cap;
	}
	memset(&r->fig[r->len], 0, sizeof(r->fig[0]));
	return &r->fig[r->len++];
}

const struct figure *results_find(const struct results *r, const char *scenario,
				  const char *contender, uint64_t n, unsigned readers)
{
	for (size_t i = 0; i < r->len; i++) {
		const struct figure *f = &r->fig[i];

		if (f->n == n && f->readers == readers && strcmp(f->scenario, scenario) == 0 &&
		    strcmp(f->contender, contender) == 0)
			return f;
	}
	return NULL;
}
