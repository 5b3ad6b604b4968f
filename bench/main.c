/*
 * connreg-bench: measures connreg against its peers on named scenarios.
 * main.c: options, defaults, and the order of the output.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "contender.h"
#include "machine.h"
#include "matrix.h"
#include "plot.h"
#include "report.h"
#include "scenario.h"
#include "timing.h"
#include "workers.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: connreg-bench [options]\n"
		"  --quick              smoke test: n=10000,100000, 3 reps x 25 ms (~20 s)\n"
		"  --json FILE          write every figure, the machine and the targets as JSON\n"
		"  --plot DIR           draw PNG charts with gnuplot into DIR\n"
		"  --n LIST             registered ids, e.g. 10000,1M (default 10000,1000000)\n"
		"  --reps R             repetitions per figure (default 7; quick 3; max %u)\n"
		"  --duration-ms D      length of one repetition (default 200; quick 25)\n"
		"  --warmup-ms W        warm-up per worker before rep 1 (default 50; quick 10);\n"
		"                       each rep starts with min(W, 20 ms; quick 5 ms) more\n"
		"  --sample P           time 1 lookup in P individually (default 64; 0: none)\n"
		"  --rate R             fixed updater rate, updates/s (default 1000000)\n"
		"  --batch B            ids per bulk call (default 64, max %u)\n"
		"  --headroom PCT       connreg capacity = n + PCT%% (default 12.5; 0: full)\n"
		"  --contenders LIST    subset, e.g. connreg,shm_rwlock (default: all built)\n"
		"  --scenarios LIST     subset of the scenarios (default: all)\n"
		"  --max-readers K      most readers (default: usable CPUs)\n"
		"  --cpus LIST          CPUs to pin to, in order (default: all usable)\n"
		"  --no-pin             do not pin workers\n"
		"  --seed S             id and sequence seed (default 42)\n"
		"  --list               list contenders and scenarios, then exit\n",
		MAX_REPS, MAX_BATCH);
}

static uint64_t parse_count(const char *s, bool *ok)
{
	char *end;
	double v = strtod(s, &end);

	if (*end == 'k' || *end == 'K')
		v *= 1e3, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1e6, end++;
	*ok = end != s && *end == '\0' && v >= 1;
	return (uint64_t)v;
}

static bool parse_n_list(const char *s, struct bench_config *cfg)
{
	char buf[256], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", s);
	cfg->n_count = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		bool ok;
		uint64_t n = parse_count(tok, &ok);

		if (!ok || cfg->n_count == MAX_NS || n > 100000000ull)
			return false;
		cfg->n[cfg->n_count++] = n;
	}
	return cfg->n_count > 0;
}

static bool parse_cpus(const char *s, struct bench_config *cfg)
{
	char buf[512], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", s);
	cfg->ncpus = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		long c = strtol(tok, &end, 10);

		if (*end || c < 0 || cfg->ncpus == MAX_CPUS)
			return false;
		cfg->cpus[cfg->ncpus++] = (int)c;
	}
	return cfg->ncpus > 0;
}

static void list_all(void)
{
	printf("contenders:\n");
	for (unsigned i = 0; i < contender_table_len; i++) {
		const struct contender_entry *e = &contender_table[i];

		if (e->c)
			printf("  %-12s %s\n", e->name, e->c->what);
		else
			printf("  %-12s NOT BUILT: %s\n", e->name, e->missing);
	}
	printf("scenarios:\n");
	for (unsigned i = 0; i < scenario_table_len; i++)
		printf("  %-30s %s\n", scenario_table[i].name, scenario_table[i].what);
}

enum {
	OPT_JSON = 256, OPT_PLOT, OPT_N, OPT_REPS, OPT_DURATION, OPT_WARMUP, OPT_SAMPLE, OPT_RATE,
	OPT_BATCH, OPT_CONTENDERS, OPT_SCENARIOS, OPT_MAX_READERS, OPT_CPUS, OPT_NO_PIN, OPT_SEED,
	OPT_LIST, OPT_QUICK, OPT_HEADROOM,
};

static const struct option long_opts[] = {
	{ "quick", no_argument, NULL, OPT_QUICK },
	{ "json", required_argument, NULL, OPT_JSON },
	{ "plot", required_argument, NULL, OPT_PLOT },
	{ "n", required_argument, NULL, OPT_N },
	{ "reps", required_argument, NULL, OPT_REPS },
	{ "duration-ms", required_argument, NULL, OPT_DURATION },
	{ "warmup-ms", required_argument, NULL, OPT_WARMUP },
	{ "sample", required_argument, NULL, OPT_SAMPLE },
	{ "rate", required_argument, NULL, OPT_RATE },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "headroom", required_argument, NULL, OPT_HEADROOM },
	{ "contenders", required_argument, NULL, OPT_CONTENDERS },
	{ "scenarios", required_argument, NULL, OPT_SCENARIOS },
	{ "max-readers", required_argument, NULL, OPT_MAX_READERS },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "no-pin", no_argument, NULL, OPT_NO_PIN },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "list", no_argument, NULL, OPT_LIST },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Values given on the command line win over the mode's defaults. */
struct overrides {
	long reps, duration_ms, warmup_ms, sample;
	const char *n;
};

static int parse_args(int argc, char **argv, struct bench_config *cfg, struct overrides *ov)
{
	int c;
	bool ok;

	while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_QUICK:
			cfg->quick = true;
			break;
		case OPT_JSON:
			cfg->json_path = optarg;
			break;
		case OPT_PLOT:
			cfg->plot_dir = optarg;
			break;
		case OPT_N:
			ov->n = optarg;
			break;
		case OPT_REPS:
			ov->reps = strtol(optarg, NULL, 10);
			if (ov->reps < 1 || ov->reps > (long)MAX_REPS)
				return -1;
			break;
		case OPT_DURATION:
			ov->duration_ms = strtol(optarg, NULL, 10);
			if (ov->duration_ms < 1)
				return -1;
			break;
		case OPT_WARMUP:
			ov->warmup_ms = strtol(optarg, NULL, 10);
			if (ov->warmup_ms < 0)
				return -1;
			break;
		case OPT_SAMPLE:
			ov->sample = strtol(optarg, NULL, 10);
			if (ov->sample < 0 || ov->sample > 1 << 20)
				return -1;
			break;
		case OPT_RATE:
			cfg->rate = (double)parse_count(optarg, &ok);
			if (!ok)
				return -1;
			break;
		case OPT_BATCH:
			cfg->batch = (unsigned)strtoul(optarg, NULL, 10);
			if (cfg->batch < 1 || cfg->batch > MAX_BATCH)
				return -1;
			break;
		case OPT_HEADROOM:
			cfg->headroom_pct = strtod(optarg, NULL);
			if (cfg->headroom_pct < 0 || cfg->headroom_pct > 1000)
				return -1;
			break;
		case OPT_CONTENDERS:
			cfg->contenders = optarg;
			break;
		case OPT_SCENARIOS:
			cfg->scenarios = optarg;
			break;
		case OPT_MAX_READERS:
			cfg->max_readers = (unsigned)strtoul(optarg, NULL, 10);
			if (cfg->max_readers < 1 || cfg->max_readers >= MAX_WORKERS)
				return -1;
			break;
		case OPT_CPUS:
			if (!parse_cpus(optarg, cfg))
				return -1;
			break;
		case OPT_NO_PIN:
			cfg->pin = false;
			break;
		case OPT_SEED:
			cfg->seed = strtoull(optarg, NULL, 0);
			break;
		case OPT_LIST:
			list_all();
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	return optind == argc ? 0 : -1;
}

static void apply_defaults(struct bench_config *cfg, const struct overrides *ov)
{
	cfg->reps = cfg->quick ? 3 : 7;
	cfg->duration_ns = (cfg->quick ? 25 : 200) * 1000000ull;
	cfg->warmup_ns = (cfg->quick ? 10 : 50) * 1000000ull;
	cfg->rep_warmup_ns = (cfg->quick ? 5 : 20) * 1000000ull;
	cfg->sample_period = 64;
	cfg->sample_cap = cfg->quick ? 8192 : 32768;
	if (!ov->n)
		parse_n_list(cfg->quick ? "10000,100000" : "10000,1000000", cfg);
	if (ov->reps)
		cfg->reps = (unsigned)ov->reps;
	if (ov->duration_ms)
		cfg->duration_ns = (uint64_t)ov->duration_ms * 1000000ull;
	if (ov->warmup_ms >= 0) {
		cfg->warmup_ns = (uint64_t)ov->warmup_ms * 1000000ull;
		if (cfg->rep_warmup_ns > cfg->warmup_ns)
			cfg->rep_warmup_ns = cfg->warmup_ns;
	}
	if (ov->sample >= 0)
		cfg->sample_period = (unsigned)ov->sample;
}

/* Every name in a comma list must be known; complain about the first that is not. */
static bool names_known(const char *list, const char *what, bool contenders)
{
	char buf[512], *save = NULL, *tok;

	if (!list)
		return true;
	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		bool found = false;

		for (unsigned i = 0; contenders && i < contender_table_len; i++)
			found |= strcmp(contender_table[i].name, tok) == 0;
		for (unsigned i = 0; !contenders && i < scenario_table_len; i++)
			found |= strcmp(scenario_table[i].name, tok) == 0;
		if (!found) {
			fprintf(stderr, "connreg-bench: unknown %s '%s' (--list shows them)\n", what,
				tok);
			return false;
		}
	}
	return true;
}

static void note_skipped(struct results *res, const struct bench_config *cfg)
{
	size_t off = 0;

	for (unsigned i = 0; i < contender_table_len; i++) {
		const struct contender_entry *e = &contender_table[i];
		int k;

		if (e->c || !list_has(cfg->contenders, e->name))
			continue;
		k = snprintf(res->skipped + off, sizeof(res->skipped) - off, "%s%s (%s)",
			     off ? "; " : "", e->name, e->missing);
		if (k < 0 || (size_t)k >= sizeof(res->skipped) - off)
			break;
		off += (size_t)k;
		fprintf(stderr, "bench: SKIPPED contender %s: %s\n", e->name, e->missing);
	}
}

int main(int argc, char **argv)
{
	static struct bench_config cfg;
	struct overrides ov = { 0, 0, -1, -1, NULL };
	struct results res;
	int failed;

	cfg.pin = true;
	cfg.rate = 1e6;
	cfg.batch = 64;
	cfg.headroom_pct = 12.5;
	cfg.seed = 42;
	if (parse_args(argc, argv, &cfg, &ov) != 0) {
		usage(stderr);
		return 2;
	}
	if (ov.n && !parse_n_list(ov.n, &cfg)) {
		fprintf(stderr, "connreg-bench: bad --n list '%s'\n", ov.n);
		return 2;
	}
	if (!names_known(cfg.contenders, "contender", true) ||
	    !names_known(cfg.scenarios, "scenario", false))
		return 2;
	apply_defaults(&cfg, &ov);
	if (cfg.ncpus == 0)
		cfg.ncpus = cpus_allowed(cfg.cpus, MAX_CPUS);
	cfg.online_cpus = (unsigned)sysconf(_SC_NPROCESSORS_ONLN);

	timing_init(cfg.quick ? 30 : 100);
	matrix_clean_stale();
	memset(&res, 0, sizeof(res));
	res.cfg = &cfg;
	res.loadavg_end = NAN;
	machine_describe(&res.machine);
	note_skipped(&res, &cfg);
	report_header(stdout, &res);
	fflush(stdout);

	failed = matrix_run(&cfg, &res);
	res.loadavg_end = loadavg1();

	printf("\n");
	report_header(stdout, &res);
	report_table(stdout, &res);
	report_ratios(stdout, &res);
	report_targets(stdout, &res);
	if (res.n_inst) {
		printf("populate (create + register n ids, parent process):");
		for (unsigned i = 0; i < res.n_inst; i++)
			printf(" %s/n=%llu %.2fs", res.inst[i].contender,
			       (unsigned long long)res.inst[i].n, res.inst[i].populate_s);
		printf("\n");
	}
	if (cfg.json_path && report_json(cfg.json_path, &res) == 0)
		fprintf(stderr, "bench: JSON written to %s\n", cfg.json_path);
	fflush(stdout);
	if (cfg.plot_dir)
		plot_write(cfg.plot_dir, &res);
	if (failed)
		fprintf(stderr, "bench: %d figure(s) FAILED\n", failed);
	free(res.fig);
	return failed ? 1 : 0;
}
