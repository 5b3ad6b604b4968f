/*
 * cli.h: what every part of the connreg command-line tool shares: exit
 * codes and the table of subcommands.
 */
#ifndef CONNREG_CLI_H
#define CONNREG_CLI_H

#include <stdint.h>
#include <stdio.h>

/* Exit codes, documented in connreg(1). */
#define CLI_EXIT_OK	0	/* success */
#define CLI_EXIT_FAIL	1	/* id not found, check failed, cas mismatch, watch timeout */
#define CLI_EXIT_USAGE	2	/* bad arguments or malformed input */
#define CLI_EXIT_SYSTEM	3	/* any other error: open failed, ENOSPC, EPROTO, I/O... */

struct cli_command {
	const char *name;
	const char *synopsis;	/* arguments after "connreg NAME" */
	const char *summary;	/* one line for `connreg --help` */
	const char *details;	/* options and notes for `connreg CMD --help` */
	/* argv[0] is "connreg CMD"; returns an exit code. */
	int (*run)(const struct cli_command *self, int argc, char **argv);
};

extern const struct cli_command cmd_create, cmd_unlink;
extern const struct cli_command cmd_get, cmd_register, cmd_update, cmd_unregister, cmd_cas;
extern const struct cli_command cmd_list, cmd_dump, cmd_load;
extern const struct cli_command cmd_stat, cmd_check, cmd_reap;
extern const struct cli_command cmd_watch;
extern const struct cli_command cmd_hosts;

/* get --route: print "HOST TRANSPORT" for view value route of registry view (cmd_route.c). */
int cli_print_route(const struct cli_command *self, const char *view, uint64_t route);

/* Print the command's full help (synopsis, summary, details). */
void cli_print_help(const struct cli_command *cmd, FILE *out);

#endif /* CONNREG_CLI_H */
