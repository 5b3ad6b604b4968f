/*
 * args.c: parsing of names, ids, transports and the common options. The
 * parsers are strict: a value that is not exactly what the man page
 * describes is a usage error, never silently truncated or guessed.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "escape.h"
#include "report.h"

static int hex_digit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool has_hex_prefix(const char *s)
{
	return s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
}

int cli_parse_u64(const char *s, uint64_t *out)
{
	unsigned base = 10;
	uint64_t v = 0;

	if (has_hex_prefix(s)) {
		base = 16;
		s += 2;
	}
	/* strtoull would accept spaces, a sign and an empty string: do it by hand. */
	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		int d = hex_digit((unsigned char)*s);

		if (d < 0 || (unsigned)d >= base)
			return -1;
		if (v > (UINT64_MAX - (unsigned)d) / base)
			return -1;	/* overflow */
		v = v * base + (unsigned)d;
	}
	*out = v;
	return 0;
}

int cli_parse_range(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;

	if (cli_parse_u64(s, &v) || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int cli_parse_mode(const char *s, uint32_t *out)
{
	uint32_t v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '7')
			return -1;
		v = v * 8 + (uint32_t)(*s - '0');
	}
	if (v == 0 || v > 0777)
		return -1;
	*out = v;
	return 0;
}

#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

int cli_parse_name(const char *arg, char *out, const char **why)
{
	const char *body = arg[0] == '/' ? arg + 1 : arg;
	size_t n = strlen(body);

	if (n == 0) {
		*why = "empty registry name";
		return -1;
	}
	if (n > CONNREG_NAME_MAX) {
		*why = "registry name longer than 200 characters";
		return -1;
	}
	if (strspn(body, NAME_CHARS) != n) {
		*why = "only A-Z a-z 0-9 . _ - may follow the leading /";
		return -1;
	}
	if (strcmp(body, ".") == 0 || strcmp(body, "..") == 0) {
		*why = "\".\" and \"..\" are not registry names";
		return -1;
	}
	out[0] = '/';
	memcpy(out + 1, body, n + 1);
	return 0;
}

static int parse_hex_id(const char *hex, struct cli_id *id, const char **why)
{
	size_t n = strlen(hex);

	if (n == 0) {
		*why = "\"0x\" needs hex digits after it (use --text for a literal id)";
		return -1;
	}
	if (n % 2) {
		*why = "hex id needs an even number of digits (use --text for a literal id)";
		return -1;
	}
	if (n / 2 > sizeof(id->bytes)) {
		*why = "id longer than 4096 bytes";
		return -1;
	}
	for (size_t i = 0; i < n; i += 2) {
		int hi = hex_digit((unsigned char)hex[i]);
		int lo = hex_digit((unsigned char)hex[i + 1]);

		if (hi < 0 || lo < 0) {
			*why = "bad hex digit in id (use --text for a literal id starting with 0x)";
			return -1;
		}
		id->bytes[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	id->len = n / 2;
	return 0;
}

int cli_parse_id(const char *arg, enum cli_id_syntax syntax, struct cli_id *id,
		 const char **why)
{
	size_t n = strlen(arg);

	if (n == 0) {
		*why = "empty id";
		return -1;
	}
	switch (syntax) {
	case CLI_ID_AUTO:
		if (has_hex_prefix(arg))
			return parse_hex_id(arg + 2, id, why);
		break;
	case CLI_ID_ESCAPED:
		if (cli_unescape_id(arg, n, id->bytes, sizeof(id->bytes), &id->len, why))
			return -1;
		if (id->len == 0) {
			*why = "empty id";
			return -1;
		}
		return 0;
	case CLI_ID_TEXT:
		break;
	}
	if (n > sizeof(id->bytes)) {
		*why = "id longer than 4096 bytes";
		return -1;
	}
	memcpy(id->bytes, arg, n);
	id->len = n;
	return 0;
}

int cli_parse_args(const struct cli_command *cmd, int argc, char **argv, unsigned allow,
		   struct cli_args *a)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "text", no_argument, NULL, 't' },
		{ "escaped", no_argument, NULL, 'e' },
		{ "json", no_argument, NULL, 'j' },
		{ "route", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(a, 0, sizeof(*a));
	optind = 0;	/* GNU: start a fresh scan */
	while ((c = getopt_long(argc, argv, "hter", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_print_help(cmd, stdout);
			return CLI_EXIT_OK;
		case 't':
		case 'e':
			if (!(allow & CLI_ALLOW_ID_SYNTAX))
				return cli_usage(cmd, "option --%s does not apply here",
						 c == 't' ? "text" : "escaped");
			if (a->syntax != CLI_ID_AUTO)
				return cli_usage(cmd, "--text and --escaped exclude each other");
			a->syntax = c == 't' ? CLI_ID_TEXT : CLI_ID_ESCAPED;
			break;
		case 'j':
			if (!(allow & CLI_ALLOW_JSON))
				return cli_usage(cmd, "option --json does not apply here");
			a->json = true;
			break;
		case 'r':
			if (!(allow & CLI_ALLOW_ROUTE))
				return cli_usage(cmd, "option --route does not apply here");
			a->route = true;
			break;
		default:
			/* getopt has said what was wrong */
			return cli_usage_hint(cmd);
		}
	}
	a->npos = argc - optind;
	a->pos = argv + optind;
	return -1;
}

int cli_expect_args(const struct cli_command *cmd, const struct cli_args *a, int want)
{
	if (a->npos < want)
		return cli_usage(cmd, "missing arguments (expected: %s)", cmd->synopsis);
	if (a->npos > want)
		return cli_usage(cmd, "too many arguments (expected: %s)", cmd->synopsis);
	return -1;
}

int cli_name_arg(const struct cli_command *cmd, const char *arg, char *name)
{
	const char *why;

	if (cli_parse_name(arg, name, &why))
		return cli_usage(cmd, "bad registry name \"%s\": %s", arg, why);
	return -1;
}

int cli_id_arg(const struct cli_command *cmd, const char *arg, enum cli_id_syntax syntax,
	       struct cli_id *id)
{
	const char *why;

	if (cli_parse_id(arg, syntax, id, &why))
		return cli_usage(cmd, "bad id \"%s\": %s", arg, why);
	return -1;
}

int cli_transport_arg(const struct cli_command *cmd, const char *what, const char *arg,
		      uint64_t *out)
{
	if (cli_parse_u64(arg, out))
		return cli_usage(cmd, "bad %s \"%s\": expected a decimal or 0x hex number "
				 "from 0 to 18446744073709551615", what, arg);
	return -1;
}
