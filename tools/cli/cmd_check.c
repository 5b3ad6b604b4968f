/*
 * cmd_check.c: check (connreg_check, confirmed by a second pass) and reap
 * (connreg_reap).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "report.h"

/* Writers running during a check can make counts disagree for an instant. */
#define RECHECK_PAUSE_MS 200

struct problems {
	char **v;
	size_t n, cap;
	bool oom;
};

static void collect_problem(const char *problem, void *arg)
{
	struct problems *p = arg;
	char *s;

	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 16;
		char **v = realloc(p->v, cap * sizeof(*v));

		if (!v) {
			p->oom = true;
			return;
		}
		p->v = v;
		p->cap = cap;
	}
	s = strdup(problem);
	if (!s) {
		p->oom = true;
		return;
	}
	p->v[p->n++] = s;
}

static void free_problems(struct problems *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
	memset(p, 0, sizeof(*p));
}

static void pause_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int run_check(const struct cli_command *self, int argc, char **argv)
{
	char name[CLI_NAME_SIZE];
	struct problems p = { 0 };
	struct cli_args a;
	connreg_t *reg;
	int rc, first;

	rc = cli_start_named(self, argc, argv, 0, &a, name, &reg);
	if (rc >= 0)
		return rc;
	first = connreg_check(reg, NULL, NULL);
	if (first > 0) {
		/* Only what a second look still finds is reported. */
		pause_ms(RECHECK_PAUSE_MS);
		rc = connreg_check(reg, collect_problem, &p);
	} else {
		rc = first;
	}
	connreg_close(reg);
	if (rc < 0) {
		free_problems(&p);
		return cli_lib_error(self, name, NULL, rc);
	}
	if (rc == 0) {
		printf("%s: sound%s\n", name,
		       first > 0 ? " (a first pass saw a transient disagreement)" : "");
		return cli_finish_output(self, name, CLI_EXIT_OK);
	}
	printf("%s: %d problem%s found (confirmed by a second pass):\n", name, rc,
	       rc == 1 ? "" : "s");
	for (size_t i = 0; i < p.n; i++)
		printf("  %s\n", p.v[i]);
	if (p.oom)
		printf("  (out of memory: some problems are not listed)\n");
	free_problems(&p);
	return cli_finish_output(self, name, CLI_EXIT_FAIL);
}

const struct cli_command cmd_check = {
	.name = "check",
	.synopsis = "NAME",
	.summary = "verify the registry's invariants (exit 1 with a list of problems)",
	.details =
		"A first pass that finds problems is repeated after a short pause, since\n"
		"writers running meanwhile can make counts disagree for an instant; only\n"
		"problems the second pass confirms are reported.\n",
	.run = run_check,
};

static int run_reap(const struct cli_command *self, int argc, char **argv)
{
	char name[CLI_NAME_SIZE];
	struct cli_args a;
	uint64_t removed = 0;
	connreg_t *reg;
	int rc;

	rc = cli_start_named(self, argc, argv, 0, &a, name, &reg);
	if (rc >= 0)
		return rc;
	rc = connreg_reap(reg, &removed);
	connreg_close(reg);
	if (rc)
		return cli_lib_error(self, name, NULL, rc);
	printf("removed %" PRIu64 " id%s of dead processes\n", removed, removed == 1 ? "" : "s");
	return cli_finish_output(self, name, CLI_EXIT_OK);
}

const struct cli_command cmd_reap = {
	.name = "reap",
	.synopsis = "NAME",
	.summary = "remove the ids whose transport process has exited",
	.details =
		"Only for registries created with --transport-is-pid (else EOPNOTSUPP).\n"
		"Prints how many ids were removed.\n",
	.run = run_reap,
};
