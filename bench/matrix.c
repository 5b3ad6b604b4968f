/*
 * matrix.c: runs the plan. For each N: generate ids and access sequences,
 * create and populate every contender, then for each scenario and reader
 * count measure every contender back to back (so the ratios within a
 * scenario come from measurements minutes apart at most, not the whole run),
 * and finally destroy the instances.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "matrix.h"
#include "report.h"
#include "scenario.h"
#include "timing.h"

#define STALE_PREFIX "connreg-bench-"
#define MAX_CONTENDERS 16

bool list_has(const char *list, const char *name)
{
	size_t nl = strlen(name);
	const char *p = list;

	if (!list)
		return true;
	while (*p) {
		size_t len = strcspn(p, ",");

		if (len == nl && strncmp(p, name, nl) == 0)
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return false;
}

void matrix_clean_stale(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[512];
		long pid;

		if (strncmp(e->d_name, STALE_PREFIX, strlen(STALE_PREFIX)) != 0)
			continue;
		pid = strtol(e->d_name + strlen(STALE_PREFIX), NULL, 10);
		if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "/dev/shm/%s", e->d_name);
		if (e->d_type == DT_DIR) {
			char f[600];

			snprintf(f, sizeof(f), "%s/data.mdb", path);
			unlink(f);
			snprintf(f, sizeof(f), "%s/lock.mdb", path);
			unlink(f);
			rmdir(path);
		} else {
			unlink(path);
		}
		fprintf(stderr, "bench: removed stale %s\n", path);
	}
	closedir(d);
}

static size_t sequence_len(uint64_t n)
{
	uint64_t len = 2 * n;

	if (len < 16384)
		len = 16384;
	if (len > (1u << 20))
		len = 1u << 20;
	return (size_t)len;
}

struct plan_counts {
	unsigned total, done;
};

static unsigned count_figures(const struct bench_config *cfg, unsigned n_inst)
{
	unsigned total = 0, rc[MAX_WORKERS];

	for (unsigned s = 0; s < scenario_table_len; s++) {
		if (!list_has(cfg->scenarios, scenario_table[s].name))
			continue;
		total += scenario_reader_counts(&scenario_table[s], cfg, rc, MAX_WORKERS) * n_inst;
	}
	return total * cfg->n_count;
}

static unsigned selected_contenders(const struct bench_config *cfg,
				    const struct contender **out)
{
	unsigned k = 0;

	for (unsigned i = 0; i < contender_table_len; i++) {
		const struct contender *c = contender_table[i].c;
		const char *why;

		if (!c || !list_has(cfg->contenders, contender_table[i].name))
			continue;
		if (c->unavailable && (why = c->unavailable()) != NULL) {
			fprintf(stderr, "bench: contender %s skipped: %s\n", c->name, why);
			continue;
		}
		out[k++] = c;
	}
	return k;
}

static int create_instance(const struct bench_config *cfg, struct instance *in,
			   const struct contender *c, const struct keyset *ks,
			   struct results *res)
{
	uint64_t t0;
	int rc;

	memset(in, 0, sizeof(*in));
	in->c = c;
	in->ks = ks;
	in->n = ks->n;
	in->capacity = ks->n + (uint64_t)((double)ks->n * cfg->headroom_pct / 100.0);
	in->seed = cfg->seed;
	snprintf(in->tag, sizeof(in->tag), "%ld-%s-%llu", (long)getpid(), c->name,
		 (unsigned long long)ks->n);
	in->sh = mmap(NULL, sizeof(*in->sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		      -1, 0);
	if (in->sh == MAP_FAILED) {
		in->sh = NULL;
		return -ENOMEM;
	}
	fprintf(stderr, "bench: %-10s n=%-8llu populating...", c->name, (unsigned long long)ks->n);
	t0 = now_ns();
	rc = c->create(in);
	in->populate_s = (double)(now_ns() - t0) / 1e9;
	if (rc)
		fprintf(stderr, " FAILED (%d)\n", rc);
	else
		fprintf(stderr, " %.2f s\n", in->populate_s);
	if (rc) {
		munmap(in->sh, sizeof(*in->sh));
		in->sh = NULL;
		return rc;
	}
	if (res->n_inst < sizeof(res->inst) / sizeof(res->inst[0])) {
		res->inst[res->n_inst].contender = c->name;
		res->inst[res->n_inst].n = ks->n;
		res->inst[res->n_inst].populate_s = in->populate_s;
		res->n_inst++;
	}
	return 0;
}

static void destroy_instance(struct instance *in)
{
	if (!in->sh)
		return;
	in->c->destroy(in);
	munmap(in->sh, sizeof(*in->sh));
	in->sh = NULL;
}

/* One figure to measure in a block. */
struct job {
	struct instance *in;
	const struct scenario *sc;
	unsigned readers;
	int ref_of;		/* >= 0: a baseline for job ref_of, not a figure of its own */
};

#define MAX_JOBS 64

static const struct scenario *scenario_named(const char *name)
{
	for (unsigned i = 0; i < scenario_table_len; i++)
		if (strcmp(scenario_table[i].name, name) == 0)
			return &scenario_table[i];
	return NULL;
}

/*
 * The jobs of one scenario: every contender at every reader count, and,
 * when the scenario has a writer, connreg's lookup_hit at the same reader
 * count as its baseline (the with-updater targets are ratios to it).
 * Process-based contenders come first, so that no fork happens while
 * worker threads exist.
 */
static unsigned plan_block(const struct bench_config *cfg, struct instance *inst, unsigned nc,
			   const struct scenario *sc, struct job *jobs)
{
	unsigned counts[MAX_WORKERS], k = scenario_reader_counts(sc, cfg, counts, MAX_WORKERS);
	const struct scenario *hit = scenario_named("lookup_hit");
	unsigned n = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (unsigned j = 0; j < k; j++) {
			for (unsigned i = 0; i < nc && n + 2 <= MAX_JOBS; i++) {
				if (!inst[i].sh || inst[i].c->processes != (pass == 0))
					continue;
				unsigned me = n++;

				jobs[me] = (struct job){ &inst[i], sc, counts[j], -1 };
				if (sc->has_writer && counts[j] > 0 && hit &&
				    strcmp(inst[i].c->name, "connreg") == 0)
					jobs[n++] = (struct job){ &inst[i], hit, counts[j], (int)me };
			}
		}
	}
	return n;
}

/*
 * Measure one scenario for every contender and reader count: start every
 * job's workers, run the reps interleaved -- rep r of each job in turn,
 * starting with a different job each rep, so that noise from other
 * processes lands on all of them alike -- then compute the figures.
 * Returns how many failed.
 */
static unsigned run_block(const struct bench_config *cfg, struct instance *inst, unsigned nc,
			  const struct scenario *sc, const struct sequences *seqs,
			  struct results *res, struct plan_counts *pc)
{
	static struct job jobs[MAX_JOBS];
	static struct figure figs[MAX_JOBS];
	static struct figure_run runs[MAX_JOBS];
	unsigned n = plan_block(cfg, inst, nc, sc, jobs), failed = 0, figures = 0;

	for (unsigned k = 0; k < n; k++)
		figures += jobs[k].ref_of < 0;
	pc->done += figures;
	fprintf(stderr, "bench: [%3u/%u] %-30s n=%-8llu %u figures, %u reps interleaved\n",
		pc->done, pc->total, sc->name, (unsigned long long)inst[0].n, figures, cfg->reps);
	for (unsigned k = 0; k < n; k++)
		scenario_prepare(cfg, jobs[k].in, jobs[k].sc, jobs[k].readers, seqs, &figs[k],
				 &runs[k]);
	for (unsigned r = 0; r < cfg->reps; r++)
		for (unsigned k = 0; k < n; k++)
			scenario_rep(cfg, &runs[(r + k) % n], r);
	for (unsigned k = 0; k < n; k++)
		scenario_complete(cfg, &runs[k]);
	for (unsigned k = 0; k < n; k++) {
		if (jobs[k].ref_of >= 0 && !figs[k].failed) {
			struct figure *f = &figs[jobs[k].ref_of];

			f->ref_ns = figs[k].ns;
			f->ref_ns_cpu = figs[k].ns_cpu;
			f->ref_oncpu = figs[k].oncpu;
		}
	}

	/* Report by reader count, then in the contender table's order. */
	for (unsigned rd = 0; rd <= MAX_WORKERS; rd++) {
		for (unsigned i = 0; i < nc; i++) {
			for (unsigned k = 0; k < n; k++) {
				struct figure *f;

				if (jobs[k].ref_of >= 0 || jobs[k].in != &inst[i] ||
				    jobs[k].readers != rd)
					continue;
				f = results_add(res);
				if (!f)
					return failed + 1;
				*f = figs[k];
				if (f->failed)
					failed++;
				report_result_line(stdout, f);
			}
		}
	}
	fflush(stdout);
	return failed;
}

static int run_one_n(const struct bench_config *cfg, uint64_t n, const struct contender **cs,
		     unsigned nc, struct results *res, struct plan_counts *pc)
{
	struct keyset ks;
	struct sequences seqs;
	static struct instance inst[MAX_CONTENDERS];
	unsigned failed = 0;
	int rc;

	memset(&seqs, 0, sizeof(seqs));
	rc = keys_init(&ks, n, cfg->seed);
	if (!rc)
		rc = sequence_init(&seqs.hit, &ks, POOL_HIT, sequence_len(n), cfg->seed + 1);
	if (!rc)
		rc = sequence_init(&seqs.miss, &ks, POOL_MISS, sequence_len(n), cfg->seed + 2);
	if (rc) {
		fprintf(stderr, "bench: out of memory for n=%llu\n", (unsigned long long)n);
		return -1;
	}
	for (unsigned i = 0; i < nc; i++)
		if (create_instance(cfg, &inst[i], cs[i], &ks, res) != 0)
			failed++;

	for (unsigned s = 0; s < scenario_table_len; s++) {
		const struct scenario *sc = &scenario_table[s];

		if (list_has(cfg->scenarios, sc->name))
			failed += run_block(cfg, inst, nc, sc, &seqs, res, pc);
	}

	for (unsigned i = 0; i < nc; i++)
		destroy_instance(&inst[i]);
	sequence_free(&seqs.hit);
	sequence_free(&seqs.miss);
	keys_free(&ks);
	return (int)failed;
}

int matrix_run(const struct bench_config *cfg, struct results *res)
{
	const struct contender *cs[MAX_CONTENDERS];
	unsigned nc = selected_contenders(cfg, cs);
	struct plan_counts pc = { 0, 0 };
	int failed = 0;

	if (nc == 0) {
		fprintf(stderr, "bench: no contender selected\n");
		return 1;
	}
	pc.total = count_figures(cfg, nc);
	for (unsigned i = 0; i < cfg->n_count; i++) {
		int f = run_one_n(cfg, cfg->n[i], cs, nc, res, &pc);

		failed += f < 0 ? 1 : f;
	}
	return failed;
}
