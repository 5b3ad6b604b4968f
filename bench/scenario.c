/*
 * scenario.c: scenario definitions; placing readers and writer on CPUs;
 * turning the workers' raw counts and samples into one figure.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"
#include "timing.h"

const struct scenario scenario_table[] = {
	{ "lookup_hit", "registered ids, random order", 1, true, ROLE_READ, POOL_HIT, false,
	  ROLE_UPDATE, false },
	{ "lookup_miss", "never-registered ids, random order", 1, true, ROLE_READ, POOL_MISS, false,
	  ROLE_UPDATE, false },
	{ "bulk_lookup", "registered ids, 64 per call", 1, true, ROLE_BULK, POOL_HIT, false,
	  ROLE_UPDATE, false },
	{ "updater_alone", "one writer re-points ids as fast as it can, no readers", 0, false,
	  ROLE_READ, POOL_HIT, true, ROLE_UPDATE, false },
	{ "lookup_hit_with_updater", "lookup_hit while a writer re-points ids as fast as it can",
	  1, true, ROLE_READ, POOL_HIT, true, ROLE_UPDATE, false },
	{ "lookup_hit_with_updater_fixed",
	  "lookup_hit while a writer re-points ids at a fixed rate", 1, true, ROLE_READ, POOL_HIT,
	  true, ROLE_UPDATE, true },
	{ "reconnect_storm",
	  "lookup_hit while transports die one after another and all their ids are re-pointed", 1,
	  true, ROLE_READ, POOL_HIT, true, ROLE_STORM, false },
	{ "churn", "lookup_hit while a writer unregisters live ids and registers new ones", 1, true,
	  ROLE_READ, POOL_HIT, true, ROLE_CHURN, false },
};

const unsigned scenario_table_len = sizeof(scenario_table) / sizeof(scenario_table[0]);

unsigned scenario_reader_counts(const struct scenario *sc, const struct bench_config *cfg,
				unsigned *out, unsigned max)
{
	unsigned hi = cfg->max_readers ? cfg->max_readers : cfg->ncpus, k = 0;

	if (sc->readers_min == 0) {
		out[0] = 0;
		return 1;
	}
	/* A writer takes a CPU of its own: readers get the rest (at least one). */
	if (sc->has_writer && hi >= cfg->ncpus)
		hi = cfg->ncpus > 1 ? cfg->ncpus - 1 : 1;
	if (!sc->readers_scale)
		hi = sc->readers_min;
	if (hi + (sc->has_writer ? 1 : 0) > MAX_WORKERS)
		hi = MAX_WORKERS - 1;
	for (unsigned r = sc->readers_min; r <= hi && k < max; r++)
		out[k++] = r;
	return k;
}

static int cpu_for(const struct bench_config *cfg, unsigned slot)
{
	return cfg->pin && cfg->ncpus ? cfg->cpus[slot % cfg->ncpus] : -1;
}

static void describe_pinning(const struct worker *w, unsigned nw, char *out, size_t len)
{
	size_t off = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < nw && off < len; i++) {
		bool reader = w[i].role == ROLE_READ || w[i].role == ROLE_BULK;
		const char *who = reader ? "reader" : "writer", *sep = i ? "," : "";
		int k;

		if (w[i].cpu >= 0)
			k = snprintf(out + off, len - off, "%s%s%u:cpu%d", sep, who, i, w[i].cpu);
		else
			k = snprintf(out + off, len - off, "%s%s%u:unpinned", sep, who, i);
		if (k < 0)
			break;
		off += (size_t)k;
	}
}

static double ticks_s(uint64_t ticks)
{
	return ticks_to_ns(ticks) / 1e9;
}

/* ns per untimed lookup of one reader in one rep. */
static double reader_ns(const struct worker_result *res)
{
	uint64_t ops = res->ops, ticks = res->ticks;

	if (res->sampled_ops < ops && res->sample_ticks < ticks) {
		ops -= res->sampled_ops;
		ticks -= res->sample_ticks;
	}
	return ops ? ticks_to_ns(ticks) / (double)ops : NAN;
}

/* Share of the rep's wall time the worker was on a CPU. */
static double on_cpu_share(const struct worker_result *res)
{
	double on;

	if (!res->ticks)
		return NAN;
	on = (double)res->cpu_ns / ticks_to_ns(res->ticks);
	return on > 1 ? 1 : on;	/* the two clocks disagree by a tick */
}

static void summarise(const struct bench_config *cfg, const struct scenario *sc,
		      const struct run_ctl *ctl, unsigned readers, unsigned batch,
		      struct figure *fig)
{
	double ns[MAX_REPS], worst[MAX_REPS], agg[MAX_REPS], wops[MAX_REPS];
	double nscpu[MAX_REPS], cworst[MAX_REPS], oncpu[MAX_REPS], woncpu[MAX_REPS];
	uint64_t ops = 0, hits = 0, werr = 0, rkept = 0, wkept = 0;
	uint32_t *rs = NULL, *ws = NULL;
	unsigned reps = ctl->reps;

	(void)cfg;
	for (unsigned r = 0; r < reps; r++) {
		double sum = 0, w = 0, a = 0, cpu = 0, share = 0, cw = 0;

		for (unsigned i = 0; i < readers; i++) {
			const struct worker_result *res = &ctl->res[r][i];
			double x = reader_ns(res);
			double on = on_cpu_share(res);
			sum += x;
			cpu += x * on;
			if (x * on > cw)
				cw = x * on;
			share += on;
			if (x > w)
				w = x;
			a += res->ticks ? (double)res->ops / ticks_s(res->ticks) : 0;
			ops += res->ops;
			hits += res->hits;
			rkept += run_ctl_kept(ctl, r, i);
		}
		ns[r] = readers ? sum / readers : NAN;
		nscpu[r] = readers ? cpu / readers : NAN;
		cworst[r] = readers ? cw : NAN;
		oncpu[r] = readers ? share / readers : NAN;
		worst[r] = readers ? w : NAN;
		agg[r] = a;
		if (sc->has_writer) {
			const struct worker_result *res = &ctl->res[r][readers];

			wops[r] = res->ticks ? (double)res->ops / ticks_s(res->ticks) : 0;
			woncpu[r] = on_cpu_share(res);
			werr += res->errors;
			wkept += run_ctl_kept(ctl, r, readers);
			if (res->storms)	/* transport t serves ids t, t + T, ... */
				fig->storm_ids = (double)fig->n / BENCH_TRANSPORTS;
		}
	}
	fig->ns = stats_triple(ns, readers ? reps : 0);
	fig->ns_worst = stats_triple(worst, readers ? reps : 0);
	fig->agg = stats_triple(agg, readers ? reps : 0);
	fig->ns_cpu = stats_triple(nscpu, readers ? reps : 0);
	fig->ns_cpu_worst = stats_triple(cworst, readers ? reps : 0);
	fig->oncpu = stats_triple(oncpu, readers ? reps : 0).med;
	fig->w_oncpu = stats_triple(woncpu, sc->has_writer ? reps : 0).med;
	fig->wops = stats_triple(wops, sc->has_writer ? reps : 0);
	fig->hit_ratio = ops ? (double)hits / (double)ops : NAN;
	fig->writer_errors = werr;
	if (readers && !(sc->has_writer && sc->writer == ROLE_CHURN))
		fig->lookup_errors = sc->pool == POOL_HIT ? ops - hits : hits;

	/* Pool the samples of every rep (and every reader). */
	rs = rkept ? malloc(rkept * sizeof(*rs)) : NULL;
	ws = wkept ? malloc(wkept * sizeof(*ws)) : NULL;
	rkept = wkept = 0;
	for (unsigned r = 0; r < reps; r++) {
		for (unsigned i = 0; i < readers && rs; i++) {
			uint64_t k = run_ctl_kept(ctl, r, i);

			memcpy(rs + rkept, run_ctl_samples(ctl, r, i), k * sizeof(*rs));
			rkept += k;
		}
		if (sc->has_writer && ws) {
			uint64_t k = run_ctl_kept(ctl, r, readers);

			memcpy(ws + wkept, run_ctl_samples(ctl, r, readers), k * sizeof(*ws));
			wkept += k;
		}
	}
	stats_percentiles(rs, rs ? rkept : 0, bench_clock.ns_per_tick / batch, fig->pct);
	stats_percentiles(ws, ws ? wkept : 0, bench_clock.ns_per_tick, fig->wpct);
	fig->nsamples = rs ? rkept : 0;
	fig->wnsamples = ws ? wkept : 0;
	free(rs);
	free(ws);
}

static uint64_t ns_to_ticks(uint64_t ns)
{
	return (uint64_t)((double)ns * bench_clock.tsc_hz / 1e9);
}

int scenario_prepare(const struct bench_config *cfg, struct instance *in,
		     const struct scenario *sc, unsigned readers, const struct sequences *seqs,
		     struct figure *fig, struct figure_run *fr)
{
	const struct sequence *rseq = sc->pool == POOL_MISS ? &seqs->miss : &seqs->hit;
	unsigned nw = readers + (sc->has_writer ? 1 : 0);
	unsigned batch = sc->reader == ROLE_BULK ? cfg->batch : 1;
	uint64_t warm = ns_to_ticks(cfg->warmup_ns), rep_warm = ns_to_ticks(cfg->rep_warmup_ns);
	struct worker *w;

	memset(fr, 0, sizeof(*fr));
	memset(fig, 0, sizeof(*fig));
	fr->fig = fig;
	fr->sc = sc;
	fr->readers = readers;
	fr->batch = batch;
	fr->g.in = in;
	fr->g.nworkers = nw;
	fig->grace_periods = NAN;
	fig->scenario = sc->name;
	fig->contender = in->c->name;
	fig->processes = in->c->processes;
	fig->n = in->n;
	fig->readers = readers;
	fig->writer = sc->has_writer ? role_name(sc->writer) : NULL;
	fig->writer_rate = sc->fixed_rate ? cfg->rate : 0;
	fig->reps = cfg->reps;
	fig->batch = batch;
	for (int i = 0; i < NPCT; i++)
		fig->pct[i] = fig->wpct[i] = NAN;
	fig->ns.med = fig->agg.med = fig->wops.med = NAN;
	fig->oncpu = fig->w_oncpu = fig->busy_cpus = fig->steal_pct = NAN;
	fig->ref_ns.med = fig->ref_ns_cpu.med = fig->ref_oncpu = NAN;

	w = fr->g.w;
	for (unsigned i = 0; i < readers; i++) {
		/* Readers start at different points of the same sequence. */
		size_t start = rseq->len / readers * i / SEQ_ALIGN * SEQ_ALIGN;

		w[i].role = sc->reader;
		w[i].cpu = cpu_for(cfg, i);
		w[i].seq = rseq;
		w[i].seq_start = start;
		w[i].sample_period = cfg->sample_period;
		w[i].batch = batch;
		w[i].warmup_ticks = warm;
		w[i].rep_warmup_ticks = rep_warm;
		w[i].rng = cfg->seed ^ (0x9e37ull * (i + 1));
	}
	if (sc->has_writer) {
		struct worker *wr = &w[readers];

		wr->role = sc->writer;
		wr->cpu = cpu_for(cfg, readers);
		wr->seq = &seqs->hit;
		wr->seq_start = seqs->hit.len / 2 / SEQ_ALIGN * SEQ_ALIGN;
		wr->sample_period = cfg->sample_period ? cfg->sample_period : 64;
		wr->rate = sc->fixed_rate ? cfg->rate : 0;
		wr->warmup_ticks = warm / 4;
		wr->rep_warmup_ticks = rep_warm;
		wr->rng = cfg->seed ^ 0x77;
	}
	describe_pinning(w, nw, fig->pinning, sizeof(fig->pinning));

	fr->g.ctl = run_ctl_new(cfg->reps, nw, cfg->sample_cap);
	if (!fr->g.ctl) {
		fig->failed = -ENOMEM;
		return fig->failed;
	}
	fr->have_epoch = in->c->epoch && in->c->epoch(in, &fr->epoch0);
	fig->failed = group_start(&fr->g);
	return fig->failed;
}

void scenario_rep(const struct bench_config *cfg, struct figure_run *fr, unsigned r)
{
	struct cpu_times c0, c1;

	if (fr->g.failed || !fr->g.ctl)
		return;
	cpu_times_read(&c0);
	group_rep(&fr->g, r, cfg->rep_warmup_ns + cfg->duration_ns);
	cpu_times_read(&c1);
	if (c0.total && c1.total) {
		fr->busy += c1.busy - c0.busy;
		fr->steal += c1.steal - c0.steal;
		fr->total += c1.total - c0.total;
	}
}

void scenario_complete(const struct bench_config *cfg, struct figure_run *fr)
{
	struct figure *fig = fr->fig;
	uint64_t e1;

	if (!fr->g.ctl)
		return;
	fig->failed = group_finish(&fr->g);
	if (fr->have_epoch && fr->g.in->c->epoch(fr->g.in, &e1))
		fig->grace_periods = (double)(e1 - fr->epoch0);
	if (fr->total) {
		fig->busy_cpus = (double)fr->busy / (double)fr->total * cfg->online_cpus;
		fig->steal_pct = (double)fr->steal / (double)fr->total * 100;
	}
	if (!fig->failed)
		summarise(cfg, fr->sc, fr->g.ctl, fr->readers, fr->batch, fig);
	run_ctl_free(fr->g.ctl);
	fr->g.ctl = NULL;
}
