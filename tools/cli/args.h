/*
 * args.h: command-line arguments: registry names, connection ids,
 * transports and other numbers, and the options most subcommands share.
 */
#ifndef CONNREG_CLI_ARGS_H
#define CONNREG_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connreg.h"
#include "cli.h"

/* "/" + CONNREG_NAME_MAX characters + NUL */
#define CLI_NAME_SIZE (CONNREG_NAME_MAX + 2)

/* How an ID argument is read. */
enum cli_id_syntax {
	CLI_ID_AUTO,	/* "0x..." is hex bytes, anything else literal text */
	CLI_ID_TEXT,	/* --text: always literal text */
	CLI_ID_ESCAPED,	/* --escaped: the escaping of list and dump */
};

struct cli_id {
	size_t len;
	unsigned char bytes[CONNREG_KEY_MAX_LIMIT];
};

/*
 * Parse a transport (or any unsigned 64-bit number): decimal or 0x hex,
 * digits only (no sign, no spaces), no overflow. 0 or -1.
 */
int cli_parse_u64(const char *s, uint64_t *out);

/* cli_parse_u64 within [min, max]. 0 or -1. */
int cli_parse_range(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Permission bits in octal ("0640", "640"), 1..0777. 0 or -1. */
int cli_parse_mode(const char *s, uint32_t *out);

/*
 * Registry name: "/" is prepended when missing; then "/" + 1..200 of
 * [A-Za-z0-9._-], not "/." or "/..". out has CLI_NAME_SIZE bytes.
 * 0, or -1 with *why set.
 */
int cli_parse_name(const char *arg, char *out, const char **why);

/* Connection id in the given syntax. 0, or -1 with *why set. */
int cli_parse_id(const char *arg, enum cli_id_syntax syntax, struct cli_id *id,
		 const char **why);

/* Options accepted by the simple subcommands (bits for cli_parse_args). */
#define CLI_ALLOW_ID_SYNTAX	0x1	/* --text, --escaped */
#define CLI_ALLOW_JSON		0x2	/* --json */
#define CLI_ALLOW_ROUTE		0x4	/* --route (get on a cluster view) */

struct cli_args {
	enum cli_id_syntax syntax;
	bool json;
	bool route;
	int npos;	/* positional arguments left */
	char **pos;
};

/*
 * getopt_long over argv with --help and the allowed options. Returns -1
 * when the command should go on, else the exit code to return at once
 * (0 after --help, CLI_EXIT_USAGE after a bad option).
 */
int cli_parse_args(const struct cli_command *cmd, int argc, char **argv, unsigned allow,
		   struct cli_args *a);

/* Check the number of positional arguments; -1 to go on, else an exit code. */
int cli_expect_args(const struct cli_command *cmd, const struct cli_args *a, int want);

/* Parse argument i as a registry name; -1 to go on, else an exit code. */
int cli_name_arg(const struct cli_command *cmd, const char *arg, char *name);

/* Parse argument as an id; -1 to go on, else an exit code. */
int cli_id_arg(const struct cli_command *cmd, const char *arg, enum cli_id_syntax syntax,
	       struct cli_id *id);

/* Parse argument as a transport; -1 to go on, else an exit code. */
int cli_transport_arg(const struct cli_command *cmd, const char *what, const char *arg,
		      uint64_t *out);

#endif /* CONNREG_CLI_ARGS_H */
