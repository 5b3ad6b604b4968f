/*
 * cluster.c: connregd --cluster's start, stop and metrics, and what its two
 * threads share: Redis connections (hiredis, reconnect with backoff), the
 * script call (EVALSHA, EVAL on NOSCRIPT), an id map, the force queue.
 * The publisher is cluster_pub.c, the mirror cluster_mirror.c; the design
 * is docs/cluster.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster_int.h"
#include "log.h"

/* cluster.lua, embedded by CMake (cluster_lua.c in the build tree). */
extern const char cl_lua_source[];

bool cluster_available(void)
{
	return true;
}

uint64_t cl_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t cl_real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void cl_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void cl_log_limited(struct cl_ratelog *rl, int level, const char *fmt, ...)
{
	uint64_t now = cl_mono_ms();
	char msg[1024];
	va_list ap;

	if (rl->last_ms && now - rl->last_ms < CL_LOG_EVERY_MS) {
		rl->held++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (rl->held)
		dlog(level, "%s (and %" PRIu64 " more like it since the last such line)", msg,
		     rl->held);
	else
		dlog(level, "%s", msg);
	rl->last_ms = now;
	rl->held = 0;
}

int cl_parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* ------------------------------------------------------------------ */
/* the id map                                                          */
/* ------------------------------------------------------------------ */

static uint64_t id_hash(const void *id, size_t len)
{
	const uint8_t *p = id;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

static int idmap_grow(struct idmap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 1024;
	struct idmap_ent *nt = calloc(ncap, sizeof(*nt));

	if (!nt)
		return -1;
	for (size_t i = 0; i < m->cap; i++) {
		struct idmap_ent *e = &m->t[i];
		size_t j;

		if (!e->id)
			continue;
		for (j = id_hash(e->id, e->len) & (ncap - 1); nt[j].id; j = (j + 1) & (ncap - 1))
			;
		nt[j] = *e;
	}
	free(m->t);
	m->t = nt;
	m->cap = ncap;
	return 0;
}

struct idmap_ent *idmap_get(const struct idmap *m, const void *id, size_t len)
{
	if (!m->cap)
		return NULL;
	for (size_t j = id_hash(id, len) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
		struct idmap_ent *e = &m->t[j];

		if (!e->id)
			return NULL;
		if (e->len == len && memcmp(e->id, id, len) == 0)
			return e;
	}
}

struct idmap_ent *idmap_put(struct idmap *m, const void *id, size_t len)
{
	struct idmap_ent *e = idmap_get(m, id, len);
	size_t j;

	if (e)
		return e;
	if ((m->n + 1) * 4 > m->cap * 3 && idmap_grow(m) != 0)
		return NULL;
	for (j = id_hash(id, len) & (m->cap - 1); m->t[j].id; j = (j + 1) & (m->cap - 1))
		;
	e = &m->t[j];
	e->id = malloc(len ? len : 1);
	if (!e->id)
		return NULL;
	memcpy(e->id, id, len);
	e->len = (uint32_t)len;
	e->mark = 0;
	e->val = 0;
	m->n++;
	return e;
}

void idmap_clear(struct idmap *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->t[i].id);
		m->t[i].id = NULL;
	}
	m->n = 0;
}

void idmap_free(struct idmap *m)
{
	idmap_clear(m);
	free(m->t);
	memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------------ */
/* Redis connections                                                   */
/* ------------------------------------------------------------------ */

bool rc_up(struct rconn *r)
{
	return r->ctx != NULL;
}

void rc_close(struct rconn *r, const char *why)
{
	redisContext *ctx;

	pthread_mutex_lock(&r->mu);
	ctx = r->ctx;
	r->ctx = NULL;
	pthread_mutex_unlock(&r->mu);
	if (!ctx)
		return;
	if (why && !atomic_load(&r->c->stop)) {
		dlog(LOG_LVL_WARNING, "cluster: %s lost its Redis connection: %s; reconnecting",
		     r->what, why);
		r->down_logged = true;
	}
	redisFree(ctx);
	r->backoff_ms = CL_BACKOFF_MIN_MS;
	r->next_try_ms = cl_mono_ms() + r->backoff_ms;
}

static void rc_failed(struct rconn *r, const char *why)
{
	atomic_fetch_add(&r->c->m_redis_errors, 1);
	if (!r->down_logged && !atomic_load(&r->c->stop)) {
		dlog(LOG_LVL_WARNING,
		     "cluster: %s cannot reach Redis at %s: %s; retrying (up to every %u ms)",
		     r->what, r->c->url, why, CL_BACKOFF_MAX_MS);
		r->down_logged = true;
	}
	r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : CL_BACKOFF_MIN_MS;
	if (r->backoff_ms > CL_BACKOFF_MAX_MS)
		r->backoff_ms = CL_BACKOFF_MAX_MS;
	r->next_try_ms = cl_mono_ms() + r->backoff_ms;
}

bool rc_connect(struct rconn *r)
{
	struct cluster *c = r->c;
	struct timeval tv = { .tv_sec = 2 };
	redisContext *ctx;
	redisReply *rep;

	if (r->ctx)
		return true;
	if (atomic_load(&c->stop) || cl_mono_ms() < r->next_try_ms)
		return false;
	ctx = c->url_unix ? redisConnectUnixWithTimeout(c->url_path, tv)
			  : redisConnectWithTimeout(c->url_host, c->url_port, tv);
	if (!ctx || ctx->err) {
		rc_failed(r, ctx ? ctx->errstr : "out of memory");
		redisFree(ctx);
		return false;
	}
	tv.tv_sec = r->timeout_ms / 1000;
	tv.tv_usec = (r->timeout_ms % 1000) * 1000;
	if (redisSetTimeout(ctx, tv) != REDIS_OK || (!c->url_unix && redisEnableKeepAlive(ctx) != REDIS_OK)) {
		rc_failed(r, ctx->errstr[0] ? ctx->errstr : "cannot set the socket's timeout");
		redisFree(ctx);
		return false;
	}
	rep = redisCommand(ctx, "SCRIPT LOAD %s", cl_lua_source);
	if (!rep || rep->type != REDIS_REPLY_STRING || rep->len >= sizeof(r->sha)) {
		char why[300];

		snprintf(why, sizeof(why), "SCRIPT LOAD: %s",
			 !rep ? ctx->errstr : rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
		if (rep)
			freeReplyObject(rep);
		rc_failed(r, why);
		redisFree(ctx);
		return false;
	}
	memcpy(r->sha, rep->str, (size_t)rep->len + 1);
	freeReplyObject(rep);

	pthread_mutex_lock(&r->mu);
	if (atomic_load(&c->stop)) {
		pthread_mutex_unlock(&r->mu);
		redisFree(ctx);
		return false;
	}
	r->ctx = ctx;
	pthread_mutex_unlock(&r->mu);
	if (r->down_logged || !r->ever_up)
		dlog(r->down_logged ? LOG_LVL_NOTICE : LOG_LVL_INFO,
		     "cluster: %s connected to Redis at %s", r->what, c->url);
	r->ever_up = true;
	r->down_logged = false;
	r->backoff_ms = 0;
	return true;
}

redisReply *rc_argv(struct rconn *r, int argc, const char **argv, const size_t *lens)
{
	redisReply *rep;

	if (!r->ctx)
		return NULL;
	rep = redisCommandArgv(r->ctx, argc, argv, lens);
	if (!rep) {
		char why[160];

		snprintf(why, sizeof(why), "%s", r->ctx->errstr[0] ? r->ctx->errstr : "I/O error");
		atomic_fetch_add(&r->c->m_redis_errors, 1);
		rc_close(r, why);
	}
	return rep;
}

redisReply *rc_cmd(struct rconn *r, const char *fmt, ...)
{
	redisReply *rep;
	va_list ap;

	if (!r->ctx)
		return NULL;
	va_start(ap, fmt);
	rep = redisvCommand(r->ctx, fmt, ap);
	va_end(ap);
	if (!rep) {
		char why[160];

		snprintf(why, sizeof(why), "%s", r->ctx->errstr[0] ? r->ctx->errstr : "I/O error");
		atomic_fetch_add(&r->c->m_redis_errors, 1);
		rc_close(r, why);
	}
	return rep;
}

void cl_keys_for(struct cl_keys *k, const char *host)
{
	static const char *const fixed[] = { "meta", "state", "feed", "hosts", "hostids",
					     "hostnums" };

	for (int i = 0; i < K_LEASE; i++)
		snprintf(k->k[i], sizeof(k->k[i]), CL_TAG "%s", fixed[i]);
	snprintf(k->k[K_LEASE], sizeof(k->k[K_LEASE]), CL_TAG "lease:%s", host);
	snprintf(k->k[K_OWN], sizeof(k->k[K_OWN]), CL_TAG "own:%s", host);
}

static void random_hex(char *out, size_t bytes);

redisReply *cl_script(struct rconn *r, const char *host, const char *op, int nx,
		      const char *const *xv, const size_t *xl)
{
	struct cluster *c = r->c;
	struct cl_keys other, *k = &c->keys;
	int argc = 3 + K_COUNT + 6 + nx, n = 0;
	const char **argv = malloc(sizeof(*argv) * (size_t)argc);
	size_t *lens = malloc(sizeof(*lens) * (size_t)argc);
	redisReply *rep = NULL;
	char nkeys[8], epoch[40];

	if (!argv || !lens) {
		free(argv);
		free(lens);
		return NULL;
	}
	if (strcmp(host, c->host_id) != 0) {
		cl_keys_for(&other, host);
		k = &other;
	}
	snprintf(nkeys, sizeof(nkeys), "%d", K_COUNT);
	argv[n++] = "EVALSHA";
	argv[n++] = r->sha;
	argv[n++] = nkeys;
	for (int i = 0; i < K_COUNT; i++)
		argv[n++] = k->k[i];
	argv[n++] = op;
	argv[n++] = host;
	argv[n++] = c->token;
	/*
	 * A fresh candidate each call: an epoch must never come back, or a
	 * mirror would take an emptied Redis for the one it knew.
	 */
	random_hex(epoch, 16);
	argv[n++] = epoch;
	argv[n++] = c->feed_max;
	argv[n++] = c->lease_ms_s;
	for (int i = 0; i < n; i++)
		lens[i] = strlen(argv[i]);
	for (int i = 0; i < nx; i++) {
		argv[n] = xv[i];
		lens[n++] = xl[i];
	}
	rep = rc_argv(r, argc, argv, lens);
	if (rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0) {
		/* The script cache was emptied (restart, failover, SCRIPT FLUSH). */
		freeReplyObject(rep);
		argv[0] = "EVAL";
		argv[1] = cl_lua_source;
		lens[0] = 4;
		lens[1] = strlen(cl_lua_source);
		rep = rc_argv(r, argc, argv, lens);
	}
	free(argv);
	free(lens);
	return rep;
}

/* ------------------------------------------------------------------ */
/* the force queue                                                     */
/* ------------------------------------------------------------------ */

void cl_force(struct cluster *c, const void *id, size_t len)
{
	pthread_mutex_lock(&c->fq_mu);
	if (idmap_put(&c->fq, id, len))
		atomic_store(&c->fq_pending, true);
	pthread_mutex_unlock(&c->fq_mu);
}

/* ------------------------------------------------------------------ */
/* start and stop                                                      */
/* ------------------------------------------------------------------ */

static int parse_url(struct cluster *c, const char *url)
{
	snprintf(c->url, sizeof(c->url), "%s", url);
	if (strncmp(url, "unix://", 7) == 0) {
		c->url_unix = true;
		if (strlen(url + 7) >= sizeof(c->url_path) || url[7] != '/')
			return -1;
		strcpy(c->url_path, url + 7);
		return 0;
	}
	if (strncmp(url, "redis://", 8) != 0)
		return -1;
	const char *h = url + 8, *colon, *end;
	size_t hl;

	end = h + strcspn(h, "/?");
	if (*h == '[') { /* [IPV6]:PORT */
		const char *rb = memchr(h, ']', (size_t)(end - h));

		if (!rb)
			return -1;
		hl = (size_t)(rb - h - 1);
		if (hl == 0 || hl >= sizeof(c->url_host))
			return -1;
		memcpy(c->url_host, h + 1, hl);
		c->url_host[hl] = '\0';
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		hl = (size_t)((colon ? colon : end) - h);
		if (hl == 0 || hl >= sizeof(c->url_host))
			return -1;
		memcpy(c->url_host, h, hl);
		c->url_host[hl] = '\0';
	}
	c->url_port = 6379;
	if (colon) {
		uint64_t p;

		if (cl_parse_u64(colon + 1, (size_t)(end - colon - 1), &p) || p == 0 || p > 65535)
			return -1;
		c->url_port = (int)p;
	}
	return 0;
}

static void random_hex(char *out, size_t bytes)
{
	uint8_t b[32];
	size_t got = 0;

	if (bytes > sizeof(b))
		bytes = sizeof(b);
	while (got < bytes) {
		ssize_t k = getrandom(b + got, bytes - got, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) { /* never in practice; still unique per process and time */
			uint64_t x = cl_real_ms() ^ ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)out;

			for (; got < bytes; got++, x = x * 6364136223846793005ull + 1442695040888963407ull)
				b[got] = (uint8_t)(x >> 56);
			break;
		}
		got += (size_t)k;
	}
	for (size_t i = 0; i < bytes; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* Create or adopt one of the view registries and lock it. 0 or the exit status. */
static int open_view(const char *name, const connreg_config_t *cfg, connreg_t **out, int *lock_fd)
{
	connreg_stats_t st = { .size = sizeof(st) };
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
	int created = 0, rc = connreg_open_or_create(name, cfg, out, &created);

	if (rc) {
		dlog(LOG_LVL_ERR, "cluster: cannot create or open the view registry %s: %s", name,
		     connreg_strerror(rc));
		return rc == -EINVAL ? 2 : 3;
	}
	if (!created) {
		rc = connreg_stats(*out, &st);
		if (rc || st.capacity != cfg->capacity || st.key_max != cfg->key_max ||
		    st.flags != 0) {
			dlog(LOG_LVL_ERR,
			     "cluster: %s exists with another configuration (capacity %" PRIu64
			     ", key-max %" PRIu32 "; this connregd needs %" PRIu64 ", %" PRIu32
			     "); if nothing uses it, remove it (connreg unlink %s)",
			     name, st.capacity, st.key_max, (uint64_t)cfg->capacity, cfg->key_max,
			     name);
			return 2;
		}
	}
	*lock_fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
	if (*lock_fd < 0 || fcntl(*lock_fd, F_OFD_SETLK, &fl) != 0) {
		dlog(LOG_LVL_ERR, "cluster: %s: %s", name,
		     *lock_fd >= 0 && (errno == EAGAIN || errno == EACCES)
			     ? "another connregd keeps this view (it holds its lock)"
			     : strerror(errno));
		return 3;
	}
	dlog(LOG_LVL_INFO, "cluster: %s the view registry %s", created ? "created" : "adopted",
	     name);
	return 0;
}

/* The byte of the local segment that the connregd publishing it locks (one drainer). */
#define CLUSTER_LOCK_BYTE 1

int cluster_start(connreg_t *reg, int lock_fd, const struct cluster_cfg *cfg,
		  struct cluster **out)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = CLUSTER_LOCK_BYTE,
			    .l_len = 1 };
	struct cluster *c = calloc(1, sizeof(*c));
	connreg_config_t vc;
	int rc;

	*out = NULL;
	if (!c) {
		dlog(LOG_LVL_ERR, "cluster: out of memory");
		return 3;
	}
	c->view_lock_fd = c->hosts_lock_fd = -1;
	pthread_mutex_init(&c->fq_mu, NULL);
	pthread_mutex_init(&c->pub.mu, NULL);
	pthread_mutex_init(&c->mir.mu, NULL);
	c->pub.c = c->mir.c = c;
	c->pub.what = "publisher";
	c->mir.what = "mirror";
	c->pub.timeout_ms = 5000;
	c->mir.timeout_ms = CL_BLOCK_MS + 5000;
	if (parse_url(c, cfg->url) != 0) {
		dlog(LOG_LVL_ERR, "cluster: bad --cluster \"%s\": expected redis://HOST[:PORT] or "
				  "unix:///PATH", cfg->url);
		free(c);
		return 2;
	}
	snprintf(c->host_id, sizeof(c->host_id), "%s", cfg->host_id);
	snprintf(c->view_name, sizeof(c->view_name), "%s", cfg->view);
	snprintf(c->hosts_name, sizeof(c->hosts_name), "%s" CONNREG_ROUTE_HOSTS_SUFFIX, cfg->view);
	c->lease_ms = cfg->lease_ms;
	snprintf(c->lease_ms_s, sizeof(c->lease_ms_s), "%" PRIu32, cfg->lease_ms);
	snprintf(c->feed_max, sizeof(c->feed_max), "%" PRIu64, cfg->feed_max);
	c->key_max = cfg->key_max;
	random_hex(c->token, 16);
	cl_keys_for(&c->keys, c->host_id);
	c->reg = reg;

	if (fcntl(lock_fd, F_OFD_SETLK, &fl) != 0) {
		dlog(LOG_LVL_ERR, "cluster: %s", errno == EAGAIN || errno == EACCES
			     ? "another connregd already publishes this registry (--cluster in "
			       "another pid namespace): only one may drain its changes"
			     : strerror(errno));
		cluster_stop(c, false);
		return 3;
	}
	memset(&vc, 0, sizeof(vc));
	vc.size = sizeof(vc);
	vc.capacity = cfg->capacity;
	vc.key_max = cfg->key_max;
	vc.max_threads = cfg->max_threads;
	vc.mode = cfg->mode;
	rc = open_view(c->view_name, &vc, &c->view, &c->view_lock_fd);
	if (rc == 0) {
		vc.capacity = CL_HOSTS_CAPACITY;
		vc.key_max = DOPT_HOST_ID_MAX;
		vc.max_threads = 64;
		rc = open_view(c->hosts_name, &vc, &c->hosts, &c->hosts_lock_fd);
	}
	if (rc) {
		cluster_stop(c, false);
		return rc;
	}
	atomic_store(&c->m_stale, 1);
	if (pthread_create(&c->pub_thr, NULL, cl_publisher_main, c) != 0) {
		dlog(LOG_LVL_ERR, "cluster: cannot start the publisher thread");
		cluster_stop(c, false);
		return 3;
	}
	c->pub_started = true;
	if (pthread_create(&c->mir_thr, NULL, cl_mirror_main, c) != 0) {
		dlog(LOG_LVL_ERR, "cluster: cannot start the mirror thread");
		cluster_stop(c, false);
		return 3;
	}
	c->mir_started = true;
	dlog(LOG_LVL_NOTICE,
	     "cluster: host %s, Redis %s, view %s (hosts in %s), lease %" PRIu32 " ms", c->host_id,
	     c->url, c->view_name, c->hosts_name, c->lease_ms);
	*out = c;
	return 0;
}

static void rc_shutdown(struct rconn *r)
{
	pthread_mutex_lock(&r->mu);
	if (r->ctx)
		shutdown(r->ctx->fd, SHUT_RDWR);
	pthread_mutex_unlock(&r->mu);
}

void cluster_stop(struct cluster *c, bool unlink_views)
{
	if (!c)
		return;
	atomic_store(&c->stop, true);
	/* The mirror may be blocked in XREAD: cut its socket. */
	rc_shutdown(&c->mir);
	if (c->mir_started)
		pthread_join(c->mir_thr, NULL);
	/* The publisher hands its lease over before it returns. */
	if (c->pub_started)
		pthread_join(c->pub_thr, NULL);
	rc_close(&c->pub, NULL);
	rc_close(&c->mir, NULL);
	connreg_close(c->view);
	connreg_close(c->hosts);
	if (unlink_views) {
		if (c->view && connreg_unlink(c->view_name) == 0)
			dlog(LOG_LVL_NOTICE, "cluster: removed the view %s (--unlink-on-exit)",
			     c->view_name);
		if (c->hosts)
			connreg_unlink(c->hosts_name);
	}
	if (c->view_lock_fd >= 0)
		close(c->view_lock_fd);
	if (c->hosts_lock_fd >= 0)
		close(c->hosts_lock_fd);
	idmap_free(&c->fq);
	pthread_mutex_destroy(&c->fq_mu);
	pthread_mutex_destroy(&c->pub.mu);
	pthread_mutex_destroy(&c->mir.mu);
	free(c);
}

/* ------------------------------------------------------------------ */
/* metrics                                                             */
/* ------------------------------------------------------------------ */

static void sample(FILE *f, const char *name, const char *type, const char *help,
		   const char *registry, double v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s{registry=\"%s\"} %.15g\n", name, help, name,
		type, name, registry, v);
}

#define M(x) ((double)atomic_load(&c->x))

void cluster_metrics(struct cluster *c, FILE *f, const char *registry)
{
	connreg_stats_t st = { .size = sizeof(st) };
	double view_ids = connreg_stats(c->view, &st) == 0 ? (double)st.live : 0.0;

	fprintf(f, "# HELP connreg_cluster_info This host in the cluster (connregd --cluster).\n"
		   "# TYPE connreg_cluster_info gauge\n"
		   "connreg_cluster_info{registry=\"%s\",host_id=\"%s\",host_number=\"%" PRIu64
		   "\",view=\"%s\"} 1\n",
		registry, c->host_id, (uint64_t)atomic_load(&c->m_host_num), c->view_name);
	sample(f, "connreg_cluster_lease_held", "gauge",
	       "1 while this host holds its lease in Redis.", registry, M(m_lease_held));
	sample(f, "connreg_cluster_lease_acquired_total", "counter",
	       "Leases taken (at start, and after each loss).", registry, M(m_lease_acquired));
	sample(f, "connreg_cluster_lease_renewals_total", "counter", "Lease renewals.", registry,
	       M(m_lease_renewals));
	sample(f, "connreg_cluster_lease_losses_total", "counter",
	       "Times this host found its lease gone (its ids were then asserted again).",
	       registry, M(m_lease_losses));
	sample(f, "connreg_cluster_published_changes_total", "counter",
	       "Local changes that changed the shared state.", registry, M(m_published));
	sample(f, "connreg_cluster_published_records_total", "counter",
	       "Feed records this host appended.", registry, M(m_records_out));
	sample(f, "connreg_cluster_reconciles_total", "counter",
	       "Full comparisons of the local registry with what Redis holds for this host.",
	       registry, M(m_reconciles));
	sample(f, "connreg_cluster_hosts_reaped_total", "counter",
	       "Other hosts whose expired lease this host ended.", registry, M(m_hosts_reaped));
	sample(f, "connreg_cluster_redis_errors_total", "counter",
	       "Failed Redis connections, commands and error replies.", registry,
	       M(m_redis_errors));
	sample(f, "connreg_cluster_feed_records_total", "counter", "Feed records applied.",
	       registry, M(m_records_in));
	sample(f, "connreg_cluster_feed_garbage_total", "counter",
	       "Malformed feed records and state entries skipped.", registry, M(m_garbage));
	sample(f, "connreg_cluster_resyncs_total", "counter",
	       "Snapshots of the whole state (start, gap, epoch change, failover).", registry,
	       M(m_resyncs));
	sample(f, "connreg_cluster_feed_lag_records", "gauge",
	       "Records in Redis not yet applied to the view (at the last check).", registry,
	       M(m_lag_records));
	sample(f, "connreg_cluster_feed_lag_seconds", "gauge",
	       "Age of the last record applied when it was applied (Redis clock to ours).",
	       registry, M(m_lag_ms) / 1e3);
	sample(f, "connreg_cluster_hosts_seen", "gauge", "Hosts holding a live lease.", registry,
	       M(m_hosts_seen));
	sample(f, "connreg_cluster_view_stale", "gauge",
	       "1 while the view may be behind (Redis unreachable, resync pending).", registry,
	       M(m_stale));
	sample(f, "connreg_cluster_view_synced_timestamp_seconds", "gauge",
	       "When the view was last known to be current.", registry, M(m_last_sync_ms) / 1e3);
	sample(f, "connreg_cluster_view_ids", "gauge", "Ids of other hosts in the view.",
	       registry, view_ids);
	sample(f, "connreg_cluster_view_errors_total", "counter",
	       "Writes to the view that failed (ENOSPC: the view is full; ENAMETOOLONG).",
	       registry, M(m_view_errors));
	sample(f, "connreg_cluster_transport_truncated_total", "counter",
	       "Remote transports with bits above 47 set (the view keeps the low 48).", registry,
	       M(m_truncated));
}
