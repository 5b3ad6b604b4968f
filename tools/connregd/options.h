/*
 * options.h: connregd's settings, from the command line and an optional
 * configuration file (--config FILE: "key = value" lines whose keys are
 * the long option names). Precedence: built-in defaults, then the file,
 * then the command line. SIGHUP resolves them again: the file is re-read
 * and what can change while running (dopt_reloadable) is applied.
 */
#ifndef CONNREGD_OPTIONS_H
#define CONNREGD_OPTIONS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "connreg.h"

enum dopt {
	DOPT_NAME,
	DOPT_CAPACITY,
	DOPT_KEY_MAX,
	DOPT_MAX_THREADS,
	DOPT_MODE,
	DOPT_TRANSPORT_IS_PID,
	DOPT_REAP_INTERVAL,
	DOPT_CHECK_INTERVAL,
	DOPT_METRICS_LISTEN,
	DOPT_UNLINK_ON_EXIT,
	DOPT_PIDFILE,
	DOPT_CLUSTER,		/* --cluster URL and the four below: docs/cluster.md */
	DOPT_HOST_ID,
	DOPT_CLUSTER_VIEW,
	DOPT_LEASE_MS,
	DOPT_CLUSTER_FEED_MAX,
	DOPT_LOG_LEVEL,
	DOPT_CONFIG,
	DOPT_COUNT
};

#define DOPT_DEFAULT_KEY_MAX	 64u
#define DOPT_DEFAULT_MAX_THREADS 512u
#define DOPT_DEFAULT_MODE	 0600u
#define DOPT_DEFAULT_REAP_MS	 1000u
#define DOPT_DEFAULT_CHECK_MS	 10000u
#define DOPT_MIN_INTERVAL_MS	 10u
#define DOPT_MAX_INTERVAL_MS	 86400000u	/* a day */
#define DOPT_DEFAULT_LEASE_MS	 5000u
#define DOPT_MIN_LEASE_MS	 300u
#define DOPT_MAX_LEASE_MS	 600000u
#define DOPT_DEFAULT_FEED_MAX	 100000u
#define DOPT_HOST_ID_MAX	 64u

struct dopts {
	char name[CONNREG_NAME_MAX + 2];	/* "/NAME" */
	uint64_t capacity;
	uint32_t key_max;
	uint32_t max_threads;
	uint32_t mode;
	bool transport_is_pid;
	bool unlink_on_exit;
	uint32_t reap_ms;
	uint32_t check_ms;
	char listen[256];			/* HOST:PORT, "" when not serving metrics */
	char pidfile[PATH_MAX];
	char cluster[512];			/* redis://HOST:PORT or unix:///PATH, "" without */
	char host_id[DOPT_HOST_ID_MAX + 1];
	char cluster_view[CONNREG_NAME_MAX + 2];	/* "/VIEW" */
	uint32_t lease_ms;
	uint64_t feed_max;			/* the feed's MAXLEN ~, in records */
	int log_level;				/* LOG_LVL_* */
	char config[PATH_MAX];
	uint32_t given;				/* bit (1u << enum dopt): set explicitly */
};

enum { DOPTS_RUN, DOPTS_HELP, DOPTS_VERSION };

/*
 * Parse the command line into *cl (only what it says; no defaults).
 * Returns DOPTS_RUN, DOPTS_HELP or DOPTS_VERSION, or -1 with a message in err.
 */
int dopts_parse_args(int argc, char **argv, struct dopts *cl, char *err, size_t errlen);

/*
 * Defaults, then cl->config's file (if any), then what cl gives; checks
 * that a name and a capacity are set. 0, or -1 with a message in err.
 */
int dopts_resolve(const struct dopts *cl, struct dopts *out, char *err, size_t errlen);

/* The long option name ("reap-interval-ms"). */
const char *dopt_name(enum dopt o);

/* Can this setting change on SIGHUP without a restart? */
bool dopt_reloadable(enum dopt o);

/* Does the setting differ between a and b? */
bool dopt_differs(const struct dopts *a, const struct dopts *b, enum dopt o);

/* The setting's value as text (for log lines). */
void dopt_format(const struct dopts *o, enum dopt which, char *buf, size_t len);

/* --help text. */
void dopts_usage(FILE *out);

#endif /* CONNREGD_OPTIONS_H */
