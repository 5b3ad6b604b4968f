/*
 * report.c: text and JSON output.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "contender.h"
#include "matrix.h"
#include "report.h"
#include "scenario.h"
#include "targets.h"
#include "timing.h"

double report_ratio(const struct results *r, const struct figure *f, bool on_cpu)
{
	const struct figure *c;

	if (f->failed || strcmp(f->contender, "connreg") == 0)
		return NAN;
	c = results_find(r, f->scenario, "connreg", f->n, f->readers);
	if (!c || c->failed)
		return NAN;
	if (f->readers == 0)
		return on_cpu ? (c->wops.med / c->w_oncpu) / (f->wops.med / f->w_oncpu) :
				c->wops.med / f->wops.med;
	return on_cpu ? c->ns_cpu.med / f->ns_cpu.med : c->ns.med / f->ns.med;
}

/* ---- header ---- */

void report_header(FILE *out, const struct results *r)
{
	const struct machine *m = &r->machine;
	const struct bench_config *cfg = r->cfg;

	fprintf(out, "connreg benchmark harness (issue 4)%s, %s\n",
		cfg->quick ? " -- QUICK mode" : "", m->date);
	fprintf(out, "machine: %s; %u CPUs online, %u usable%s; %s\n", m->cpu_model,
		m->cpus_online, m->cpus_allowed,
		m->hypervisor ? "; virtual machine (hypervisor flag)" : "", m->kernel);
	fprintf(out, "         page %ld B; RAM %.1f GiB; caches L1d %s, L2 %s, L3 %s; "
		     "clocksource %s; shmem THP [%s]\n",
		m->page_size, (double)m->mem_total_kib / 1048576.0, m->cache_l1d, m->cache_l2,
		m->cache_l3, m->clocksource, m->thp_shmem);
	fprintf(out, "         %s; TSC %.3f GHz, advances in steps of %.1f ns, rdtsc costs "
		     "%.1f ns;\n         a timed bracket costs %.1f ns (subtracted from each "
		     "sample); clock_gettime %.1f ns\n",
		m->compiler, m->tsc_hz / 1e9, m->tsc_granularity_ns, m->rdtsc_ns,
		m->timer_overhead_ns, m->gettime_ns);
	fprintf(out, "method:  %u reps x %.0f ms per figure after a %.0f ms warm-up per worker; "
		     "figures are the median [min..max] over reps.\n",
		cfg->reps, (double)cfg->duration_ns / 1e6, (double)cfg->warmup_ns / 1e6);
	if (cfg->sample_period)
		fprintf(out, "         1 lookup in %u is timed alone (TSC) for the percentiles, "
			     "pooled over reps and readers;\n         ns/lookup comes from the "
			     "untimed ones.\n",
			cfg->sample_period);
	else
		fprintf(out, "         no per-lookup sampling (--sample 0): no percentiles.\n");
	fprintf(out, "         16-byte random ids; access sequences generated before timing; "
		     "bulk_lookup: %u ids per call, figures per id;\n         connreg capacity = "
		     "n + %.3g%%.\n", cfg->batch, cfg->headroom_pct);
	fprintf(out, "contenders (P: readers and writer are processes, T: threads):\n");
	for (unsigned i = 0; i < contender_table_len; i++) {
		const struct contender *c = contender_table[i].c;

		if (!c || !list_has(cfg->contenders, c->name))
			continue;
		fprintf(out, "  %-10s %c %s\n", c->name, c->processes ? 'P' : 'T', c->what);
		fprintf(out, "  %-10s   bulk: %s; writes: %s\n", "", c->bulk_how, c->write_how);
	}
	if (cfg->pin && cfg->ncpus) {
		fprintf(out, "pinning: reader i -> cpu %d, %d, ...; the writer -> the next cpu "
			     "after the readers (cpus:",
			cfg->cpus[0], cfg->ncpus > 1 ? cfg->cpus[1] : cfg->cpus[0]);
		for (unsigned i = 0; i < cfg->ncpus; i++)
			fprintf(out, " %d", cfg->cpus[i]);
		fprintf(out, "); the parent is not pinned and sleeps while workers run\n");
	} else {
		fprintf(out, "pinning: none (--no-pin)\n");
	}
	fprintf(out, "noise:   1-minute load average %.2f at the start", m->loadavg_start);
	if (!isnan(r->loadavg_end))
		fprintf(out, ", %.2f at the end", r->loadavg_end);
	fprintf(out, " (other processes share these CPUs; see the busy column)\n");
	if (r->skipped[0])
		fprintf(out, "skipped: %s\n", r->skipped);
	fprintf(out, "\n");
}

/* ---- RESULT lines ---- */

static void kv(FILE *out, const char *k, double v, const char *fmt)
{
	fprintf(out, " %s=", k);
	if (isnan(v))
		fprintf(out, "nan");
	else
		fprintf(out, fmt, v);
}

void report_result_line(FILE *out, const struct figure *f)
{
	fprintf(out, "RESULT scenario=%s contender=%s n=%llu readers=%u workers=%s", f->scenario,
		f->contender, (unsigned long long)f->n, f->readers,
		f->processes ? "processes" : "threads");
	fprintf(out, " writer=%s", f->writer ? f->writer : "none");
	if (f->writer) {
		if (f->writer_rate > 0)
			fprintf(out, " writer_rate=%.0f", f->writer_rate);
		else
			fprintf(out, " writer_rate=max");
	}
	if (f->batch > 1)
		fprintf(out, " batch=%u", f->batch);
	if (f->failed) {
		fprintf(out, " failed=%d\n", f->failed);
		return;
	}
	fprintf(out, " reps=%u", f->reps);
	if (f->readers) {
		kv(out, "ns_per_lookup", f->ns.med, "%.2f");
		kv(out, "ns_min", f->ns.min, "%.2f");
		kv(out, "ns_max", f->ns.max, "%.2f");
		kv(out, "ns_slowest_reader", f->ns_worst.med, "%.2f");
		kv(out, "ns_on_cpu", f->ns_cpu.med, "%.2f");
		kv(out, "ns_on_cpu_slowest_reader", f->ns_cpu_worst.med, "%.2f");
		kv(out, "reader_on_cpu", f->oncpu, "%.3f");
		kv(out, "lookups_per_s", f->agg.med, "%.0f");
		kv(out, "p50", f->pct[PCT_P50], "%.0f");
		kv(out, "p90", f->pct[PCT_P90], "%.0f");
		kv(out, "p99", f->pct[PCT_P99], "%.0f");
		kv(out, "p999", f->pct[PCT_P999], "%.0f");
		kv(out, "p9999", f->pct[PCT_P9999], "%.0f");
		kv(out, "max", f->pct[PCT_MAX], "%.0f");
		kv(out, "hit_ratio", f->hit_ratio, "%.4f");
		fprintf(out, " lookup_errors=%llu", (unsigned long long)f->lookup_errors);
	}
	if (f->writer) {
		kv(out, "writer_ops_per_s", f->wops.med, "%.0f");
		kv(out, "writer_ops_min", f->wops.min, "%.0f");
		kv(out, "writer_ops_max", f->wops.max, "%.0f");
		kv(out, "writer_on_cpu", f->w_oncpu, "%.3f");
		kv(out, "writer_p50", f->wpct[PCT_P50], "%.0f");
		kv(out, "writer_p99", f->wpct[PCT_P99], "%.0f");
		kv(out, "writer_max", f->wpct[PCT_MAX], "%.0f");
		if (f->storm_ids > 0)
			kv(out, "ids_per_storm", f->storm_ids, "%.0f");
		fprintf(out, " writer_errors=%llu", (unsigned long long)f->writer_errors);
	}
	kv(out, "busy_cpus", f->busy_cpus, "%.2f");
	kv(out, "steal_pct", f->steal_pct, "%.1f");
	if (!isnan(f->grace_periods))
		kv(out, "grace_periods", f->grace_periods, "%.0f");
	if (!isnan(f->ref_ns_cpu.med)) {
		kv(out, "ref_lookup_hit_ns", f->ref_ns.med, "%.2f");
		kv(out, "ref_lookup_hit_ns_on_cpu", f->ref_ns_cpu.med, "%.2f");
	}
	fprintf(out, " pinned=%s\n", f->pinning);
}

/* ---- table ---- */

static void cell(FILE *out, double v, int width, int prec)
{
	if (isnan(v))
		fprintf(out, " %*s", width, "-");
	else
		fprintf(out, " %*.*f", width, prec, v);
}

static void table_row(FILE *out, const struct results *r, const struct figure *f)
{
	static const int which[4] = { PCT_P50, PCT_P99, PCT_P999, PCT_MAX };
	const double *p = f->readers ? f->pct : f->wpct;

	fprintf(out, "%-29s %2u %-10s %c", f->scenario, f->readers, f->contender,
		f->processes ? 'P' : 'T');
	if (f->failed) {
		fprintf(out, "  FAILED (%d)\n", f->failed);
		return;
	}
	if (f->readers) {
		cell(out, f->ns.med, 7, 1);
		fprintf(out, " [");
		cell(out, f->ns.min, 6, 1);
		fprintf(out, " ..");
		cell(out, f->ns.max, 7, 1);
		fprintf(out, "]");
		cell(out, f->ns_cpu.med, 7, 1);
		cell(out, f->oncpu * 100, 4, 0);
		cell(out, f->agg.med / 1e6, 7, 2);
	} else {
		fprintf(out, " %7s   %6s    %7s  %7s", "-", "", "", "-");
		cell(out, f->w_oncpu * 100, 4, 0);
		fprintf(out, " %7s", "-");
	}
	cell(out, f->writer ? f->wops.med / 1e6 : NAN, 7, 3);
	for (int i = 0; i < 4; i++)
		cell(out, p[which[i]], i == 3 ? 8 : 6, 0);
	fprintf(out, "%c", f->readers ? ' ' : '*');
	cell(out, report_ratio(r, f, false), 6, 2);
	cell(out, report_ratio(r, f, true), 6, 2);
	cell(out, f->busy_cpus, 4, 1);
	if (f->lookup_errors || f->writer_errors)
		fprintf(out, "  errors: %llu lookups, %llu writes",
			(unsigned long long)f->lookup_errors, (unsigned long long)f->writer_errors);
	fprintf(out, "\n");
}

void report_table(FILE *out, const struct results *r)
{
	const struct bench_config *cfg = r->cfg;

	for (unsigned ni = 0; ni < cfg->n_count; ni++) {
		uint64_t n = cfg->n[ni];
		const char *last = NULL;

		fprintf(out, "== n = %llu registered ids (+ %llu never registered) ==\n",
			(unsigned long long)n, (unsigned long long)n);
		fprintf(out, "%-29s %2s %-10s %c %7s [%6s .. %7s] %7s %4s %7s %7s %6s %6s %6s %8s  "
			     "%6s %6s %4s\n",
			"scenario", "rd", "contender", 'w', "ns/op", "min", "max", "cpu-ns", "on%",
			"Mops/s", "wMops/s", "p50", "p99", "p99.9", "max", "cr/pw", "cr/pc",
			"busy");
		for (size_t i = 0; i < r->len; i++) {
			const struct figure *f = &r->fig[i];

			if (f->n != n)
				continue;
			if (last && strcmp(last, f->scenario) != 0)
				fprintf(out, "\n");
			last = f->scenario;
			table_row(out, r, f);
		}
		fprintf(out, "\n");
	}
	fputs("rd: readers; w: workers are P(rocesses) or T(hreads); ns/op: wall-clock ns per\n"
	      "lookup per reader (per id for bulk_lookup), median [min..max] over reps; cpu-ns:\n"
	      "the same counting only the readers' own CPU time (what a lookup costs when the\n"
	      "reader is not preempted); on%: share of wall time the readers (the writer, for\n"
	      "updater_alone) were on a CPU -- below ~95 someone else took the CPU, or the reader\n"
	      "blocked; Mops/s: lookups/s of all readers; wMops/s: writer ops/s (churn:\n"
	      "unregister+register pairs; reconnect_storm: ids re-pointed); p50..max: sampled\n"
	      "per-lookup latency, ns (*: writer latency per update when there are no readers);\n"
	      "cr/pw and cr/pc: connreg's ns/op over this contender's, wall and cpu (< 1: connreg\n"
	      "faster; updater_alone: writer ops/s ratio, > 1: connreg faster); busy: CPUs kept\n"
	      "busy by every process on the machine during the figure (readers + writer\n"
	      "expected; more: others ran too).\n\n",
	      out);
}

void report_ratios(FILE *out, const struct results *r)
{
	for (size_t i = 0; i < r->len; i++) {
		const struct figure *f = &r->fig[i];
		double ratio = report_ratio(r, f, false);

		if (isnan(ratio))
			continue;
		fprintf(out, "RATIO scenario=%s n=%llu readers=%u peer=%s metric=%s "
			     "connreg_over_peer=%.3f on_cpu=%.3f\n",
			f->scenario, (unsigned long long)f->n, f->readers, f->contender,
			f->readers ? "ns_per_lookup" : "writer_ops_per_s", ratio,
			report_ratio(r, f, true));
	}
	fprintf(out, "\n");
}

unsigned report_targets(FILE *out, const struct results *r)
{
	struct target t[MAX_TARGETS];
	unsigned k = targets_evaluate(r, t, MAX_TARGETS), missed = 0;

	fprintf(out, "targets (issues 4 and 10: within this run, not asserted; verdict on the workers' CPU "
		     "time, wall time alongside):\n");
	for (unsigned i = 0; i < k; i++) {
		const char *verdict = !t[i].available ? "n/a   " : t[i].met ? "met   " : "MISSED";

		fprintf(out, "  [%s] %s\n", verdict, t[i].what);
		if (!t[i].available) {
			fprintf(out, "           not measured in this run\n");
			continue;
		}
		fprintf(out, "           %.3g %s on CPU time, %.3g on wall time (limit %.3g)",
			t[i].value, t[i].unit, t[i].value_wall, t[i].limit);
		if (t[i].min_oncpu < 0.9)
			fprintf(out, " [disturbed: a worker was on a CPU only %.0f%% of the time]",
				t[i].min_oncpu * 100);
		if (!t[i].met) {
			fprintf(out, " -- off by %.0f%%", t[i].off_pct);
			missed++;
		}
		fprintf(out, "; %s\n", t[i].detail);
	}
	for (unsigned i = 0; i < k; i++)
		fprintf(out, "TARGET id=%s met=%s value=%.4g value_wall=%.4g limit=%.4g "
			     "off_pct=%.1f min_on_cpu=%.2f\n",
			t[i].id, !t[i].available ? "na" : t[i].met ? "yes" : "no", t[i].value,
			t[i].value_wall, t[i].limit, t[i].off_pct, t[i].min_oncpu);
	fprintf(out, "\n");
	return missed;
}

/* ---- JSON ---- */

static void jstr(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void jnum(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fprintf(f, "null");
	else
		fprintf(f, "%.6g", v);
}

static void jtriple(FILE *f, const char *name, struct triple t)
{
	fprintf(f, "\"%s\": {\"median\": ", name);
	jnum(f, t.med);
	fprintf(f, ", \"min\": ");
	jnum(f, t.min);
	fprintf(f, ", \"max\": ");
	jnum(f, t.max);
	fprintf(f, "}");
}

static void jpcts(FILE *f, const char *name, const double *p)
{
	fprintf(f, "\"%s\": {", name);
	for (int i = 0; i < NPCT; i++) {
		fprintf(f, "%s\"%s\": ", i ? ", " : "", pct_names[i]);
		jnum(f, p[i]);
	}
	fprintf(f, "}");
}

static void json_machine(FILE *f, const struct machine *m)
{
	fprintf(f, "  \"machine\": {\"cpu_model\": ");
	jstr(f, m->cpu_model);
	fprintf(f, ", \"cpus_online\": %u, \"cpus_usable\": %u, \"kernel\": ", m->cpus_online,
		m->cpus_allowed);
	jstr(f, m->kernel);
	fprintf(f, ", \"page_size\": %ld, \"mem_total_kib\": %llu, \"cache_l1d\": ", m->page_size,
		(unsigned long long)m->mem_total_kib);
	jstr(f, m->cache_l1d);
	fprintf(f, ", \"cache_l2\": ");
	jstr(f, m->cache_l2);
	fprintf(f, ", \"cache_l3\": ");
	jstr(f, m->cache_l3);
	fprintf(f, ", \"clocksource\": ");
	jstr(f, m->clocksource);
	fprintf(f, ", \"shmem_thp\": ");
	jstr(f, m->thp_shmem);
	fprintf(f, ", \"virtual_machine\": %s, \"compiler\": ", m->hypervisor ? "true" : "false");
	jstr(f, m->compiler);
	fprintf(f, ", \"tsc_hz\": ");
	jnum(f, m->tsc_hz);
	fprintf(f, ", \"timer_overhead_ns\": ");
	jnum(f, m->timer_overhead_ns);
	fprintf(f, ", \"clock_gettime_ns\": ");
	jnum(f, m->gettime_ns);
	fprintf(f, ", \"rdtsc_ns\": ");
	jnum(f, m->rdtsc_ns);
	fprintf(f, ", \"tsc_granularity_ns\": ");
	jnum(f, m->tsc_granularity_ns);
	fprintf(f, ", \"loadavg_at_start\": ");
	jnum(f, m->loadavg_start);
	fprintf(f, ", \"date\": ");
	jstr(f, m->date);
	fprintf(f, "},\n");
}

static void json_config(FILE *f, const struct bench_config *cfg)
{
	fprintf(f, "  \"config\": {\"quick\": %s, \"reps\": %u, \"duration_ms\": %.1f, "
		   "\"warmup_ms\": %.1f, \"sample_period\": %u, "
		   "\"samples_kept_per_worker_rep\": %u, \"fixed_rate\": %.0f, \"bulk_batch\": %u, "
		   "\"connreg_headroom_pct\": %.3g, \"seed\": %llu, \"pinned\": %s, \"n\": [",
		cfg->quick ? "true" : "false", cfg->reps, (double)cfg->duration_ns / 1e6,
		(double)cfg->warmup_ns / 1e6, cfg->sample_period, cfg->sample_cap, cfg->rate,
		cfg->batch, cfg->headroom_pct, (unsigned long long)cfg->seed,
		cfg->pin ? "true" : "false");
	for (unsigned i = 0; i < cfg->n_count; i++)
		fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)cfg->n[i]);
	fprintf(f, "], \"cpus\": [");
	for (unsigned i = 0; i < cfg->ncpus; i++)
		fprintf(f, "%s%d", i ? ", " : "", cfg->cpus[i]);
	fprintf(f, "]},\n");
}

static void json_figure(FILE *f, const struct results *r, const struct figure *g)
{
	fprintf(f, "    {\"scenario\": ");
	jstr(f, g->scenario);
	fprintf(f, ", \"contender\": ");
	jstr(f, g->contender);
	fprintf(f, ", \"workers\": \"%s\", \"n\": %llu, \"readers\": %u, \"writer\": ",
		g->processes ? "processes" : "threads", (unsigned long long)g->n, g->readers);
	if (g->writer)
		jstr(f, g->writer);
	else
		fprintf(f, "null");
	fprintf(f, ", \"writer_rate\": ");
	if (g->writer_rate > 0)
		jnum(f, g->writer_rate);
	else
		fprintf(f, "\"max\"");
	fprintf(f, ", \"batch\": %u, \"reps\": %u, \"failed\": %d, \"pinning\": ", g->batch,
		g->reps, g->failed);
	jstr(f, g->pinning);
	fprintf(f, ",\n     ");
	jtriple(f, "ns_per_lookup", g->ns);
	fprintf(f, ", ");
	jtriple(f, "ns_per_lookup_slowest_reader", g->ns_worst);
	fprintf(f, ",\n     ");
	jtriple(f, "ns_per_lookup_on_cpu", g->ns_cpu);
	fprintf(f, ", ");
	jtriple(f, "ns_per_lookup_on_cpu_slowest_reader", g->ns_cpu_worst);
	fprintf(f, ", \"reader_on_cpu\": ");
	jnum(f, g->oncpu);
	fprintf(f, ", \"writer_on_cpu\": ");
	jnum(f, g->w_oncpu);
	fprintf(f, ",\n     ");
	jtriple(f, "lookups_per_s", g->agg);
	fprintf(f, ", ");
	jtriple(f, "writer_ops_per_s", g->wops);
	fprintf(f, ",\n     ");
	jpcts(f, "latency_ns", g->pct);
	fprintf(f, ", \"latency_samples\": %llu,\n     ", (unsigned long long)g->nsamples);
	jpcts(f, "writer_latency_ns", g->wpct);
	fprintf(f, ", \"writer_latency_samples\": %llu,\n     \"ids_per_storm\": ",
		(unsigned long long)g->wnsamples);
	jnum(f, g->storm_ids);
	fprintf(f, ", \"hit_ratio\": ");
	jnum(f, g->hit_ratio);
	fprintf(f, ", \"busy_cpus\": ");
	jnum(f, g->busy_cpus);
	fprintf(f, ", \"steal_pct\": ");
	jnum(f, g->steal_pct);
	fprintf(f, ", \"grace_periods\": ");
	jnum(f, g->grace_periods);
	fprintf(f, ", ");
	jtriple(f, "ref_lookup_hit_ns", g->ref_ns);
	fprintf(f, ", ");
	jtriple(f, "ref_lookup_hit_ns_on_cpu", g->ref_ns_cpu);
	fprintf(f, ", \"ref_reader_on_cpu\": ");
	jnum(f, g->ref_oncpu);
	fprintf(f, ", \"lookup_errors\": %llu, \"writer_errors\": %llu, \"connreg_over_this\": ",
		(unsigned long long)g->lookup_errors, (unsigned long long)g->writer_errors);
	jnum(f, report_ratio(r, g, false));
	fprintf(f, ", \"connreg_over_this_on_cpu\": ");
	jnum(f, report_ratio(r, g, true));
	fprintf(f, "}");
}

static void json_targets(FILE *f, const struct results *r)
{
	struct target t[MAX_TARGETS];
	unsigned k = targets_evaluate(r, t, MAX_TARGETS);

	fprintf(f, "  \"targets\": [\n");
	for (unsigned i = 0; i < k; i++) {
		fprintf(f, "    {\"id\": ");
		jstr(f, t[i].id);
		fprintf(f, ", \"what\": ");
		jstr(f, t[i].what);
		fprintf(f, ", \"measured\": %s, \"met\": %s, \"value\": ",
			t[i].available ? "true" : "false", t[i].met ? "true" : "false");
		jnum(f, t[i].value);
		fprintf(f, ", \"value_wall\": ");
		jnum(f, t[i].value_wall);
		fprintf(f, ", \"limit\": ");
		jnum(f, t[i].limit);
		fprintf(f, ", \"unit\": ");
		jstr(f, t[i].unit);
		fprintf(f, ", \"off_pct\": ");
		jnum(f, t[i].off_pct);
		fprintf(f, ", \"min_on_cpu\": ");
		jnum(f, t[i].min_oncpu);
		fprintf(f, ", \"detail\": ");
		jstr(f, t[i].detail);
		fprintf(f, "}%s\n", i + 1 < k ? "," : "");
	}
	fprintf(f, "  ]\n");
}

int report_json(const char *path, const struct results *r)
{
	FILE *f = fopen(path, "w");
	bool first = true;

	if (!f) {
		perror(path);
		return -1;
	}
	fprintf(f, "{\n  \"tool\": \"connreg-bench\",\n");
	json_machine(f, &r->machine);
	json_config(f, r->cfg);
	fprintf(f, "  \"skipped\": ");
	jstr(f, r->skipped);
	fprintf(f, ",\n  \"contenders\": [\n");
	for (unsigned i = 0; i < contender_table_len; i++) {
		const struct contender *c = contender_table[i].c;

		if (!c || !list_has(r->cfg->contenders, c->name))
			continue;
		fprintf(f, "%s    {\"name\": ", first ? "" : ",\n");
		jstr(f, c->name);
		fprintf(f, ", \"workers\": \"%s\", \"what\": ",
			c->processes ? "processes" : "threads");
		jstr(f, c->what);
		fprintf(f, ", \"bulk\": ");
		jstr(f, c->bulk_how);
		fprintf(f, ", \"writes\": ");
		jstr(f, c->write_how);
		fprintf(f, "}");
		first = false;
	}
	fprintf(f, "\n  ],\n  \"scenarios\": [\n");
	for (unsigned i = 0; i < scenario_table_len; i++) {
		fprintf(f, "    {\"name\": ");
		jstr(f, scenario_table[i].name);
		fprintf(f, ", \"what\": ");
		jstr(f, scenario_table[i].what);
		fprintf(f, "}%s\n", i + 1 < scenario_table_len ? "," : "");
	}
	fprintf(f, "  ],\n  \"populate\": [\n");
	for (unsigned i = 0; i < r->n_inst; i++)
		fprintf(f, "    {\"contender\": \"%s\", \"n\": %llu, \"seconds\": %.3f}%s\n",
			r->inst[i].contender, (unsigned long long)r->inst[i].n,
			r->inst[i].populate_s, i + 1 < r->n_inst ? "," : "");
	fprintf(f, "  ],\n  \"figures\": [\n");
	for (size_t i = 0; i < r->len; i++) {
		json_figure(f, r, &r->fig[i]);
		fprintf(f, "%s\n", i + 1 < r->len ? "," : "");
	}
	fprintf(f, "  ],\n");
	json_targets(f, r);
	fprintf(f, "}\n");
	if (fclose(f) != 0) {
		perror(path);
		return -1;
	}
	return 0;
}
