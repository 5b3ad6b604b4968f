/*
 * connreg_cluster_view.h: reading the cluster view that connregd --cluster
 * keeps (docs/cluster.md). Header-only; needs only connreg.h.
 *
 * connregd --cluster URL --host-id ID --cluster-view /VIEW mirrors every
 * OTHER host's ids into the local registry /VIEW, an ordinary connreg
 * registry: look an id up there with connreg_get_transport (wait-free, no
 * network). Each value there is a route:
 *
 *     bits 63..48  the host number of the host that holds the id (1..65535)
 *     bits 47..0   the transport that host registered, its low 48 bits
 *
 * Host numbers are assigned once per host id by Redis. The registry
 * "/VIEW.hosts" (also created by connregd) maps each host id to its number:
 * id = the host id (its bytes, no NUL), transport = the number in bits
 * 15..0 plus CONNREG_ROUTE_HOST_UP when that host held a live lease when
 * connregd last looked (about once a second). The host running connregd is
 * listed too; its own ids are in its own registry, never in its view.
 *
 *     uint64_t v;
 *     if (connreg_get_transport(view, id, len, &v) == 0) {
 *             uint16_t host = connreg_route_host(v);
 *             uint64_t transport = connreg_route_transport(v);
 *             char name[65];
 *             connreg_route_host_id(hosts, host, name, sizeof name);
 *     }
 */
#ifndef CONNREG_CLUSTER_VIEW_H
#define CONNREG_CLUSTER_VIEW_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "connreg.h"

#define CONNREG_ROUTE_HOST_SHIFT     48
#define CONNREG_ROUTE_TRANSPORT_MASK ((UINT64_C(1) << CONNREG_ROUTE_HOST_SHIFT) - 1)
/* In /VIEW.hosts: the host held a live lease when last seen. */
#define CONNREG_ROUTE_HOST_UP	     (UINT64_C(1) << 16)
#define CONNREG_ROUTE_HOST_MASK	     UINT64_C(0xffff)
/* The hosts registry's name is the view's name plus this. */
#define CONNREG_ROUTE_HOSTS_SUFFIX   ".hosts"

/* The host number of a view value (1..65535). */
static inline uint16_t connreg_route_host(uint64_t route)
{
	return (uint16_t)(route >> CONNREG_ROUTE_HOST_SHIFT);
}

/* The remote transport's low 48 bits. */
static inline uint64_t connreg_route_transport(uint64_t route)
{
	return route & CONNREG_ROUTE_TRANSPORT_MASK;
}

/* The view value for (host, transport): what connregd writes. */
static inline uint64_t connreg_route_make(uint16_t host, uint64_t transport)
{
	return ((uint64_t)host << CONNREG_ROUTE_HOST_SHIFT) |
	       (transport & CONNREG_ROUTE_TRANSPORT_MASK);
}

struct connreg_route_find_ {
	uint16_t host;
	char *buf;
	size_t len;
	int found;
};

static inline int connreg_route_find_cb_(const void *id, size_t id_len, uint64_t v, void *arg)
{
	struct connreg_route_find_ *f = (struct connreg_route_find_ *)arg;

	if ((v & CONNREG_ROUTE_HOST_MASK) != f->host)
		return 0;
	if (id_len >= f->len)
		return -ENAMETOOLONG;
	memcpy(f->buf, id, id_len);
	f->buf[id_len] = '\0';
	f->found = 1;
	return 1;
}

/*
 * The host id of a host number, from the hosts registry (a walk of it:
 * cache the answer). Returns 0 and a NUL-terminated id in buf, -ENOENT
 * (no such number yet: connregd has not learnt it), -ENAMETOOLONG (buf too
 * small; 65 bytes always suffice), or an error of connreg_foreach.
 */
static inline int connreg_route_host_id(connreg_t *hosts, uint16_t host, char *buf, size_t len)
{
	struct connreg_route_find_ f = { host, buf, len, 0 };
	int rc = connreg_foreach(hosts, connreg_route_find_cb_, &f);

	if (rc < 0)
		return rc;
	return f.found ? 0 : -ENOENT;
}

#endif /* CONNREG_CLUSTER_VIEW_H */
