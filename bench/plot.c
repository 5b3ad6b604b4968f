/*
 * plot.c: gnuplot data and script for
 *   ns_by_scenario_n<N>.png   ns/lookup per scenario and contender (1 reader, log scale)
 *   latency_<scenario>_n<N>.png  latency percentile curves (1 reader)
 *   scaling_n<N>.png          aggregate lookups/s against reader count (lookup_hit)
 *   writer_n<N>.png           writer ops/s per scenario and contender
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "contender.h"
#include "matrix.h"
#include "plot.h"
#include "scenario.h"

struct names {
	const char *v[32];
	unsigned n;
};

static void contenders_present(const struct results *r, struct names *out)
{
	out->n = 0;
	for (unsigned i = 0; i < contender_table_len; i++) {
		const char *name = contender_table[i].name;

		for (size_t j = 0; j < r->len; j++) {
			if (strcmp(r->fig[j].contender, name) == 0) {
				out->v[out->n++] = name;
				break;
			}
		}
	}
}

static FILE *open_in(const char *dir, const char *name, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		fprintf(stderr, "bench: plot: %s: %s\n", path, strerror(errno));
	return f;
}

static void dnum(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fprintf(f, " NaN");
	else
		fprintf(f, " %.6g", v);
}

/* Clustered bars: rows are scenarios, columns contenders. */
static void bars(FILE *gp, const char *dir, const struct results *r, const struct names *cs,
		 uint64_t n, bool writer)
{
	char name[96], path[512];
	FILE *d;
	unsigned rows = 0;

	snprintf(name, sizeof(name), "%s_n%llu.dat", writer ? "writer" : "ns_by_scenario",
		 (unsigned long long)n);
	d = open_in(dir, name, path, sizeof(path));
	if (!d)
		return;
	fprintf(d, "scenario");
	for (unsigned c = 0; c < cs->n; c++)
		fprintf(d, " %s", cs->v[c]);
	fprintf(d, "\n");
	for (unsigned s = 0; s < scenario_table_len; s++) {
		const struct scenario *sc = &scenario_table[s];
		unsigned readers = sc->readers_min ? 1 : 0;
		bool any = false;

		if (writer ? !sc->has_writer : readers == 0)
			continue;
		for (unsigned c = 0; c < cs->n; c++)
			any |= results_find(r, sc->name, cs->v[c], n, readers) != NULL;
		if (!any)
			continue;
		fprintf(d, "%s", sc->name);
		for (unsigned c = 0; c < cs->n; c++) {
			const struct figure *f = results_find(r, sc->name, cs->v[c], n, readers);
			double v = NAN;

			if (f && !f->failed)
				v = writer ? f->wops.med / 1e6 : f->ns.med;
			dnum(d, v);
		}
		fprintf(d, "\n");
		rows++;
	}
	fclose(d);
	if (!rows)
		return;
	fprintf(gp, "\nset output '%s/%s_n%llu.png'\n", dir, writer ? "writer" : "ns_by_scenario",
		(unsigned long long)n);
	fprintf(gp, "set title '%s, n = %llu (1 reader; median of reps)'\n",
		writer ? "writer ops/s (M), by scenario and contender" :
			 "ns per lookup, by scenario and contender (lower is better)",
		(unsigned long long)n);
	fprintf(gp, "set style data histograms\nset style histogram clustered gap 1\n"
		    "set style fill solid 0.85 border -1\nset boxwidth 0.9\n"
		    "set xtics rotate by -25\nset key top left\nset grid ytics\nunset xrange\n");
	if (writer)
		fprintf(gp, "unset logscale y\nset ylabel 'M ops/s'\nset yrange [0:*]\n"
			    "set key top right\n");
	else
		fprintf(gp, "set logscale y\nset ylabel 'ns per lookup (log)'\nset yrange [*:*]\n");
	fprintf(gp, "plot for [i=2:%u] '%s' using i:xtic(1) title columnheader(i)\n", cs->n + 1,
		path);
	fprintf(gp, "unset logscale y\nset xtics norotate\n");
}

/* Percentile curves on a "nines" axis: x = -log10(1 - p). */
static void latency(FILE *gp, const char *dir, const struct results *r, const struct names *cs,
		    const char *scenario, uint64_t n)
{
	char name[128], path[512];
	FILE *d;
	bool any = false;

	for (unsigned c = 0; c < cs->n; c++)
		any |= results_find(r, scenario, cs->v[c], n, 1) != NULL;
	if (!any)
		return;
	snprintf(name, sizeof(name), "latency_%s_n%llu.dat", scenario, (unsigned long long)n);
	d = open_in(dir, name, path, sizeof(path));
	if (!d)
		return;
	fprintf(d, "nines");
	for (unsigned c = 0; c < cs->n; c++)
		fprintf(d, " %s", cs->v[c]);
	fprintf(d, "\n");
	for (int i = 0; i < NPCT; i++) {
		double x = i == NPCT - 1 ? 5.0 : -log10(1.0 - pct_points[i] / 100.0);

		fprintf(d, "%.4f", x);
		for (unsigned c = 0; c < cs->n; c++) {
			const struct figure *f = results_find(r, scenario, cs->v[c], n, 1);

			dnum(d, f && !f->failed ? f->pct[i] : NAN);
		}
		fprintf(d, "\n");
	}
	fclose(d);
	fprintf(gp, "\nset output '%s/latency_%s_n%llu.png'\n", dir, scenario,
		(unsigned long long)n);
	fprintf(gp, "set title 'sampled lookup latency, %s, n = %llu, 1 reader'\n", scenario,
		(unsigned long long)n);
	fprintf(gp, "set style data linespoints\nset logscale y\nset ylabel 'ns (log)'\n"
		    "set xlabel 'percentile'\nset xrange [0.2:5.2]\nset yrange [*:*]\n"
		    "set xtics ('p50' 0.301, 'p90' 1, 'p99' 2, 'p99.9' 3, 'p99.99' 4, 'max' 5)\n"
		    "set key top left\nset grid\n");
	fprintf(gp, "plot for [i=2:%u] '%s' using 1:i with linespoints title columnheader(i)\n",
		cs->n + 1, path);
	fprintf(gp, "unset logscale y\nunset xlabel\nunset xrange\nset xtics autofreq\n");
}

/* Aggregate lookups/s against the reader count (lookup_hit). */
static void scaling(FILE *gp, const char *dir, const struct results *r, const struct names *cs,
		    uint64_t n)
{
	char name[96], path[512];
	unsigned maxr = 0;
	FILE *d;

	for (size_t i = 0; i < r->len; i++)
		if (r->fig[i].n == n && strcmp(r->fig[i].scenario, "lookup_hit") == 0 &&
		    r->fig[i].readers > maxr)
			maxr = r->fig[i].readers;
	if (maxr == 0)
		return;
	snprintf(name, sizeof(name), "scaling_n%llu.dat", (unsigned long long)n);
	d = open_in(dir, name, path, sizeof(path));
	if (!d)
		return;
	fprintf(d, "readers");
	for (unsigned c = 0; c < cs->n; c++)
		fprintf(d, " %s", cs->v[c]);
	fprintf(d, "\n");
	for (unsigned k = 1; k <= maxr; k++) {
		fprintf(d, "%u", k);
		for (unsigned c = 0; c < cs->n; c++) {
			const struct figure *f = results_find(r, "lookup_hit", cs->v[c], n, k);

			dnum(d, f && !f->failed ? f->agg.med / 1e6 : NAN);
		}
		fprintf(d, "\n");
	}
	fclose(d);
	fprintf(gp, "\nset output '%s/scaling_n%llu.png'\n", dir, (unsigned long long)n);
	fprintf(gp, "set title 'reader scaling, lookup_hit, n = %llu: all readers together'\n",
		(unsigned long long)n);
	fprintf(gp, "set style data linespoints\nset logscale y\nset ylabel 'M lookups/s (log)'\n"
		    "set xlabel 'readers (processes or threads, one per CPU)'\n"
		    "set xrange [0.8:%u.2]\n"
		    "set xtics 1\nset yrange [*:*]\nset key top left\nset grid\n",
		maxr);
	fprintf(gp, "plot for [i=2:%u] '%s' using 1:i with linespoints title columnheader(i)\n",
		cs->n + 1, path);
	fprintf(gp, "unset logscale y\nunset xlabel\nunset xrange\nset xtics autofreq\n");
}

int plot_write(const char *dir, const struct results *r)
{
	char gpath[512], cmd[1200];
	struct names cs;
	const char *term;
	FILE *gp;
	int rc;

	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "bench: plot: mkdir %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
		fprintf(stderr, "bench: plot: gnuplot not found (apt-get install gnuplot-nox); "
				"no charts drawn\n");
		return -1;
	}
	term = system("gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1") == 0 ? "pngcairo" :
										     "png";
	contenders_present(r, &cs);
	gp = open_in(dir, "charts.gp", gpath, sizeof(gpath));
	if (!gp)
		return -1;
	fprintf(gp, "# connreg-bench charts: gnuplot %s\n", gpath);
	fprintf(gp, "set terminal %s size 1100,600 noenhanced\nset datafile missing 'NaN'\n", term);
	for (unsigned i = 0; i < r->cfg->n_count; i++) {
		uint64_t n = r->cfg->n[i];

		bars(gp, dir, r, &cs, n, false);
		bars(gp, dir, r, &cs, n, true);
		latency(gp, dir, r, &cs, "lookup_hit", n);
		latency(gp, dir, r, &cs, "lookup_hit_with_updater", n);
		scaling(gp, dir, r, &cs, n);
	}
	fclose(gp);
	snprintf(cmd, sizeof(cmd), "gnuplot '%s'", gpath);
	rc = system(cmd);
	if (rc != 0) {
		fprintf(stderr, "bench: plot: gnuplot failed (status %d)\n", rc);
		return -1;
	}
	fprintf(stderr, "bench: charts written to %s/*.png\n", dir);
	return 0;
}
