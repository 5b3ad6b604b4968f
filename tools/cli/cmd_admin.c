/*
 * cmd_admin.c: create and unlink, the life cycle of a registry.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "report.h"

#define MIB (1024.0 * 1024.0)

/* The directory segments live in, as connreg.h describes it (for messages). */
static const char *shm_dir(void)
{
	const char *d = getenv("CONNREG_SHM_DIR");

	return d && *d ? d : "/dev/shm";
}

/* A whole number of MiB, rounded up, with 1 MiB to spare: a size to ask for. */
static uint64_t mib_for(uint64_t bytes)
{
	return (bytes + (1u << 20) - 1) / (1u << 20) + 1;
}

/*
 * -ENOSPC from create: the numbers (needed, free) and what to do about it.
 * stderr, like every error.
 */
static void explain_enospc(const struct cli_command *self, const char *name, uint64_t need)
{
	uint64_t avail = 0, total = 0;
	const char *dir = shm_dir();
	int rc = connreg_shm_space(&avail, &total);

	if (rc) {
		cli_error(self, name, NULL,
			  "ENOSPC: the registry needs %" PRIu64 " bytes (%.1f MiB) in %s, "
			  "which cannot hold it (free space unknown: %s)",
			  need, need / MIB, dir, connreg_strerror(rc));
	} else if (total == 0) {
		/* tmpfs mounted without size=, hugetlbfs without size=: no figure to give. */
		cli_error(self, name, NULL,
			  "ENOSPC: the registry needs %" PRIu64 " bytes (%.1f MiB) and %s, which "
			  "reports no size limit, could not supply them (out of memory, or of "
			  "free huge pages on hugetlbfs: see /proc/meminfo)",
			  need, need / MIB, dir);
	} else {
		cli_error(self, name, NULL,
			  "ENOSPC: the registry needs %" PRIu64 " bytes (%.1f MiB) but %s has "
			  "%" PRIu64 " bytes (%.1f MiB) free of %" PRIu64 " (%.1f MiB)",
			  need, need / MIB, dir, avail, avail / MIB, total, total / MIB);
	}
	/* The filesystem must hold what it holds now plus this segment. */
	uint64_t want = mib_for((total > avail ? total - avail : 0) + need);
	fprintf(stderr,
		"  make room for it: in a container, docker run --shm-size=%" PRIu64 "m ...;\n"
		"  on a host, as root: mount -o remount,size=%" PRIu64 "m %s;\n"
		"%s"
		"  or put segments on a larger tmpfs: CONNREG_SHM_DIR=/path/to/mount;\n"
		"  or ask for less: a smaller --capacity, --key-max or --max-threads\n"
		"  (connreg create --dry-run prints the size of a configuration)\n",
		want, want, dir,
		strcmp(dir, "/dev/shm") != 0
			? "  on hugetlbfs, reserve more huge pages: sysctl vm.nr_hugepages=...;\n"
			: "");
}

/* --dry-run: the size of the segment this configuration needs, and whether it fits. */
static int dry_run(const struct cli_command *self, const char *name, const connreg_config_t *cfg)
{
	uint64_t need, avail = 0, total = 0;
	int rc = connreg_segment_size(cfg, &need);

	if (rc)
		return cli_lib_error(self, name, NULL, rc);
	printf("segment size     %" PRIu64 " bytes (%.1f MiB)\n", need, need / MIB);
	printf("bytes per id     %.1f (capacity %" PRIu64 ", key_max %" PRIu32
	       ", max_threads %" PRIu32 ")\n",
	       (double)need / (double)cfg->capacity, cfg->capacity,
	       cfg->key_max ? cfg->key_max : 64, cfg->max_threads ? cfg->max_threads : 512);
	rc = connreg_shm_space(&avail, &total);
	if (rc) {
		printf("directory        %s (free space unknown: %s)\n", shm_dir(),
		       connreg_strerror(rc));
		return cli_finish_output(self, name, CLI_EXIT_OK);
	}
	if (total == 0) {
		printf("directory        %s (no size limit)\n", shm_dir());
		return cli_finish_output(self, name, CLI_EXIT_OK);
	}
	printf("directory        %s: %" PRIu64 " bytes (%.1f MiB) free of %" PRIu64
	       " (%.1f MiB)\n",
	       shm_dir(), avail, avail / MIB, total, total / MIB);
	printf("fits             %s\n", need <= avail ? "yes" : "no");
	rc = cli_finish_output(self, name, CLI_EXIT_OK);
	if (rc == CLI_EXIT_OK && need > avail) {
		explain_enospc(self, name, need);
		return CLI_EXIT_SYSTEM;
	}
	return rc;
}

static int run_create(const struct cli_command *self, int argc, char **argv)
{
	enum { OPT_CAPACITY = 256, OPT_KEY_MAX, OPT_MODE, OPT_MAX_THREADS, OPT_PID, OPT_DRY_RUN };
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "capacity", required_argument, NULL, OPT_CAPACITY },
		{ "key-max", required_argument, NULL, OPT_KEY_MAX },
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "max-threads", required_argument, NULL, OPT_MAX_THREADS },
		{ "transport-is-pid", no_argument, NULL, OPT_PID },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ NULL, 0, NULL, 0 },
	};
	char name[CLI_NAME_SIZE];
	connreg_config_t cfg;
	connreg_t *reg;
	bool dry = false;
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
		case OPT_DRY_RUN:
			dry = true;
			break;
		default:
			return cli_usage_hint(self);
		}
	}
	/* --dry-run creates nothing, so it needs no NAME. */
	if (argc - optind != 1 && !(dry && argc == optind))
		return cli_usage(self, "%s (expected: %s)",
				 argc - optind < 1 ? "missing NAME" : "too many arguments",
				 self->synopsis);
	if (cfg.capacity == 0)
		return cli_usage(self, "--capacity is required");
	if (argc == optind) {
		name[0] = '\0';
	} else {
		rc = cli_name_arg(self, argv[optind], name);
		if (rc >= 0)
			return rc;
	}
	if (dry)
		return dry_run(self, name[0] ? name : NULL, &cfg);
	rc = connreg_create(name, &cfg, &reg);
	if (rc == -ENOSPC && connreg_segment_size(&cfg, &v) == 0) {
		explain_enospc(self, name, v);
		return CLI_EXIT_SYSTEM;
	}
	if (rc)
		return cli_lib_error(self, name, NULL, rc);
	connreg_close(reg);
	return CLI_EXIT_OK;
}

const struct cli_command cmd_create = {
	.name = "create",
	.synopsis = "--capacity N [--key-max B] [--mode MODE] [--max-threads T] "
		    "[--transport-is-pid] [--dry-run] NAME",
	.summary = "create a new registry (fails if NAME exists, or if it does not fit)",
	.details =
		"Options:\n"
		"  --capacity N        live ids the registry holds (required)\n"
		"  --key-max B         longest id in bytes (1 to 4096; default 64)\n"
		"  --mode MODE         octal permission bits of the segment (default 0600)\n"
		"  --max-threads T     reader slots: threads attached at once (default 512)\n"
		"  --transport-is-pid  transports are process ids; enables 'connreg reap'\n"
		"  --dry-run           create nothing: print the segment's size, bytes per id\n"
		"                      and the free space where it would go; exit 3 (with the\n"
		"                      ENOSPC message) when it would not fit. NAME is optional\n"
		"\n"
		"The whole segment is allocated at create: a registry that does not fit in\n"
		"/dev/shm (or $CONNREG_SHM_DIR) fails here with ENOSPC, the bytes it needs and\n"
		"those free, and leaves no name behind.\n",
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
