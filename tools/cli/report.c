/*
 * report.c: error messages and the mapping from connreg errors to exit
 * codes (see connreg(1), EXIT STATUS).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"
#include "report.h"

static void put_prefix(const struct cli_command *cmd, const char *name, const struct cli_id *id)
{
	fprintf(stderr, "connreg: %s", cmd->name);
	if (name)
		fprintf(stderr, " %s", name);
	if (id) {
		fputs(" \"", stderr);
		cli_fput_id(stderr, id->bytes, id->len);
		putc('"', stderr);
	}
	fputs(": ", stderr);
}

int cli_usage_hint(const struct cli_command *cmd)
{
	fprintf(stderr, "Try 'connreg %s --help'.\n", cmd->name);
	return CLI_EXIT_USAGE;
}

int cli_usage(const struct cli_command *cmd, const char *fmt, ...)
{
	va_list ap;

	put_prefix(cmd, NULL, NULL);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	putc('\n', stderr);
	return cli_usage_hint(cmd);
}

void cli_error(const struct cli_command *cmd, const char *name, const struct cli_id *id,
	       const char *fmt, ...)
{
	va_list ap;

	put_prefix(cmd, name, id);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	putc('\n', stderr);
}

int cli_lib_error(const struct cli_command *cmd, const char *name, const struct cli_id *id,
		  int rc)
{
	cli_error(cmd, name, id, "%s", connreg_strerror(rc));
	if (rc == -ENOENT && id)
		return CLI_EXIT_FAIL;
	if (rc == -EINVAL || rc == -ENAMETOOLONG)
		return CLI_EXIT_USAGE;
	return CLI_EXIT_SYSTEM;
}

int cli_open(const struct cli_command *cmd, const char *name, connreg_t **reg)
{
	int rc = connreg_open(name, reg);

	if (rc == 0)
		return -1;
	cli_error(cmd, name, NULL, "cannot open registry: %s", connreg_strerror(rc));
	/* A missing registry is a system error (3), unlike a missing id (1). */
	return rc == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_SYSTEM;
}

int cli_finish_output(const struct cli_command *cmd, const char *name, int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error(cmd, name, NULL, "writing output: %s", strerror(errno));
		return CLI_EXIT_SYSTEM;
	}
	return rc;
}

int cli_start_named(const struct cli_command *cmd, int argc, char **argv, unsigned allow,
		    struct cli_args *a, char *name, connreg_t **reg)
{
	int rc = cli_parse_args(cmd, argc, argv, allow, a);

	if (rc < 0)
		rc = cli_expect_args(cmd, a, 1);
	if (rc < 0)
		rc = cli_name_arg(cmd, a->pos[0], name);
	if (rc < 0 && reg)
		rc = cli_open(cmd, name, reg);
	return rc;
}
