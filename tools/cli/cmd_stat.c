/*
 * cmd_stat.c: stat, the registry's counters (connreg_stats) and the reader
 * slots in use (connreg_readers), as text or JSON.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "escape.h"
#include "report.h"

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
	       ",\"max_threads\":%" PRIu32 ",\"readers\":%" PRIu32 ",\"reader_slots\":[",
	       st->layout_version, st->segment_size, st->flags,
	       st->flags & CONNREG_TRANSPORT_IS_PID ? "true" : "false", st->capacity, st->key_max,
	       st->live, st->free, st->retired, st->entries, st->buckets, st->tombstones,
	       st->max_probe, st->epoch, st->safe_epoch, st->max_threads, st->readers);
	for (size_t i = 0; i < rl->n; i++) {
		const connreg_reader_t *r = &rl->v[i];

		printf("%s{\"slot\":%" PRIu32 ",\"pid\":%" PRId32 ",\"tid\":%" PRIu32
		       ",\"alive\":%s,\"epoch\":%" PRIu64 "}",
		       i ? "," : "", r->slot, r->pid, r->tid, r->alive ? "true" : "false",
		       r->epoch);
	}
	fputs("]}\n", stdout);
}

static int run_stat(const struct cli_command *self, int argc, char **argv)
{
	char name[CLI_NAME_SIZE];
	struct reader_list rl = { 0 };
	connreg_stats_t st = { .size = sizeof(st) };
	struct cli_args a;
	connreg_t *reg;
	int rc;

	rc = cli_start_named(self, argc, argv, CLI_ALLOW_JSON, &a, name, &reg);
	if (rc >= 0)
		return rc;
	memset(&st, 0, sizeof(st));
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
	.synopsis = "[--json] NAME",
	.summary = "print the registry's geometry, counters and reader slots",
	.details =
		"Options:\n"
		"  --json  one JSON object with the keys registry, layout_version,\n"
		"          segment_size, flags, transport_is_pid, capacity, key_max, live,\n"
		"          free, retired, entries, buckets, tombstones, max_probe, epoch,\n"
		"          safe_epoch, max_threads, readers and reader_slots (an array of\n"
		"          {slot, pid, tid, alive, epoch}; epoch 0: not inside a lookup)\n",
	.run = run_stat,
};
