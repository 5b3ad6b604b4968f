/*
 * cmd_route.c: reading a cluster view (connregd --cluster-view, see
 * docs/cluster.md): get --route decodes a view value into the host that
 * holds the id and its transport there; hosts lists the hosts registry
 * (VIEW.hosts) that names each host number. The encoding is
 * connreg_cluster_view.h's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_view.h"
#include "args.h"
#include "report.h"

/* VIEW.hosts into out (CLI_NAME_SIZE + the suffix); -1 if it is too long for a name. */
static int hosts_name(const char *view, char *out, size_t size)
{
	int n = snprintf(out, size, "%s%s", view, CONNREG_ROUTE_HOSTS_SUFFIX);

	return n < 0 || (size_t)n >= size || (size_t)n > CONNREG_NAME_MAX + 1 ? -1 : 0;
}

static int open_hosts(const struct cli_command *self, const char *view, connreg_t **hosts,
		      char *name, size_t size)
{
	if (hosts_name(view, name, size)) {
		cli_error(self, view, NULL, "no hosts registry: the name %s%s is too long", view,
			  CONNREG_ROUTE_HOSTS_SUFFIX);
		return CLI_EXIT_USAGE;
	}
	return cli_open(self, name, hosts);
}

int cli_print_route(const struct cli_command *self, const char *view, uint64_t route)
{
	char name[CLI_NAME_SIZE + sizeof(CONNREG_ROUTE_HOSTS_SUFFIX)], host[65];
	uint16_t n = connreg_route_host(route);
	connreg_t *hosts;
	int rc = open_hosts(self, view, &hosts, name, sizeof(name));

	if (rc >= 0)
		return rc;
	rc = connreg_route_host_id(hosts, n, host, sizeof(host));
	connreg_close(hosts);
	if (rc == -ENOENT)
		snprintf(host, sizeof(host), "#%u", (unsigned)n);	/* not learnt yet */
	else if (rc)
		return cli_lib_error(self, name, NULL, rc);
	printf("%s %" PRIu64 "\n", host, connreg_route_transport(route));
	return cli_finish_output(self, view, CLI_EXIT_OK);
}

struct host_item {
	uint16_t number;
	bool up;
	char id[65];
};

struct host_items {
	struct host_item v[CONNREG_ROUTE_HOST_MASK + 1];
	size_t n;
};

/* A host id as connregd accepts it: 1..64 of [A-Za-z0-9._-]. */
static bool host_id_ok(const unsigned char *id, size_t len)
{
	if (len == 0 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", id[i]) ||
		    id[i] == '\0')
			return false;
	return true;
}

static int collect_host(const void *id, size_t len, uint64_t v, void *arg)
{
	struct host_items *h = arg;
	struct host_item *it;

	if (!host_id_ok(id, len) || h->n == sizeof(h->v) / sizeof(h->v[0]))
		return 0;	/* not what connregd writes: left out */
	it = &h->v[h->n++];
	it->number = (uint16_t)(v & CONNREG_ROUTE_HOST_MASK);
	it->up = (v & CONNREG_ROUTE_HOST_UP) != 0;
	memcpy(it->id, id, len);
	it->id[len] = '\0';
	return 0;
}

static int compare_hosts(const void *pa, const void *pb)
{
	const struct host_item *a = pa, *b = pb;

	return (a->number > b->number) - (a->number < b->number);
}

static int run_hosts(const struct cli_command *self, int argc, char **argv)
{
	char view[CLI_NAME_SIZE], name[CLI_NAME_SIZE + sizeof(CONNREG_ROUTE_HOSTS_SUFFIX)];
	struct host_items *h;
	struct cli_args a;
	connreg_t *hosts;
	int rc = cli_start_named(self, argc, argv, CLI_ALLOW_JSON, &a, view, NULL);

	if (rc < 0)
		rc = open_hosts(self, view, &hosts, name, sizeof(name));
	if (rc >= 0)
		return rc;
	h = calloc(1, sizeof(*h));
	if (!h) {
		connreg_close(hosts);
		return cli_lib_error(self, name, NULL, -ENOMEM);
	}
	rc = connreg_foreach(hosts, collect_host, h);
	connreg_close(hosts);
	if (rc) {
		free(h);
		return cli_lib_error(self, name, NULL, rc);
	}
	qsort(h->v, h->n, sizeof(h->v[0]), compare_hosts);
	if (a.json)
		fputs("[", stdout);
	for (size_t i = 0; i < h->n; i++) {
		const struct host_item *it = &h->v[i];

		/* Host ids are [A-Za-z0-9._-] (host_id_ok): no escaping needed. */
		if (a.json)
			printf("%s{\"number\":%u,\"host\":\"%s\",\"up\":%s}", i ? "," : "",
			       (unsigned)it->number, it->id, it->up ? "true" : "false");
		else
			printf("%u %s %s\n", (unsigned)it->number, it->id, it->up ? "up" : "down");
	}
	if (a.json)
		fputs("]\n", stdout);
	free(h);
	return cli_finish_output(self, view, CLI_EXIT_OK);
}

const struct cli_command cmd_hosts = {
	.name = "hosts",
	.synopsis = "[--json] VIEW",
	.summary = "list the hosts of a cluster view (VIEW.hosts): number, host id, up or down",
	.details = "VIEW is the registry connregd --cluster-view keeps; its hosts registry\n"
		   "VIEW.hosts names each host number that a route (get --route) carries.\n"
		   "\"up\": the host held a live lease when connregd last looked.\n"
		   "Options:\n"
		   "  --json   one JSON array of {\"number\", \"host\", \"up\"}\n",
	.run = run_hosts,
};
