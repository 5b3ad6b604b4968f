/*
 * cmd_admin.c: create and unlink, the life cycle of a registry.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <string.h>

#include "args.h"
#include "report.h"

static int run_create(const struct cli_command *self, int argc, char **argv)
{
	enum { OPT_CAPACITY = 256, OPT_KEY_MAX, OPT_MODE, OPT_MAX_THREADS, OPT_PID };
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "capacity", required_argument, NULL, OPT_CAPACITY },
		{ "key-max", required_argument, NULL, OPT_KEY_MAX },
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "max-threads", required_argument, NULL, OPT_MAX_THREADS },
		{ "transport-is-pid", no_argument, NULL, OPT_PID },
		{ NULL, 0, NULL, 0 },
	};
	char name[CLI_NAME_SIZE];
	connreg_config_t cfg;
	connreg_t *reg;
	uint64_t v;
	int c, rc;

	memset(&cfg, 0, sizeof(cfg));
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			cli_print_help(self, stdout);
			return CLI_EXIT_OK;
		case OPT_CAPACITY:
			if (cli_parse_range(optarg, 1, CONNREG_CAPACITY_LIMIT, &v))
				return cli_usage(self, "bad --capacity \"%s\": expected 1 to %llu",
						 optarg,
						 (unsigned long long)CONNREG_CAPACITY_LIMIT);
			cfg.capacity = v;
			break;
		case OPT_KEY_MAX:
			if (cli_parse_range(optarg, 1, CONNREG_KEY_MAX_LIMIT, &v))
				return cli_usage(self, "bad --key-max \"%s\": expected 1 to %u",
						 optarg, CONNREG_KEY_MAX_LIMIT);
			cfg.key_max = (uint32_t)v;
			break;
		case OPT_MODE:
			if (cli_parse_mode(optarg, &cfg.mode))
				return cli_usage(self,
						 "bad --mode \"%s\": expected octal 1 to 0777",
						 optarg);
			break;
		case OPT_MAX_THREADS:
			if (cli_parse_range(optarg, 1, UINT32_MAX, &v))
				return cli_usage(self, "bad --max-threads \"%s\": expected 1 to %u",
						 optarg, UINT32_MAX);
			cfg.max_threads = (uint32_t)v;
			break;
		case OPT_PID:
			cfg.flags |= CONNREG_TRANSPORT_IS_PID;
			break;
		default:
			return cli_usage_hint(self);
		}
	}
	if (argc - optind != 1)
		return cli_usage(self, "%s (expected: %s)",
				 argc - optind < 1 ? "missing NAME" : "too many arguments",
				 self->synopsis);
	if (cfg.capacity == 0)
		return cli_usage(self, "--capacity is required");
	rc = cli_name_arg(self, argv[optind], name);
	if (rc >= 0)
		return rc;
	rc = connreg_create(name, &cfg, &reg);
	if (rc)
		return cli_lib_error(self, name, NULL, rc);
	connreg_close(reg);
	return CLI_EXIT_OK;
}

const struct cli_command cmd_create = {
	.name = "create",
	.synopsis = "--capacity N [--key-max B] [--mode MODE] [--max-threads T] "
		    "[--transport-is-pid] NAME",
	.summary = "create a new registry (fails if NAME exists)",
	.details =
		"Options:\n"
		"  --capacity N        live ids the registry holds (required)\n"
		"  --key-max B         longest id in bytes (1 to 4096; default 64)\n"
		"  --mode MODE         octal permission bits of the segment (default 0600)\n"
		"  --max-threads T     reader slots: threads attached at once (default 512)\n"
		"  --transport-is-pid  transports are process ids; enables 'connreg reap'\n",
	.run = run_create,
};

static int run_unlink(const struct cli_command *self, int argc, char **argv)
{
	char name[CLI_NAME_SIZE];
	struct cli_args a;
	int rc;

	rc = cli_start_named(self, argc, argv, 0, &a, name, NULL);
	if (rc >= 0)
		return rc;
	rc = connreg_unlink(name);
	if (rc)
		return cli_lib_error(self, name, NULL, rc);
	return CLI_EXIT_OK;
}

const struct cli_command cmd_unlink = {
	.name = "unlink",
	.synopsis = "NAME",
	.summary = "remove a registry's name (attached processes keep working)",
	.details = "",
	.run = run_unlink,
};
