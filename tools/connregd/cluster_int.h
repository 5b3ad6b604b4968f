/*
 * cluster_int.h: what cluster.c, cluster_pub.c and cluster_mirror.c share.
 * The design is in docs/cluster.md; the Redis side is cluster.lua.
 */
#ifndef CONNREGD_CLUSTER_INT_H
#define CONNREGD_CLUSTER_INT_H

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "cluster_view.h"
#include "options.h"

/* Every key shares this hash tag (one Redis Cluster slot). */
#define CL_TAG "{connreg}:"

enum { K_META, K_STATE, K_FEED, K_HOSTS, K_HOSTIDS, K_HOSTNUMS, K_LEASE, K_OWN, K_COUNT };

struct cl_keys {
	char k[K_COUNT][sizeof(CL_TAG) + 8 + DOPT_HOST_ID_MAX];
};

/* Changes per publish call (one feed record). */
#define CL_BATCH	256
/*
 * The publisher's cycle: how often it drains the registry's change marks
 * (the floor of the propagation latency): every CL_PUB_BUSY_MS for
 * CL_PUB_BUSY_FOR_MS after a drain found a change, else every
 * CL_PUB_PERIOD_MS (docs/performance.md: 1 ms costs 3 % of a core idle).
 */
#ifndef CL_PUB_PERIOD_MS
#define CL_PUB_PERIOD_MS 5
#endif
#ifndef CL_PUB_BUSY_MS
#define CL_PUB_BUSY_MS 1
#endif
#define CL_PUB_BUSY_FOR_MS 100
/* The mirror's XREAD BLOCK, and how often it re-checks the feed's epoch and seq. */
#define CL_BLOCK_MS	 500
#define CL_CHECK_MS	 1000
/* Reconnect backoff: doubles from the first to the last. */
#define CL_BACKOFF_MIN_MS 100
#define CL_BACKOFF_MAX_MS 1000
/* Hosts the hosts registry (VIEW.hosts) can list. */
#define CL_HOSTS_CAPACITY 4096
/* A repeated failure is logged at most this often. */
#define CL_LOG_EVERY_MS 10000

/* Once per CL_LOG_EVERY_MS per call site, with a count of what was held back. */
struct cl_ratelog {
	uint64_t last_ms;
	uint64_t held;
};

void cl_log_limited(struct cl_ratelog *rl, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

uint64_t cl_mono_ms(void);
uint64_t cl_real_ms(void);
void cl_sleep_ms(unsigned ms);

/* One Redis connection, used by one thread; cluster_stop may shut it down. */
struct rconn {
	struct cluster *c;
	const char *what;	/* "publisher", "mirror" */
	pthread_mutex_t mu;	/* guards ctx against cluster_stop's shutdown(2) */
	redisContext *ctx;
	int timeout_ms;
	uint32_t backoff_ms;
	uint64_t next_try_ms;
	bool ever_up;
	bool down_logged;
	char sha[48];		/* the script's SHA1, from SCRIPT LOAD */
};

/* Connect if not connected (respecting the backoff). true when connected. */
bool rc_connect(struct rconn *r);
bool rc_up(struct rconn *r);
void rc_close(struct rconn *r, const char *why);

/*
 * One command. NULL when the connection failed (it is closed and counted;
 * the caller reconnects later); else the reply, which may be an error.
 */
redisReply *rc_argv(struct rconn *r, int argc, const char **argv, const size_t *lens);
redisReply *rc_cmd(struct rconn *r, const char *fmt, ...);

/*
 * Run cluster.lua's op for host `host` (its lease and own keys) with the
 * extra arguments: EVALSHA, EVAL on NOSCRIPT. NULL as rc_argv.
 */
redisReply *cl_script(struct rconn *r, const char *host, const char *op, int nx,
		      const char *const *xv, const size_t *xl);

void cl_keys_for(struct cl_keys *k, const char *host);

/* ------------------------------------------------------------------ */
/* an id -> value map (ids are byte strings), for snapshots and sets   */
/* ------------------------------------------------------------------ */

struct idmap_ent {
	uint8_t *id;	/* NULL: empty slot */
	uint32_t len;
	uint32_t mark;
	uint64_t val;
};

struct idmap {
	struct idmap_ent *t;
	size_t cap;	/* a power of two, or 0 */
	size_t n;
};

/* The entry of id, created (val 0, mark 0) when absent. NULL: out of memory. */
struct idmap_ent *idmap_put(struct idmap *m, const void *id, size_t len);
struct idmap_ent *idmap_get(const struct idmap *m, const void *id, size_t len);
void idmap_clear(struct idmap *m);
void idmap_free(struct idmap *m);

/* Parse a decimal uint64 of exactly len bytes. 0 or -1. */
int cl_parse_u64(const char *s, size_t len, uint64_t *out);

/* ------------------------------------------------------------------ */
/* the daemon's cluster state                                          */
/* ------------------------------------------------------------------ */

struct cluster {
	char url[512];
	bool url_unix;
	char url_host[256];
	int url_port;
	char url_path[512];
	char host_id[DOPT_HOST_ID_MAX + 1];
	char view_name[CONNREG_NAME_MAX + 2];
	char hosts_name[CONNREG_NAME_MAX + 2];
	uint32_t lease_ms;
	char feed_max[24];
	char lease_ms_s[16];
	char token[40];		/* this run's lease token (random) */
	struct cl_keys keys;	/* this host's */
	uint32_t key_max;

	connreg_t *reg;		/* the local registry (the daemon's handle) */
	connreg_t *view;
	connreg_t *hosts;
	int view_lock_fd;
	int hosts_lock_fd;

	atomic_bool stop;
	pthread_t pub_thr, mir_thr;
	bool pub_started, mir_started;
	struct rconn pub, mir;

	/* Ids the mirror asks the publisher to publish again from the local registry. */
	pthread_mutex_t fq_mu;
	struct idmap fq;
	atomic_bool fq_pending;
	atomic_bool lease_check_now;	/* the mirror saw this host's ids dropped */

	/* Metrics: written by the threads, read by the HTTP thread. */
	atomic_uint_fast64_t m_host_num;	/* this host's number, 0 until a lease */
	atomic_uint_fast64_t m_lease_held;
	atomic_uint_fast64_t m_lease_acquired, m_lease_renewals, m_lease_losses;
	atomic_uint_fast64_t m_published, m_records_out, m_reconciles;
	atomic_uint_fast64_t m_hosts_reaped;
	atomic_uint_fast64_t m_redis_errors;
	atomic_uint_fast64_t m_records_in, m_garbage, m_resyncs;
	atomic_uint_fast64_t m_lag_records, m_lag_ms;
	atomic_uint_fast64_t m_hosts_seen, m_stale, m_last_sync_ms;
	atomic_uint_fast64_t m_view_errors, m_truncated;
};

void *cl_publisher_main(void *arg);
void *cl_mirror_main(void *arg);

/* Ask the publisher to publish id again (from the local registry, or as removed). */
void cl_force(struct cluster *c, const void *id, size_t len);

#endif /* CONNREGD_CLUSTER_INT_H */
