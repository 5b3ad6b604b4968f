/*
 * cmd_list.c: list (sorted, for people, or JSON) and dump (streamed in
 * the load format). Both walk the registry with connreg_foreach.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "escape.h"
#include "progress.h"
#include "report.h"

struct list_item {
	uint64_t transport;
	size_t len;
	unsigned char *id;
};

struct list_items {
	struct list_item *v;
	size_t n, cap;
};

static int collect_item(const void *id, size_t len, uint64_t transport, void *arg)
{
	struct list_items *items = arg;
	struct list_item *it;

	if (items->n == items->cap) {
		size_t cap = items->cap ? 2 * items->cap : 1024;
		struct list_item *v = realloc(items->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		items->v = v;
		items->cap = cap;
	}
	it = &items->v[items->n];
	it->id = malloc(len);
	if (!it->id)
		return -ENOMEM;
	memcpy(it->id, id, len);
	it->len = len;
	it->transport = transport;
	items->n++;
	return 0;
}

/* Bytewise order, a prefix first: "a" < "a\x00" < "b". */
static int compare_items(const void *pa, const void *pb)
{
	const struct list_item *a = pa, *b = pb;
	int c = memcmp(a->id, b->id, a->len < b->len ? a->len : b->len);

	if (c)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

static void free_items(struct list_items *items)
{
	for (size_t i = 0; i < items->n; i++)
		free(items->v[i].id);
	free(items->v);
}

static void print_items_json(const char *name, const struct list_items *items)
{
	fputs("{\"registry\":", stdout);
	cli_fput_json_string(stdout, name, strlen(name));
	printf(",\"count\":%zu,\"ids\":[", items->n);
	for (size_t i = 0; i < items->n; i++) {
		const struct list_item *it = &items->v[i];

		fputs(i ? ",\n{" : "\n{", stdout);
		cli_fput_json_id(stdout, it->id, it->len);
		printf(",\"transport\":%" PRIu64 ",\"transport_hex\":\"0x%" PRIx64 "\"}",
		       it->transport, it->transport);
	}
	fputs("\n]}\n", stdout);
}

static int run_list(const struct cli_command *self, int argc, char **argv)
{
	char name[CLI_NAME_SIZE];
	struct list_items items = { 0 };
	struct cli_args a;
	connreg_t *reg;
	int rc;

	rc = cli_start_named(self, argc, argv, CLI_ALLOW_JSON, &a, name, &reg);
	if (rc >= 0)
		return rc;
	rc = connreg_foreach(reg, collect_item, &items);
	connreg_close(reg);
	if (rc) {
		free_items(&items);
		return cli_lib_error(self, name, NULL, rc);
	}
	if (items.n)	/* qsort of a NULL array is undefined, even when empty */
		qsort(items.v, items.n, sizeof(*items.v), compare_items);
	if (a.json) {
		print_items_json(name, &items);
	} else {
		for (size_t i = 0; i < items.n; i++) {
			cli_fput_id(stdout, items.v[i].id, items.v[i].len);
			printf("\t%" PRIu64 "\n", items.v[i].transport);
		}
	}
	free_items(&items);
	return cli_finish_output(self, name, CLI_EXIT_OK);
}

const struct cli_command cmd_list = {
	.name = "list",
	.synopsis = "[--json] NAME",
	.summary = "print every id and its transport, sorted by id",
	.details =
		"Options:\n"
		"  --json  one JSON object: {\"registry\", \"count\", \"ids\": [{\"id\",\n"
		"          \"id_hex\", \"transport\", \"transport_hex\"}]}\n"
		"Text output is one \"ID<TAB>TRANSPORT\" line per id; ID is escaped: printable\n"
		"ASCII as is, a backslash as \\\\, any other byte as \\xNN.\n",
	.run = run_list,
};

struct dump_state {
	struct cli_progress progress;
};

static int dump_item(const void *id, size_t len, uint64_t transport, void *arg)
{
	struct dump_state *d = arg;

	cli_fput_id(stdout, id, len);
	printf("\t%" PRIu64 "\n", transport);
	cli_progress_step(&d->progress);
	/* Stop early when the reader went away or the disk is full. */
	return ferror(stdout) ? -EIO : 0;
}

static int run_dump(const struct cli_command *self, int argc, char **argv)
{
	char name[CLI_NAME_SIZE];
	struct dump_state d;
	connreg_stats_t st = { .size = sizeof(st) };
	struct cli_args a;
	connreg_t *reg;
	int rc;

	rc = cli_start_named(self, argc, argv, 0, &a, name, &reg);
	if (rc >= 0)
		return rc;
	rc = connreg_stats(reg, &st);
	if (rc == 0) {
		cli_progress_begin(&d.progress, "ids dumped", st.live);
		rc = connreg_foreach(reg, dump_item, &d);
		cli_progress_end(&d.progress);
	}
	connreg_close(reg);
	if (rc == -EIO)
		return cli_finish_output(self, name, CLI_EXIT_SYSTEM);
	if (rc)
		return cli_lib_error(self, name, NULL, rc);
	return cli_finish_output(self, name, CLI_EXIT_OK);
}

const struct cli_command cmd_dump = {
	.name = "dump",
	.synopsis = "NAME",
	.summary = "write every id as \"ID<TAB>TRANSPORT\" lines, the input of load",
	.details =
		"IDs are escaped as by list; the order is the registry's, not sorted.\n"
		"A progress bar is drawn on standard error when it is a terminal and\n"
		"the registry holds 10000 ids or more.\n",
	.run = run_dump,
};
