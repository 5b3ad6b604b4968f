/*
 * cluster.h: connregd --cluster (docs/cluster.md). Every change of the
 * local registry is published to Redis under this host's lease, and every
 * other host's ids are mirrored into a local view registry. Two threads of
 * their own (publisher, mirror), each with its own Redis connection; the
 * main loop only starts them, renders their metrics and stops them.
 */
#ifndef CONNREGD_CLUSTER_H
#define CONNREGD_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "connreg.h"

struct cluster_cfg {
	const char *url;	/* redis://HOST[:PORT] or unix:///PATH */
	const char *host_id;
	const char *view;	/* "/VIEW"; the hosts registry is VIEW.hosts */
	uint32_t lease_ms;
	uint64_t feed_max;
	/* the local registry's settings: the view is created with them */
	const char *name;
	uint64_t capacity;
	uint32_t key_max;
	uint32_t max_threads;
	uint32_t mode;
};

struct cluster;

/* Is cluster support built in (hiredis found at build time)? */
bool cluster_available(void);

/*
 * Create or adopt the view registries, lock them and the local registry's
 * cluster byte (through lock_fd, the daemon's descriptor of the segment),
 * start the threads. Redis need not be up: they connect with backoff.
 * Returns 0 and *out, or connregd's exit status (2 usage, 3 system; logged).
 */
int cluster_start(connreg_t *reg, int lock_fd, const struct cluster_cfg *cfg,
		  struct cluster **out);

/*
 * Stop the threads, hand the lease over (a connregd started again with the
 * same --host-id within the lease takes it without the other hosts seeing
 * its ids go), close the views; unlink them too when asked. NULL ignored.
 */
void cluster_stop(struct cluster *c, bool unlink_views);

/* Append the connreg_cluster_* samples (Prometheus text) for /metrics. */
void cluster_metrics(struct cluster *c, FILE *f, const char *registry);

#endif /* CONNREGD_CLUSTER_H */
