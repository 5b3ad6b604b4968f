/*
 * report.h: error messages and the exit codes they lead to. Every message
 * starts "connreg: CMD NAME" and, for an id, its escaped form in quotes.
 */
#ifndef CONNREG_CLI_REPORT_H
#define CONNREG_CLI_REPORT_H

#include <stddef.h>

#include "connreg.h"
#include "cli.h"
#include "args.h"

/* "connreg: CMD: <message>" and a pointer to --help. Returns CLI_EXIT_USAGE. */
int cli_usage(const struct cli_command *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Only the pointer to --help, after getopt's own message. Returns CLI_EXIT_USAGE. */
int cli_usage_hint(const struct cli_command *cmd);

/*
 * Report a connreg error rc of an operation on registry `name` (and id,
 * when the operation was about one id). Returns the exit code:
 * CLI_EXIT_FAIL for -ENOENT about an id (the id is absent),
 * CLI_EXIT_USAGE for -EINVAL and -ENAMETOOLONG (the arguments were bad),
 * CLI_EXIT_SYSTEM for everything else, -ENOENT of a registry included.
 */
int cli_lib_error(const struct cli_command *cmd, const char *name, const struct cli_id *id,
		  int rc);

/* "connreg: CMD NAME["id"]: <message>" with no exit-code policy. */
void cli_error(const struct cli_command *cmd, const char *name, const struct cli_id *id,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Open registry `name`; on failure report it and return the exit code, else -1. */
int cli_open(const struct cli_command *cmd, const char *name, connreg_t **reg);

/*
 * The common start of a subcommand whose only operand is NAME: parse the
 * options in `allow`, expect one operand, check the name, and (if reg is
 * not NULL) open the registry. -1 to go on, else the exit code to return.
 */
int cli_start_named(const struct cli_command *cmd, int argc, char **argv, unsigned allow,
		    struct cli_args *a, char *name, connreg_t **reg);

/* Flush stdout; on a write error report it and return CLI_EXIT_SYSTEM, else rc. */
int cli_finish_output(const struct cli_command *cmd, const char *name, int rc);

#endif /* CONNREG_CLI_REPORT_H */
