/*
 * main.c: connreg, the operator's command-line tool for connreg
 * registries. Finds the subcommand and hands it the rest of argv.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "connreg.h"
#include "cli.h"

static const struct cli_command *const commands[] = {
	&cmd_create, &cmd_unlink,
	&cmd_get, &cmd_register, &cmd_update, &cmd_unregister, &cmd_cas,
	&cmd_list, &cmd_dump, &cmd_load,
	&cmd_stat, &cmd_check, &cmd_reap,
	&cmd_watch, &cmd_hosts,
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct cli_command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

void cli_print_help(const struct cli_command *cmd, FILE *out)
{
	fprintf(out, "Usage: connreg %s %s\n\n%s\n", cmd->name, cmd->synopsis, cmd->summary);
	if (cmd->details && *cmd->details)
		fprintf(out, "\n%s", cmd->details);
	fputs("\nExit status: 0 ok, 1 not found / check failed / cas mismatch, 2 usage error,\n"
	      "3 system error (e.g. no such registry). See connreg(1).\n", out);
}

static void print_main_help(FILE *out)
{
	fputs("Usage: connreg COMMAND [OPTIONS] NAME [ARGS...]\n"
	      "       connreg help [COMMAND] | --help | --version\n"
	      "\n"
	      "Inspect and change connreg registries: connection ids -> 64-bit transports\n"
	      "in POSIX shared memory.\n"
	      "\n"
	      "Commands:\n", out);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %-11s %s\n", commands[i]->name, commands[i]->summary);
	fputs("\n"
	      "NAME is a registry name such as /sessions (the leading / may be left out).\n"
	      "ID is text, or 0x followed by hex digits for a binary id; --text takes it\n"
	      "literally, --escaped reads the \\xNN escapes that list and dump print.\n"
	      "TRANSPORT is a decimal or 0x hex number from 0 to 2^64-1.\n"
	      "\n"
	      "Exit status: 0 ok, 1 not found / check failed / cas mismatch, 2 usage error,\n"
	      "3 system error (e.g. no such registry).\n"
	      "'connreg COMMAND --help' describes one command; man connreg has them all.\n",
	      out);
}

__attribute__((format(printf, 1, 2)))
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("connreg: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'connreg --help'.\n", stderr);
	return CLI_EXIT_USAGE;
}

static int help_command(int argc, char **argv)
{
	const struct cli_command *cmd;

	if (argc == 1) {
		print_main_help(stdout);
		return CLI_EXIT_OK;
	}
	if (argc > 2)
		return usage_error("help: too many arguments");
	cmd = find_command(argv[1]);
	if (!cmd)
		return usage_error("help: unknown command \"%s\"", argv[1]);
	cli_print_help(cmd, stdout);
	return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
	const struct cli_command *cmd;
	char prog[64];

	if (argc < 2)
		return usage_error("missing command");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		print_main_help(stdout);
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("connreg %d.%d\n", CONNREG_VERSION_MAJOR, CONNREG_VERSION_MINOR);
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "help") == 0)
		return help_command(argc - 1, argv + 1);
	if (argv[1][0] == '-')
		return usage_error("unknown option \"%s\" (options follow the command)", argv[1]);
	cmd = find_command(argv[1]);
	if (!cmd)
		return usage_error("unknown command \"%s\"", argv[1]);

	/* getopt prefixes its messages with argv[0]: make it "connreg CMD". */
	snprintf(prog, sizeof(prog), "connreg %s", cmd->name);
	argv[1] = prog;
	return cmd->run(cmd, argc - 1, argv + 1);
}
