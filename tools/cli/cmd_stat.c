/*
 * cmd_stat.c: stat, the registry's counters (connreg_stats) and the reader
 * slots in use (connreg_readers), as text, JSON, or Prometheus text (the
 * same as connregd's GET /metrics, written by tools/common/prom.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "escape.h"
#include "prom.h"
#include "report.h"

/* As connreg check: a first pass that finds problems is confirmed after this pause. */
#define STAT_RECHECK_PAUSE_MS 200

struct reader_list {
	connreg_reader_t *v;
	size_t n, cap;
};

static int collect_reader(const connreg_reader_t *r, void *arg)
{
	struct reader_list *rl = arg;

	if (rl->n == rl->cap) {
		size_t cap = rl->cap ? 2 * rl->cap : 64;
		connreg_reader_t *v = realloc(rl->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		rl->v = v;
		rl->cap = cap;
	}
	rl->v[rl->n++] = *r;
	return 0;
}

static void print_text(const char *name, const connreg_stats_t *st, const struct reader_list *rl)
{
	pid_t self = getpid();

	printf("registry         %s\n", name);
	printf("layout version   %" PRIu32 "\n", st->layout_version);
	printf("segment size     %" PRIu64 " bytes\n", st->segment_size);
	printf("flags            0x%" PRIx32 "%s\n", st->flags,
	       st->flags & CONNREG_TRANSPORT_IS_PID ? " (transport-is-pid)" : "");
	printf("capacity         %" PRIu64 "\n", st->capacity);
	printf("key_max          %" PRIu32 " bytes\n", st->key_max);
	printf("live ids         %" PRIu64 "\n", st->live);
	printf("free entries     %" PRIu64 "\n", st->free);
	printf("retired entries  %" PRIu64 " (waiting for a grace period)\n", st->retired);
	printf("entries          %" PRIu64 "\n", st->entries);
	printf("buckets          %" PRIu64 "\n", st->buckets);
	printf("tombstones       %" PRIu64 "\n", st->tombstones);
	printf("longest probe    %" PRIu32 " buckets\n", st->max_probe);
	printf("epoch            %" PRIu64 " (safe epoch %" PRIu64 ")\n", st->epoch,
	       st->safe_epoch);
	printf("writer EAGAIN    %" PRIu64 " (since creation, every process)\n",
	       st->writer_eagain);
	printf("slots recovered  %" PRIu64 " (reader slots of dead threads taken back)\n",
	       st->slots_recovered);
	printf("grace periods    %" PRIu64 "\n", st->grace_periods);
	printf("reader slots     %" PRIu32 " of %" PRIu32 " in use\n", st->readers,
	       st->max_threads);
	if (rl->n == 0)
		return;
	printf("  %-6s %-8s %-8s %-6s %s\n", "SLOT", "PID", "TID", "ALIVE", "EPOCH");
	for (size_t i = 0; i < rl->n; i++) {
		const connreg_reader_t *r = &rl->v[i];
		char epoch[32];

		if (r->epoch)
			snprintf(epoch, sizeof(epoch), "%" PRIu64, r->epoch);
		else
			snprintf(epoch, sizeof(epoch), "idle");
		printf("  %-6" PRIu32 " %-8" PRId32 " %-8" PRIu32 " %-6s %s%s\n", r->slot, r->pid,
		       r->tid, r->alive ? "yes" : "no", epoch,
		       r->pid == self ? "  (this connreg process)" : "");
	}
}

static void print_json(const char *name, const connreg_stats_t *st, const struct reader_list *rl)
{
	fputs("{\"registry\":", stdout);
	cli_fput_json_string(stdout, name, strlen(name));
	printf(",\"layout_version\":%" PRIu32 ",\"segment_size\":%" PRIu64
	       ",\"flags\":%" PRIu32 ",\"transport_is_pid\":%s"
	       ",\"capacity\":%" PRIu64 ",\"key_max\":%" PRIu32
	       ",\"live\":%" PRIu64 ",\"free\":%" PRIu64 ",\"retired\":%" PRIu64
	       ",\"entries\":%" PRIu64 ",\"buckets\":%" PRIu64 ",\"tombstones\":%" PRIu64
	       ",\"max_probe\":%" PRIu32 ",\"epoch\":%" PRIu64 ",\"safe_epoch\":%" PRIu64
	       ",\"writer_eagain\":%" PRIu64 ",\"slots_recovered\":%" PRIu64
	       ",\"grace_periods\":%" PRIu64
	       ",\"max_threads\":%" PRIu32 ",\"readers\":%" PRIu32 ",\"reader_slots\":[",
	       st->layout_version, st->segment_size, st->flags,
	       st->flags & CONNREG_TRANSPORT_IS_PID ? "true" : "false", st->capacity, st->key_max,
	       st->live, st->free, st->retired, st->entries, st->buckets, st->tombstones,
	       st->max_probe, st->epoch, st->safe_epoch, st->writer_eagain, st->slots_recovered,
	       st->grace_periods, st->max_threads, st->readers);
	for (size_t i = 0; i < rl->n; i++) {
		const connreg_reader_t *r = &rl->v[i];

		printf("%s{\"slot\":%" PRIu32 ",\"pid\":%" PRId32 ",\"tid\":%" PRIu32
		       ",\"alive\":%s,\"epoch\":%" PRIu64 "}",
		       i ? "," : "", r->slot, r->pid, r->tid, r->alive ? "true" : "false",
		       r->epoch);
	}
	fputs("]}\n", stdout);
}

/* --prometheus: the registry's metrics and a confirmed check, for a textfile collector. */
static int run_prometheus(const struct cli_command *self, const char *name, connreg_t *reg)
{
	struct connreg_prom_sample s;
	struct connreg_prom_extra x = { 0 };
	int rc = connreg_prom_collect(reg, &s);

	if (rc == 0) {
		x.has_check = true;
		x.check_problems = connreg_prom_check(reg, STAT_RECHECK_PAUSE_MS, NULL, NULL);
	}
	connreg_close(reg);
	if (rc)
		return cli_lib_error(self, name, NULL, rc);
	if (x.check_problems < 0)
		cli_error(self, name, NULL, "check could not run (connreg_check_problems is NaN): %s",
			  connreg_strerror(x.check_problems));
	connreg_prom_write(stdout, name, &s, &x);
	return cli_finish_output(self, name, CLI_EXIT_OK);
}

static int run_stat(const struct cli_command *self, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ "prometheus", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	char name[CLI_NAME_SIZE];
	struct reader_list rl = { 0 };
	connreg_stats_t st;
	struct cli_args a = { 0 };
	bool prom = false;
	connreg_t *reg;
	int c, rc;

	optind = 0;	/* GNU: start a fresh scan */
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_print_help(self, stdout);
			return CLI_EXIT_OK;
		case 'j':
			a.json = true;
			break;
		case 'p':
			prom = true;
			break;
		default:
			/* getopt has said what was wrong */
			return cli_usage_hint(self);
		}
	}
	if (a.json && prom)
		return cli_usage(self, "--json and --prometheus exclude each other");
	a.npos = argc - optind;
	a.pos = argv + optind;
	rc = cli_expect_args(self, &a, 1);
	if (rc < 0)
		rc = cli_name_arg(self, a.pos[0], name);
	if (rc < 0)
		rc = cli_open(self, name, &reg);
	if (rc >= 0)
		return rc;
	if (prom)
		return run_prometheus(self, name, reg);

	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	rc = connreg_stats(reg, &st);
	if (rc == 0)
		rc = connreg_readers(reg, collect_reader, &rl);
	connreg_close(reg);
	if (rc) {
		free(rl.v);
		return cli_lib_error(self, name, NULL, rc);
	}
	if (a.json)
		print_json(name, &st, &rl);
	else
		print_text(name, &st, &rl);
	free(rl.v);
	return cli_finish_output(self, name, CLI_EXIT_OK);
}

const struct cli_command cmd_stat = {
	.name = "stat",
	.synopsis = "[--json | --prometheus] NAME",
	.summary = "print the registry's geometry, counters and reader slots",
	.details =
		"Options:\n"
		"  --json  one JSON object with the keys registry, layout_version,\n"
		"          segment_size, flags, transport_is_pid, capacity, key_max, live,\n"
		"          free, retired, entries, buckets, tombstones, max_probe, epoch,\n"
		"          safe_epoch, writer_eagain, slots_recovered, grace_periods,\n"
		"          max_threads, readers and reader_slots (an array of\n"
		"          {slot, pid, tid, alive, epoch}; epoch 0: not inside a lookup)\n"
		"  --prometheus  Prometheus text exposition, the metrics connregd serves on\n"
		"          GET /metrics (without its own reap and check counters), after a\n"
		"          confirmed invariant check (connreg_check_problems), for\n"
		"          node_exporter's textfile collector:\n"
		"            connreg stat --prometheus NAME > DIR/connreg.prom.$$ &&\n"
		"            mv DIR/connreg.prom.$$ DIR/connreg.prom\n",
	.run = run_stat,
};
