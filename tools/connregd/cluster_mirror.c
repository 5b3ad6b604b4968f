/*
 * cluster_mirror.c: the mirror thread of connregd --cluster.
 *
 * It reads the feed (XREAD BLOCK from the last record applied) and writes
 * every other host's ids into the view registry as routes (cluster_view.h).
 * Each record must carry the next sequence number and the epoch the mirror
 * knows; a gap (a trimmed feed), another epoch (Redis restarted empty,
 * flushed) or a sequence that went back (a failover that lost writes)
 * makes it resync: read (epoch, seq, last id) from meta, scan the whole
 * state into the view, remove what the view has that the state lacks, and
 * go on reading after that seq (replaying a record twice is harmless).
 * Malformed records and state entries are logged and skipped.
 *
 * Where the shared state lost an id that this host holds (another host
 * took it and then dropped it, a host-down, a failover), it asks the
 * publisher to publish the id again (cl_force).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_int.h"
#include "log.h"

#define NHOSTS 65536
/* Resyncs at most this often (each scans the whole state). */
#define CL_RESYNC_GAP_MS 250

struct mirror {
	struct cluster *c;
	bool have_epoch;
	char epoch[64];
	uint64_t last_seq;
	char last_id[64];
	bool need_resync;
	char why[160];

	char **names;		/* host number -> host id (learnt from Redis) */
	uint8_t *up;		/* host number -> held a live lease at the last look */
	uint16_t self;		/* this host's number, 0 while unknown */

	uint64_t next_check, next_hosts;
	uint64_t next_resync;	/* resyncs are spaced by CL_RESYNC_GAP_MS */
	bool seq_ahead;		/* the last check saw meta's seq ahead of ours */
	struct idmap seen;
	uint8_t *ids;		/* ids collected by a walk, packed (u32 len, bytes) */
	size_t ids_len, ids_cap;
	bool ids_oom;
	uint16_t walk_host;
	struct cl_ratelog rl_gfeed, rl_gstate, rl_ghosts, rl_view, rl_err, rl_trunc;
};

static void resync_needed(struct mirror *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void resync_needed(struct mirror *m, const char *fmt, ...)
{
	va_list ap;

	if (m->need_resync)
		return;
	va_start(ap, fmt);
	vsnprintf(m->why, sizeof(m->why), fmt, ap);
	va_end(ap);
	m->need_resync = true;
	atomic_store(&m->c->m_stale, 1);
}

static void garbage(struct mirror *m, struct cl_ratelog *rl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void garbage(struct mirror *m, struct cl_ratelog *rl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	atomic_fetch_add(&m->c->m_garbage, 1);
	cl_log_limited(rl, LOG_LVL_WARNING, "cluster: skipped %s", msg);
}

static bool str_is(const redisReply *r, const char *s)
{
	return r->type == REDIS_REPLY_STRING && (size_t)r->len == strlen(s) &&
	       memcmp(r->str, s, (size_t)r->len) == 0;
}

static int parse_num(const char *s, size_t len)
{
	uint64_t v;

	if (cl_parse_u64(s, len, &v) != 0 || v == 0 || v > 65535)
		return -1;
	return (int)v;
}

/* ------------------------------------------------------------------ */
/* hosts                                                               */
/* ------------------------------------------------------------------ */

static void hosts_write(struct mirror *m, uint16_t n)
{
	struct cluster *c = m->c;
	const char *name = m->names[n];
	uint64_t want = n | (m->up[n] ? CONNREG_ROUTE_HOST_UP : 0), cur;
	int rc;

	if (!name)
		return;
	if (connreg_get_transport(c->hosts, name, strlen(name), &cur) == 0 && cur == want)
		return;
	rc = connreg_register(c->hosts, name, strlen(name), want);
	if (rc)
		cl_log_limited(&m->rl_view, LOG_LVL_ERR, "cluster: cannot write host %s to %s: %s",
			       name, c->hosts_name, connreg_strerror(rc));
}

/* Record host n's id (from Redis); false when it is not a host id. */
static bool set_name(struct mirror *m, int n, const char *s, size_t len)
{
	static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
	char *copy;

	if (n <= 0 || len == 0 || len > DOPT_HOST_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!s[i] || !strchr(ok, s[i]))
			return false;
	if (m->names[n] && strlen(m->names[n]) == len && memcmp(m->names[n], s, len) == 0)
		return true;
	copy = strndup(s, len);
	if (!copy)
		return false;
	free(m->names[n]);
	m->names[n] = copy;
	if (strcmp(copy, m->c->host_id) == 0)
		m->self = (uint16_t)n;
	else if (m->self == n)
		m->self = 0;
	hosts_write(m, (uint16_t)n);
	return true;
}

/* Learn a host number's id (HGET hostnums), if unknown or `again`. */
static void learn_host(struct mirror *m, int n, bool again)
{
	struct cluster *c = m->c;
	redisReply *rep;

	if (m->names[n] && !again)
		return;
	rep = rc_cmd(&c->mir, "HGET %s %d", c->keys.k[K_HOSTNUMS], n);
	if (!rep)
		return;
	if (rep->type == REDIS_REPLY_STRING) {
		m->up[n] = 1;
		if (!set_name(m, n, rep->str, (size_t)rep->len))
			garbage(m, &m->rl_ghosts, "a host id that is not one for host number %d in %s", n,
				c->keys.k[K_HOSTNUMS]);
	}
	freeReplyObject(rep);
}

struct hosts_walk {
	struct mirror *m;
	uint8_t *drop;		/* packed (u32 len, bytes) */
	size_t len, cap;
};

static int hosts_stale(const void *id, size_t len, uint64_t v, void *arg)
{
	struct hosts_walk *w = arg;
	const char *name = w->m->names[v & CONNREG_ROUTE_HOST_MASK];
	uint32_t l = (uint32_t)len;

	if (name && strlen(name) == len && memcmp(name, id, len) == 0)
		return 0;
	if (w->len + 4 + len > w->cap) {
		size_t ncap = (w->len + 4 + len) * 2;
		uint8_t *nb = realloc(w->drop, ncap);

		if (!nb)
			return 1;
		w->drop = nb;
		w->cap = ncap;
	}
	memcpy(w->drop + w->len, &l, 4);
	memcpy(w->drop + w->len + 4, id, len);
	w->len += 4 + len;
	return 0;
}

/*
 * Every host id and number (HGETALL hostnums) and which hold a live lease
 * (cluster.lua "hosts"), into the hosts registry. Forgets numbers Redis no
 * longer has when `reset`. false when the connection failed.
 */
static bool refresh_hosts(struct mirror *m, bool reset)
{
	struct cluster *c = m->c;
	redisReply *nums = rc_cmd(&c->mir, "HGETALL %s", c->keys.k[K_HOSTNUMS]), *live;
	struct hosts_walk w = { .m = m };
	uint64_t seen = 0, now;

	if (!nums)
		return false;
	if (nums->type != REDIS_REPLY_ARRAY) {
		atomic_fetch_add(&c->m_redis_errors, 1);
		cl_log_limited(&m->rl_err, LOG_LVL_ERR, "cluster: HGETALL %s: %s",
			       c->keys.k[K_HOSTNUMS],
			       nums->type == REDIS_REPLY_ERROR ? nums->str : "unexpected reply");
		freeReplyObject(nums);
		return true;
	}
	if (reset) {
		for (int n = 0; n < NHOSTS; n++) {
			free(m->names[n]);
			m->names[n] = NULL;
		}
		m->self = 0;
	}
	for (size_t i = 0; i + 1 < nums->elements; i += 2) {
		redisReply *k = nums->element[i], *v = nums->element[i + 1];
		int n = k->type == REDIS_REPLY_STRING ? parse_num(k->str, (size_t)k->len) : -1;

		if (n < 0 || v->type != REDIS_REPLY_STRING ||
		    !set_name(m, n, v->str, (size_t)v->len))
			garbage(m, &m->rl_ghosts, "an entry of %s that is not (host number, host id)",
				c->keys.k[K_HOSTNUMS]);
	}
	freeReplyObject(nums);

	live = cl_script(&c->mir, c->host_id, "hosts", 0, NULL, NULL);
	if (!live)
		return false;
	if (live->type == REDIS_REPLY_ARRAY && live->elements >= 1 &&
	    live->element[0]->type == REDIS_REPLY_INTEGER) {
		now = (uint64_t)live->element[0]->integer;
		memset(m->up, 0, NHOSTS);
		for (size_t i = 1; i + 1 < live->elements; i += 2) {
			redisReply *h = live->element[i], *d = live->element[i + 1];
			uint64_t dl;

			if (h->type != REDIS_REPLY_STRING || d->type != REDIS_REPLY_STRING)
				continue;
			/* A deadline is an integer, possibly written as "1.7e12" by ZSCORE's double. */
			dl = (uint64_t)strtod(d->str, NULL);
			for (int n = 1; n < NHOSTS; n++)
				if (m->names[n] && strlen(m->names[n]) == (size_t)h->len &&
				    memcmp(m->names[n], h->str, (size_t)h->len) == 0) {
					m->up[n] = dl > now;
					break;
				}
		}
	} else {
		atomic_fetch_add(&c->m_redis_errors, 1);
		cl_log_limited(&m->rl_err, LOG_LVL_ERR, "cluster: listing live hosts failed: %s",
			       live->type == REDIS_REPLY_ERROR ? live->str : "unexpected reply");
	}
	freeReplyObject(live);
	for (int n = 1; n < NHOSTS; n++)
		if (m->names[n]) {
			hosts_write(m, (uint16_t)n);
			seen += m->up[n];
		}
	atomic_store(&c->m_hosts_seen, seen);
	/* Entries of the hosts registry that no longer name their number. */
	if (connreg_foreach(c->hosts, hosts_stale, &w) == 0)
		for (size_t o = 0; o < w.len;) {
			uint32_t l;

			memcpy(&l, w.drop + o, 4);
			connreg_unregister(c->hosts, w.drop + o + 4, l);
			o += 4 + l;
		}
	free(w.drop);
	return true;
}

/* ------------------------------------------------------------------ */
/* the view                                                            */
/* ------------------------------------------------------------------ */

static void view_put(struct mirror *m, const void *id, size_t len, uint16_t n, uint64_t t)
{
	struct cluster *c = m->c;
	uint64_t v = connreg_route_make(n, t), cur;
	int rc;

	if (t >> CONNREG_ROUTE_HOST_SHIFT) {
		atomic_fetch_add(&c->m_truncated, 1);
		cl_log_limited(&m->rl_trunc, LOG_LVL_WARNING,
			       "cluster: a transport of host %u has bits above 47 set (%#" PRIx64
			       "): the view keeps its low 48 bits",
			       n, t);
	}
	if (connreg_get_transport(c->view, id, len, &cur) == 0 && cur == v)
		return;
	rc = connreg_register(c->view, id, len, v);
	if (rc) {
		atomic_fetch_add(&c->m_view_errors, 1);
		cl_log_limited(&m->rl_view, LOG_LVL_ERR,
			       "cluster: cannot write an id of host %u into the view %s: %s", n,
			       c->view_name, connreg_strerror(rc));
	}
}

/* The shared state lost id: forget it here, and assert it if this host holds it. */
static void view_drop(struct mirror *m, const void *id, size_t len)
{
	struct cluster *c = m->c;
	uint64_t t;

	connreg_unregister(c->view, id, len);
	if (connreg_get_transport(c->reg, id, len, &t) == 0)
		cl_force(c, id, len);
}

static int collect_id(struct mirror *m, const void *id, size_t len)
{
	uint32_t l = (uint32_t)len;

	if (m->ids_len + 4 + len > m->ids_cap) {
		size_t ncap = (m->ids_len + 4 + len) * 2 + 4096;
		uint8_t *nb = realloc(m->ids, ncap);

		if (!nb) {
			m->ids_oom = true;
			return 1;
		}
		m->ids = nb;
		m->ids_cap = ncap;
	}
	memcpy(m->ids + m->ids_len, &l, 4);
	memcpy(m->ids + m->ids_len + 4, id, len);
	m->ids_len += 4 + len;
	return 0;
}

static int of_host(const void *id, size_t len, uint64_t v, void *arg)
{
	struct mirror *m = arg;

	return connreg_route_host(v) == m->walk_host ? collect_id(m, id, len) : 0;
}

static int not_seen(const void *id, size_t len, uint64_t v, void *arg)
{
	struct mirror *m = arg;

	(void)v;
	return idmap_get(&m->seen, id, len) ? 0 : collect_id(m, id, len);
}

static int local_not_seen(const void *id, size_t len, uint64_t t, void *arg)
{
	struct mirror *m = arg;

	(void)t;
	if (!idmap_get(&m->seen, id, len))
		cl_force(m->c, id, len);
	return 0;
}

/* Drop every id the walk collected. */
static void drop_collected(struct mirror *m)
{
	for (size_t o = 0; o < m->ids_len;) {
		uint32_t l;

		memcpy(&l, m->ids + o, 4);
		view_drop(m, m->ids + o + 4, l);
		o += 4 + l;
	}
	m->ids_len = 0;
}

struct meta {
	bool has_epoch;
	char epoch[64];
	uint64_t seq;
	char lastid[64];
};

/* HMGET meta epoch seq lastid. 1 read, 0 connection failed, -1 garbage (logged). */
static int read_meta(struct mirror *m, struct meta *mt)
{
	struct cluster *c = m->c;
	redisReply *rep = rc_cmd(&c->mir, "HMGET %s epoch seq lastid", c->keys.k[K_META]), *e, *s, *l;

	memset(mt, 0, sizeof(*mt));
	strcpy(mt->lastid, "0-0");
	if (!rep)
		return 0;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3) {
		atomic_fetch_add(&c->m_redis_errors, 1);
		cl_log_limited(&m->rl_err, LOG_LVL_ERR, "cluster: HMGET %s: %s", c->keys.k[K_META],
			       rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
		freeReplyObject(rep);
		return -1;
	}
	e = rep->element[0];
	s = rep->element[1];
	l = rep->element[2];
	if (e->type == REDIS_REPLY_STRING && e->len > 0 && e->len < sizeof(mt->epoch)) {
		mt->has_epoch = true;
		memcpy(mt->epoch, e->str, (size_t)e->len + 1);
	}
	if (s->type == REDIS_REPLY_STRING && cl_parse_u64(s->str, (size_t)s->len, &mt->seq) != 0) {
		garbage(m, &m->rl_gstate, "seq \"%.*s\" in %s", s->len > 40 ? 40 : (int)s->len, s->str, c->keys.k[K_META]);
		mt->seq = 0;
	}
	if (l->type == REDIS_REPLY_STRING && l->len > 0 && l->len < sizeof(mt->lastid))
		memcpy(mt->lastid, l->str, (size_t)l->len + 1);
	freeReplyObject(rep);
	return 1;
}

/*
 * A record out of order (its epoch is not ours, or its seq skips some):
 * true when meta confirms it (a resync is needed), false when the record
 * cannot have come from cluster.lua (meta's epoch is still ours, or its
 * seq is beyond meta's): a forged or stray record, skipped.
 */
static bool anomaly_confirmed(struct mirror *m, bool epoch_differs, uint64_t seq)
{
	struct meta mt;

	if (read_meta(m, &mt) != 1)
		return true;
	if (epoch_differs)
		return !(mt.has_epoch && strcmp(mt.epoch, m->epoch) == 0);
	return !(mt.has_epoch && strcmp(mt.epoch, m->epoch) == 0 && seq > mt.seq);
}

/* ------------------------------------------------------------------ */
/* records                                                             */
/* ------------------------------------------------------------------ */

static void apply_changes(struct mirror *m, int n, redisReply *f)
{
	struct cluster *c = m->c;

	for (size_t i = 8; i + 1 < f->elements; i += 2) {
		redisReply *id = f->element[i], *v = f->element[i + 1];
		uint64_t t;

		if (id->type != REDIS_REPLY_STRING || id->len == 0 || v->type != REDIS_REPLY_STRING ||
		    (v->len > 0 && cl_parse_u64(v->str, (size_t)v->len, &t) != 0)) {
			garbage(m, &m->rl_gfeed, "a change in a feed record that is not (id, transport)");
			continue;
		}
		if (n == m->self) {
			/* This host's own id: never in its view (it took it over). */
			if (v->len > 0)
				connreg_unregister(c->view, id->str, (size_t)id->len);
		} else if (v->len > 0) {
			view_put(m, id->str, (size_t)id->len, (uint16_t)n, t);
		} else {
			uint64_t cur;

			if (connreg_get_transport(c->view, id->str, (size_t)id->len, &cur) == 0 &&
			    connreg_route_host(cur) == n)
				view_drop(m, id->str, (size_t)id->len);
		}
	}
}

/* Forget host n's id (its number may go to another host). */
static void forget_host(struct mirror *m, int n)
{
	struct cluster *c = m->c;
	uint64_t v;

	if (!m->names[n])
		return;
	if (connreg_get_transport(c->hosts, m->names[n], strlen(m->names[n]), &v) == 0 &&
	    (v & CONNREG_ROUTE_HOST_MASK) == (uint64_t)n)
		connreg_unregister(c->hosts, m->names[n], strlen(m->names[n]));
	free(m->names[n]);
	m->names[n] = NULL;
	m->up[n] = 0;
	if (m->self == n)
		m->self = 0;
}

/* Host n's lease ended: drop every id of it from the view. */
static void apply_host_down(struct mirror *m, int n)
{
	struct cluster *c = m->c;

	if (n == m->self) {
		atomic_store(&c->lease_check_now, true);
		forget_host(m, n);
		return;
	}
	m->walk_host = (uint16_t)n;
	m->ids_len = 0;
	m->ids_oom = false;
	connreg_foreach(c->view, of_host, m);
	if (m->ids_oom) {
		resync_needed(m, "out of memory while dropping host %d's ids", n);
		m->ids_len = 0;
		return;
	}
	drop_collected(m);
	if (m->names[n])
		dlog(LOG_LVL_INFO, "cluster: host %s is gone: its ids left the view", m->names[n]);
	forget_host(m, n);
}

/* Apply one feed entry. false: stop (a resync is needed). */
static bool apply_entry(struct mirror *m, redisReply *ent)
{
	struct cluster *c = m->c;
	redisReply *f;
	uint64_t seq, ms;
	int n;

	if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2 ||
	    ent->element[0]->type != REDIS_REPLY_STRING ||
	    ent->element[0]->len >= sizeof(m->last_id)) {
		garbage(m, &m->rl_gfeed, "a feed entry of an unexpected shape");
		return true;
	}
	memcpy(m->last_id, ent->element[0]->str, (size_t)ent->element[0]->len + 1);
	f = ent->element[1];
	if (f->type != REDIS_REPLY_ARRAY || f->elements < 8 || f->elements % 2 ||
	    !str_is(f->element[0], "s") || !str_is(f->element[2], "e") ||
	    !str_is(f->element[4], "h") || !str_is(f->element[6], "o") ||
	    f->element[1]->type != REDIS_REPLY_STRING || f->element[3]->type != REDIS_REPLY_STRING ||
	    f->element[5]->type != REDIS_REPLY_STRING ||
	    cl_parse_u64(f->element[1]->str, (size_t)f->element[1]->len, &seq) != 0 ||
	    (n = parse_num(f->element[5]->str, (size_t)f->element[5]->len)) < 0 ||
	    f->element[3]->len == 0 || f->element[3]->len >= sizeof(m->epoch) ||
	    !(str_is(f->element[7], "c") || str_is(f->element[7], "x") ||
	      str_is(f->element[7], "u"))) {
		garbage(m, &m->rl_gfeed, "feed record %s: not a connregd record", m->last_id);
		return true;
	}
	if (!m->have_epoch) {
		/* Redis had no epoch at the last resync: the feed started since. */
		memcpy(m->epoch, f->element[3]->str, (size_t)f->element[3]->len + 1);
		m->have_epoch = true;
	} else if ((size_t)f->element[3]->len != strlen(m->epoch) ||
		   memcmp(f->element[3]->str, m->epoch, (size_t)f->element[3]->len) != 0) {
		if (!anomaly_confirmed(m, true, seq)) {
			garbage(m, &m->rl_gfeed, "feed record %s: an epoch that is not the feed's", m->last_id);
			return true;
		}
		resync_needed(m, "the feed's epoch changed (Redis restarted empty, or was flushed)");
		return false;
	}
	if (seq <= m->last_seq)
		return true; /* applied already (a resync's replay) */
	if (seq != m->last_seq + 1) {
		if (!anomaly_confirmed(m, false, seq)) {
			garbage(m, &m->rl_gfeed, "feed record %s: seq %" PRIu64 " beyond the feed's", m->last_id, seq);
			return true;
		}
		resync_needed(m, "a gap in the feed: record %" PRIu64 " follows %" PRIu64
				 " (trimmed while this host was behind)", seq, m->last_seq);
		return false;
	}
	learn_host(m, n, str_is(f->element[7], "u"));
	if (str_is(f->element[7], "c")) {
		apply_changes(m, n, f);
	} else if (str_is(f->element[7], "u")) {
		m->up[n] = 1;
		hosts_write(m, (uint16_t)n);
	} else {
		apply_host_down(m, n);
	}
	m->last_seq = seq;
	atomic_fetch_add(&c->m_records_in, 1);
	if (sscanf(m->last_id, "%" SCNu64, &ms) == 1) {
		uint64_t now = cl_real_ms();

		atomic_store(&c->m_lag_ms, now > ms ? now - ms : 0);
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* checks and resync                                                   */
/* ------------------------------------------------------------------ */

/* Is there a record after last_id right now? 1 yes, 0 no, -1 failed. */
static int anything_after(struct mirror *m)
{
	struct cluster *c = m->c;
	redisReply *rep = rc_cmd(&c->mir, "XREAD COUNT 1 STREAMS %s %s", c->keys.k[K_FEED],
				 m->last_id);
	int r;

	if (!rep)
		return -1;
	r = rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 ? 1
	    : rep->type == REDIS_REPLY_NIL			? 0
								: -1;
	freeReplyObject(rep);
	return r;
}

/* The periodic check: same epoch, seq not behind ours, nothing lost past our position. */
static void check_feed(struct mirror *m)
{
	struct cluster *c = m->c;
	struct meta mt;

	if (read_meta(m, &mt) != 1)
		return;
	if (!mt.has_epoch) {
		if (m->have_epoch)
			resync_needed(m, "Redis has no feed epoch any more (restarted empty, or "
					 "flushed)");
		return;
	}
	if (m->have_epoch && strcmp(mt.epoch, m->epoch) != 0) {
		resync_needed(m, "the feed's epoch changed (Redis restarted empty, or was flushed)");
		return;
	}
	if (mt.seq < m->last_seq) {
		resync_needed(m, "the feed went back from %" PRIu64 " to %" PRIu64
				 " (a failover lost writes)", m->last_seq, mt.seq);
		return;
	}
	atomic_store(&c->m_lag_records, mt.seq - m->last_seq);
	if (mt.seq > m->last_seq) {
		/* Behind: fine while records follow our position, a loss if none does. */
		if (anything_after(m) == 0) {
			if (m->seq_ahead)
				resync_needed(m, "the feed holds no record after %" PRIu64
						 " but meta's seq is %" PRIu64, m->last_seq, mt.seq);
			m->seq_ahead = true;
		}
		return;
	}
	m->seq_ahead = false;
	atomic_store(&c->m_lag_ms, 0);
	atomic_store(&c->m_stale, 0);
	atomic_store(&c->m_last_sync_ms, cl_real_ms());
}

/* Scan the state into the view. true done, false failed (connection or garbage type). */
static bool resync(struct mirror *m)
{
	struct cluster *c = m->c;
	char cursor[32] = "0";
	struct meta mt;
	uint64_t entries = 0, mine = 0, t0 = cl_mono_ms();
	int r = read_meta(m, &mt);

	if (r != 1)
		return false;
	if (!refresh_hosts(m, true))
		return false;
	idmap_clear(&m->seen);
	do {
		redisReply *rep = rc_cmd(&c->mir, "HSCAN %s %s COUNT 1000", c->keys.k[K_STATE], cursor);
		redisReply *cur, *arr;

		if (!rep)
			return false;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
		    (cur = rep->element[0])->type != REDIS_REPLY_STRING || cur->len >= 31 ||
		    (arr = rep->element[1])->type != REDIS_REPLY_ARRAY) {
			atomic_fetch_add(&c->m_redis_errors, 1);
			cl_log_limited(&m->rl_err, LOG_LVL_ERR, "cluster: resync: HSCAN %s: %s",
				       c->keys.k[K_STATE],
				       rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
			freeReplyObject(rep);
			return false;
		}
		memcpy(cursor, cur->str, (size_t)cur->len + 1);
		for (size_t i = 0; i + 1 < arr->elements; i += 2) {
			redisReply *k = arr->element[i], *v = arr->element[i + 1];
			const char *colon;
			uint64_t t, lt;
			int n;

			if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
			    k->len == 0 || !(colon = memchr(v->str, ':', (size_t)v->len)) ||
			    (n = parse_num(v->str, (size_t)(colon - v->str))) < 0 ||
			    cl_parse_u64(colon + 1, (size_t)(v->str + v->len - colon - 1), &t) != 0) {
				garbage(m, &m->rl_gstate, "a state entry that is not (id, \"N:T\") in %s",
					c->keys.k[K_STATE]);
				continue;
			}
			if (!idmap_put(&m->seen, k->str, (size_t)k->len)) {
				freeReplyObject(rep);
				dlog(LOG_LVL_ERR, "cluster: resync: out of memory");
				return false;
			}
			entries++;
			if (n == m->self) {
				/* Ours: the publisher fixes what Redis has wrong. */
				mine++;
				if (connreg_get_transport(c->reg, k->str, (size_t)k->len, &lt) != 0 ||
				    lt != t)
					cl_force(c, k->str, (size_t)k->len);
				connreg_unregister(c->view, k->str, (size_t)k->len);
				continue;
			}
			if (!m->names[n])
				learn_host(m, n, false);
			view_put(m, k->str, (size_t)k->len, (uint16_t)n, t);
		}
		freeReplyObject(rep);
	} while (strcmp(cursor, "0") != 0);

	/* What the view has that the state lacks. */
	m->ids_len = 0;
	m->ids_oom = false;
	if (connreg_foreach(c->view, not_seen, m) != 0 || m->ids_oom) {
		dlog(LOG_LVL_ERR, "cluster: resync: cannot walk the view");
		m->ids_len = 0;
		return false;
	}
	drop_collected(m);
	/* What this host holds that the state lacks. */
	connreg_foreach(c->reg, local_not_seen, m);
	idmap_clear(&m->seen);

	m->have_epoch = mt.has_epoch;
	memcpy(m->epoch, mt.epoch, sizeof(m->epoch));
	m->last_seq = mt.seq;
	memcpy(m->last_id, mt.lastid, sizeof(m->last_id));
	m->need_resync = false;
	m->seq_ahead = false;
	atomic_fetch_add(&c->m_resyncs, 1);
	atomic_store(&c->m_stale, 0);
	atomic_store(&c->m_lag_records, 0);
	atomic_store(&c->m_last_sync_ms, cl_real_ms());
	dlog(LOG_LVL_NOTICE,
	     "cluster: view resynced (%s): %" PRIu64 " ids in the shared state, %" PRIu64
	     " of them this host's; at record %" PRIu64 " (%.0f ms)",
	     m->why, entries, mine, m->last_seq, (double)(cl_mono_ms() - t0));
	return true;
}

/* After a reconnect: resume where we were if Redis is the same, else resync. */
static void after_reconnect(struct mirror *m)
{
	struct meta mt;

	if (m->need_resync || read_meta(m, &mt) != 1)
		return;
	if (!mt.has_epoch || !m->have_epoch || strcmp(mt.epoch, m->epoch) != 0)
		resync_needed(m, "Redis came back with another feed epoch (restarted empty?)");
	else if (mt.seq < m->last_seq)
		resync_needed(m, "Redis came back behind this view (a failover lost writes)");
	else
		dlog(LOG_LVL_INFO, "cluster: resuming the feed after record %" PRIu64, m->last_seq);
}

/* ------------------------------------------------------------------ */
/* the thread                                                          */
/* ------------------------------------------------------------------ */

static void read_feed(struct mirror *m)
{
	struct cluster *c = m->c;
	char block[16];
	redisReply *rep, *s;

	snprintf(block, sizeof(block), "%d", CL_BLOCK_MS);
	rep = rc_cmd(&c->mir, "XREAD COUNT 512 BLOCK %s STREAMS %s %s", block, c->keys.k[K_FEED],
		     m->last_id);
	if (!rep)
		return;
	if (rep->type == REDIS_REPLY_NIL) {
		freeReplyObject(rep);
		m->next_check = 0; /* idle: check now */
		return;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 1 ||
	    (s = rep->element[0])->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
	    s->element[1]->type != REDIS_REPLY_ARRAY) {
		atomic_fetch_add(&c->m_redis_errors, 1);
		cl_log_limited(&m->rl_err, LOG_LVL_ERR, "cluster: XREAD %s: %s", c->keys.k[K_FEED],
			       rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
		freeReplyObject(rep);
		cl_sleep_ms(CL_BACKOFF_MAX_MS);
		return;
	}
	for (size_t i = 0; i < s->element[1]->elements; i++)
		if (!apply_entry(m, s->element[1]->element[i]))
			break;
	freeReplyObject(rep);
}

void *cl_mirror_main(void *arg)
{
	struct cluster *c = arg;
	struct mirror m = { .c = c, .need_resync = true };

	snprintf(m.why, sizeof(m.why), "start");
	strcpy(m.last_id, "0-0");
	m.names = calloc(NHOSTS, sizeof(*m.names));
	m.up = calloc(NHOSTS, 1);
	if (!m.names || !m.up) {
		dlog(LOG_LVL_ERR, "cluster: out of memory: no view");
		free(m.names);
		free(m.up);
		return NULL;
	}
	while (!atomic_load(&c->stop)) {
		uint64_t now;

		if (!rc_up(&c->mir)) {
			atomic_store(&c->m_stale, 1);
			if (!rc_connect(&c->mir)) {
				cl_sleep_ms(20);
				continue;
			}
			after_reconnect(&m);
		}
		if (m.need_resync) {
			now = cl_mono_ms();
			if (now < m.next_resync) {
				cl_sleep_ms((unsigned)(m.next_resync - now));
				continue;
			}
			m.next_resync = now + CL_RESYNC_GAP_MS;
			if (!resync(&m) && rc_up(&c->mir))
				cl_sleep_ms(CL_BACKOFF_MAX_MS);
			m.next_check = m.next_hosts = cl_mono_ms() + CL_CHECK_MS;
			continue;
		}
		read_feed(&m);
		now = cl_mono_ms();
		if (!m.need_resync && rc_up(&c->mir) && now >= m.next_check) {
			check_feed(&m);
			m.next_check = now + CL_CHECK_MS;
		}
		if (!m.need_resync && rc_up(&c->mir) && now >= m.next_hosts) {
			refresh_hosts(&m, true);
			m.next_hosts = now + CL_CHECK_MS;
		}
	}
	for (int n = 0; n < NHOSTS; n++)
		free(m.names[n]);
	free(m.names);
	free(m.up);
	free(m.ids);
	idmap_free(&m.seen);
	return NULL;
}
