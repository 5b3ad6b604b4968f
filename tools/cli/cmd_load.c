/*
 * cmd_load.c: load, the bulk import of "ID<TAB>TRANSPORT" lines.
 *
 * The whole input is read and checked before the first register, so
 * malformed input changes nothing; then every line is registered in order.
 * A library error midway (ENOSPC, say) stops the load and says how many
 * ids went in before it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "escape.h"
#include "progress.h"
#include "report.h"

/* Bad lines reported one by one; the rest are only counted. */
#define MAX_BAD_LINES_SHOWN 20

struct input {
	char *data;
	size_t len;
};

static int read_all(int fd, struct input *in)
{
	size_t cap = 1 << 16;

	in->len = 0;
	in->data = malloc(cap);
	if (!in->data)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (in->len == cap) {
			char *p = realloc(in->data, cap * 2);

			if (!p)
				return -ENOMEM;
			in->data = p;
			cap *= 2;
		}
		n = read(fd, in->data + in->len, cap - in->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		in->len += (size_t)n;
	}
}

/* One line, split; the id is unescaped into id. */
struct record {
	struct cli_id id;
	uint64_t transport;
};

/*
 * Parse one line (without its newline). 1: a record, 0: a blank line,
 * -1: malformed, with *why set (pointing into why_buf when it needs detail).
 */
static int parse_line(const char *line, size_t n, uint32_t key_max, struct record *r,
		      const char **why, char *why_buf, size_t why_size)
{
	const char *tab;
	char num[32];
	size_t num_len;

	if (n && line[n - 1] == '\r')
		n--;	/* tolerate CRLF files */
	if (n == 0)
		return 0;
	tab = memchr(line, '\t', n);
	if (!tab) {
		*why = "no TAB between id and transport";
		return -1;
	}
	if (tab == line) {
		*why = "empty id";
		return -1;
	}
	if (cli_unescape_id(line, (size_t)(tab - line), r->id.bytes, sizeof(r->id.bytes),
			    &r->id.len, why))
		return -1;
	if (r->id.len > key_max) {
		snprintf(why_buf, why_size,
			 "id is %zu bytes, longer than the registry's key_max %u", r->id.len,
			 key_max);
		*why = why_buf;
		return -1;
	}
	num_len = n - (size_t)(tab + 1 - line);
	if (num_len == 0 || num_len >= sizeof(num)) {
		*why = "bad transport: expected a decimal or 0x hex number below 2^64";
		return -1;
	}
	memcpy(num, tab + 1, num_len);
	num[num_len] = '\0';
	if (memchr(num, '\0', num_len) || cli_parse_u64(num, &r->transport)) {
		*why = "bad transport: expected a decimal or 0x hex number below 2^64";
		return -1;
	}
	return 1;
}

/* Calls fn for each line: its number, start and length. Stops on non-zero. */
static int for_each_line(const struct input *in,
			 int (*fn)(uint64_t lineno, const char *line, size_t n, void *arg),
			 void *arg)
{
	const char *p = in->data, *end = in->data + in->len;
	uint64_t lineno = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		int rc;

		rc = fn(++lineno, p, n, arg);
		if (rc)
			return rc;
		p += n + 1;
	}
	return 0;
}

struct load {
	const struct cli_command *self;
	const char *name;
	const char *file;	/* as shown in messages */
	uint32_t key_max;
	connreg_t *reg;
	uint64_t records, bad, loaded;
	struct cli_progress progress;
	struct record rec;	/* too big for the stack of a callback called millions of times */
};

static int check_line(uint64_t lineno, const char *line, size_t n, void *arg)
{
	struct load *l = arg;
	char why_buf[96];
	const char *why;
	int rc = parse_line(line, n, l->key_max, &l->rec, &why, why_buf, sizeof(why_buf));

	if (rc > 0)
		l->records++;
	if (rc >= 0)
		return 0;
	if (++l->bad <= MAX_BAD_LINES_SHOWN)
		cli_error(l->self, l->name, NULL, "%s:%" PRIu64 ": %s", l->file, lineno, why);
	return 0;
}

static int load_line(uint64_t lineno, const char *line, size_t n, void *arg)
{
	struct load *l = arg;
	char why_buf[96];
	const char *why;
	int rc = parse_line(line, n, l->key_max, &l->rec, &why, why_buf, sizeof(why_buf));

	if (rc <= 0)
		return 0;	/* blank: checked before */
	rc = connreg_register(l->reg, l->rec.id.bytes, l->rec.id.len, l->rec.transport);
	if (rc) {
		cli_progress_end(&l->progress);
		cli_error(l->self, l->name, &l->rec.id, "%s:%" PRIu64 ": %s", l->file, lineno,
			  connreg_strerror(rc));
		cli_error(l->self, l->name, NULL,
			  "stopped: %" PRIu64 " of %" PRIu64 " ids loaded before this error",
			  l->loaded, l->records);
		return rc;
	}
	l->loaded++;
	cli_progress_step(&l->progress);
	return 0;
}

static int open_input(const struct load *l, const char *path, int *fd)
{
	if (strcmp(path, "-") == 0) {
		*fd = STDIN_FILENO;
		return -1;
	}
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		cli_error(l->self, l->name, NULL, "%s: %s", path, strerror(errno));
		return CLI_EXIT_SYSTEM;
	}
	return -1;
}

static int run_load(const struct cli_command *self, int argc, char **argv)
{
	char name[CLI_NAME_SIZE];
	struct input in = { 0 };
	connreg_stats_t st = { .size = sizeof(st) };
	struct cli_args a;
	struct load *l;
	int rc, fd;

	rc = cli_parse_args(self, argc, argv, 0, &a);
	if (rc < 0)
		rc = cli_expect_args(self, &a, 2);
	if (rc < 0)
		rc = cli_name_arg(self, a.pos[0], name);
	if (rc >= 0)
		return rc;
	l = calloc(1, sizeof(*l));
	if (!l)
		return cli_lib_error(self, name, NULL, -ENOMEM);
	l->self = self;
	l->name = name;
	l->file = strcmp(a.pos[1], "-") == 0 ? "<stdin>" : a.pos[1];

	rc = cli_open(self, name, &l->reg);
	if (rc >= 0)
		goto out_free;
	rc = connreg_stats(l->reg, &st);
	if (rc) {
		rc = cli_lib_error(self, name, NULL, rc);
		goto out_close;
	}
	l->key_max = st.key_max;

	rc = open_input(l, a.pos[1], &fd);
	if (rc >= 0)
		goto out_close;
	rc = read_all(fd, &in);
	if (fd != STDIN_FILENO)
		close(fd);
	if (rc) {
		cli_error(self, name, NULL, "reading %s: %s", l->file, strerror(-rc));
		rc = CLI_EXIT_SYSTEM;
		goto out_close;
	}

	for_each_line(&in, check_line, l);
	if (l->bad) {
		if (l->bad > MAX_BAD_LINES_SHOWN)
			cli_error(self, name, NULL, "... and %" PRIu64 " more bad lines",
				  l->bad - MAX_BAD_LINES_SHOWN);
		cli_error(self, name, NULL,
			  "%s: %" PRIu64 " malformed line(s); nothing loaded (0 of %" PRIu64
			  " ids)", l->file, l->bad, l->records);
		rc = CLI_EXIT_USAGE;
		goto out_close;
	}

	cli_progress_begin(&l->progress, "ids loaded", l->records);
	rc = for_each_line(&in, load_line, l);
	if (rc) {
		rc = rc == -EINVAL || rc == -ENAMETOOLONG ? CLI_EXIT_USAGE : CLI_EXIT_SYSTEM;
		goto out_close;
	}
	cli_progress_end(&l->progress);
	printf("loaded %" PRIu64 " ids into %s\n", l->loaded, name);
	rc = cli_finish_output(self, name, CLI_EXIT_OK);

out_close:
	connreg_close(l->reg);
out_free:
	free(in.data);
	free(l);
	return rc;
}

const struct cli_command cmd_load = {
	.name = "load",
	.synopsis = "NAME FILE",
	.summary = "register every \"ID<TAB>TRANSPORT\" line of FILE (- for stdin)",
	.details =
		"The format is dump's: per line an id, escaped as list prints it (\\\\ is a\n"
		"backslash, \\xNN the byte NN, any other byte stands for itself), a TAB,\n"
		"and the transport in decimal or 0x hex. Blank lines are skipped;\n"
		"a later line for the same id wins. The whole input is checked first: any\n"
		"malformed line is reported by number and nothing is loaded (exit 2).\n"
		"A progress bar is drawn on standard error when it is a terminal and\n"
		"the input holds 10000 ids or more.\n",
	.run = run_load,
};
