/*
 * cmd_id.c: the commands about one id: get, register, update, unregister
 * and cas. Each takes NAME ID [TRANSPORT...], opens the registry, makes
 * one library call and closes it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "args.h"
#include "report.h"

#define ID_OPTIONS_HELP \
	"Options:\n" \
	"  -t, --text     take ID literally, even when it starts with 0x\n" \
	"  -e, --escaped  read \\\\ and \\xNN escapes in ID, as list and dump print them\n"

struct id_call {
	char name[CLI_NAME_SIZE];
	struct cli_id id;
	uint64_t num[2];	/* the TRANSPORT arguments, in order */
	bool route;		/* get --route */
	connreg_t *reg;
};

/*
 * Parse NAME ID and n_num transports (labelled by what[]), then open the
 * registry. -1 to go on, else an exit code.
 */
static int id_call_begin(const struct cli_command *self, int argc, char **argv, int n_num,
			 const char *const what[], struct id_call *c)
{
	struct cli_args a;
	int rc;

	rc = cli_parse_args(self, argc, argv,
			    CLI_ALLOW_ID_SYNTAX | (self == &cmd_get ? CLI_ALLOW_ROUTE : 0), &a);
	c->route = a.route;
	if (rc < 0)
		rc = cli_expect_args(self, &a, 2 + n_num);
	if (rc < 0)
		rc = cli_name_arg(self, a.pos[0], c->name);
	if (rc < 0)
		rc = cli_id_arg(self, a.pos[1], a.syntax, &c->id);
	for (int i = 0; rc < 0 && i < n_num; i++)
		rc = cli_transport_arg(self, what[i], a.pos[2 + i], &c->num[i]);
	if (rc < 0)
		rc = cli_open(self, c->name, &c->reg);
	return rc;
}

static int run_get(const struct cli_command *self, int argc, char **argv)
{
	struct id_call c;
	uint64_t t;
	int rc;

	rc = id_call_begin(self, argc, argv, 0, NULL, &c);
	if (rc >= 0)
		return rc;
	rc = connreg_get_transport(c.reg, c.id.bytes, c.id.len, &t);
	connreg_close(c.reg);
	if (rc)
		return cli_lib_error(self, c.name, &c.id, rc);
	if (c.route)
		return cli_print_route(self, c.name, t);
	printf("%" PRIu64 "\n", t);
	return cli_finish_output(self, c.name, CLI_EXIT_OK);
}

const struct cli_command cmd_get = {
	.name = "get",
	.synopsis = "[--text|--escaped] [--route] NAME ID",
	.summary = "print the id's transport (exit 1 if not registered)",
	.details = ID_OPTIONS_HELP
	"  -r, --route    NAME is a cluster view (connregd --cluster-view): print the\n"
	"                 host that holds the id and its transport there, \"HOST T\"\n"
	"                 (HOST is \"#N\" while NAME.hosts does not name host N yet)\n",
	.run = run_get,
};

static int run_register(const struct cli_command *self, int argc, char **argv)
{
	static const char *const what[] = { "TRANSPORT" };
	struct id_call c;
	int rc;

	rc = id_call_begin(self, argc, argv, 1, what, &c);
	if (rc >= 0)
		return rc;
	rc = connreg_register(c.reg, c.id.bytes, c.id.len, c.num[0]);
	connreg_close(c.reg);
	return rc ? cli_lib_error(self, c.name, &c.id, rc) : CLI_EXIT_OK;
}

const struct cli_command cmd_register = {
	.name = "register",
	.synopsis = "[--text|--escaped] NAME ID TRANSPORT",
	.summary = "map the id to the transport (insert or update)",
	.details = ID_OPTIONS_HELP,
	.run = run_register,
};

static int run_update(const struct cli_command *self, int argc, char **argv)
{
	static const char *const what[] = { "TRANSPORT" };
	struct id_call c;
	int rc;

	rc = id_call_begin(self, argc, argv, 1, what, &c);
	if (rc >= 0)
		return rc;
	rc = connreg_update_transport(c.reg, c.id.bytes, c.id.len, c.num[0]);
	connreg_close(c.reg);
	return rc ? cli_lib_error(self, c.name, &c.id, rc) : CLI_EXIT_OK;
}

const struct cli_command cmd_update = {
	.name = "update",
	.synopsis = "[--text|--escaped] NAME ID TRANSPORT",
	.summary = "re-point a registered id (exit 1 if not registered)",
	.details = ID_OPTIONS_HELP,
	.run = run_update,
};

static int run_unregister(const struct cli_command *self, int argc, char **argv)
{
	struct id_call c;
	int rc;

	rc = id_call_begin(self, argc, argv, 0, NULL, &c);
	if (rc >= 0)
		return rc;
	rc = connreg_unregister(c.reg, c.id.bytes, c.id.len);
	connreg_close(c.reg);
	return rc ? cli_lib_error(self, c.name, &c.id, rc) : CLI_EXIT_OK;
}

const struct cli_command cmd_unregister = {
	.name = "unregister",
	.synopsis = "[--text|--escaped] NAME ID",
	.summary = "remove the id (succeeds whether or not it was registered)",
	.details = ID_OPTIONS_HELP,
	.run = run_unregister,
};

static int run_cas(const struct cli_command *self, int argc, char **argv)
{
	static const char *const what[] = { "EXPECTED", "DESIRED" };
	struct id_call c;
	uint64_t current = 0;
	int rc;

	rc = id_call_begin(self, argc, argv, 2, what, &c);
	if (rc >= 0)
		return rc;
	rc = connreg_cas_transport(c.reg, c.id.bytes, c.id.len, c.num[0], c.num[1], &current);
	connreg_close(c.reg);
	/* -EAGAIN with current == expected is a stalled reclamation, not a mismatch. */
	if (rc == -EAGAIN && current != c.num[0]) {
		cli_error(self, c.name, &c.id, "mismatch: transport is %" PRIu64 ", not %" PRIu64,
			  current, c.num[0]);
		printf("%" PRIu64 "\n", current);
		return cli_finish_output(self, c.name, CLI_EXIT_FAIL);
	}
	return rc ? cli_lib_error(self, c.name, &c.id, rc) : CLI_EXIT_OK;
}

const struct cli_command cmd_cas = {
	.name = "cas",
	.synopsis = "[--text|--escaped] NAME ID EXPECTED DESIRED",
	.summary = "set the transport to DESIRED if it is EXPECTED (else exit 1)",
	.details = ID_OPTIONS_HELP
		"On a mismatch the current transport is printed on standard output.\n",
	.run = run_cas,
};
