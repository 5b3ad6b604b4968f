/*
 * cluster_none.c: connregd built without hiredis (libhiredis-dev was not
 * found at configure time): --cluster is refused with a clear message.
 */
#include "cluster.h"
#include "log.h"

bool cluster_available(void)
{
	return false;
}

int cluster_start(connreg_t *reg, int lock_fd, const struct cluster_cfg *cfg,
		  struct cluster **out)
{
	(void)reg;
	(void)lock_fd;
	(void)cfg;
	*out = NULL;
	dlog(LOG_LVL_ERR, "this connregd was built without cluster support (--cluster needs "
			  "hiredis: apt-get install libhiredis-dev, then rebuild)");
	return 2;
}

void cluster_stop(struct cluster *c, bool unlink_views)
{
	(void)c;
	(void)unlink_views;
}

void cluster_metrics(struct cluster *c, FILE *f, const char *registry)
{
	(void)c;
	(void)f;
	(void)registry;
}
