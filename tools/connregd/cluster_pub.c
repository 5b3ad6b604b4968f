/*
 * cluster_pub.c: the publisher thread of connregd --cluster.
 *
 * It holds this host's lease (cluster.lua "acquire", "renew" every
 * lease/3), learns of local changes from the registry's change feed
 * (connreg_changes_drain every CL_PUB_BUSY_MS while changes flow, every
 * CL_PUB_PERIOD_MS when idle; then each dirty shard
 * re-read whole and compared with what it last published for that shard),
 * and publishes the differences in batches of up to CL_BATCH ("pub": one
 * feed record each). After taking a lease, reconnecting or an error, it
 * reconciles: the whole registry against what Redis holds for this host
 * (own:H). It also ends other hosts' expired leases ("expired", "reap")
 * and publishes again the ids the mirror asks for (cl_force).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_int.h"
#include "log.h"

enum { PUB_OK, PUB_CONN, PUB_LEASE, PUB_ERR };

/* What was last published for one shard: packed (u16 len, u64 transport, id). */
struct shard_cache {
	uint8_t *buf;
	uint32_t len;
};

#define ENT_HDR (sizeof(uint16_t) + sizeof(uint64_t))

struct pub {
	struct cluster *c;
	uint32_t nshards;
	struct shard_cache *cache;
	uint8_t *scr;		/* a shard re-read, packed as the cache */
	size_t scr_len, scr_cap;
	bool scr_oom;

	char *arena;		/* the batch: ids and transports, by offset */
	size_t alen, acap;
	size_t off[2 * CL_BATCH], sz[2 * CL_BATCH];
	int nargs;
	int err;		/* PUB_* of the last failed flush */
	uint64_t dirty;		/* shards drained, ever */

	struct idmap own;	/* reconcile: what Redis holds for this host */
	uint64_t put_n, del_n;	/* reconcile's counts */
	struct cl_ratelog rl_err, rl_held, rl_reap;
};

/* ------------------------------------------------------------------ */
/* the batch                                                           */
/* ------------------------------------------------------------------ */

static int flush(struct pub *p)
{
	struct cluster *c = p->c;
	const char *xv[2 * CL_BATCH];
	redisReply *rep;
	int n = p->nargs, rc = PUB_OK;

	if (n == 0)
		return PUB_OK;
	for (int i = 0; i < n; i++)
		xv[i] = p->arena + p->off[i];
	rep = cl_script(&c->pub, c->host_id, "pub", n, xv, p->sz);
	p->nargs = 0;
	p->alen = 0;
	if (!rep)
		return p->err = PUB_CONN;
	if (rep->type == REDIS_REPLY_ERROR) {
		if (strncmp(rep->str, "LEASE", 5) == 0) {
			rc = PUB_LEASE;
		} else {
			atomic_fetch_add(&c->m_redis_errors, 1);
			cl_log_limited(&p->rl_err, LOG_LVL_ERR,
				       "cluster: publishing failed: %s; will compare everything again "
				       "once it works", rep->str);
			rc = PUB_ERR;
		}
	} else if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
		   rep->element[0]->type == REDIS_REPLY_INTEGER &&
		   rep->element[1]->type == REDIS_REPLY_INTEGER) {
		if (rep->element[0]->integer > 0)
			atomic_fetch_add(&c->m_records_out, 1);
		atomic_fetch_add(&c->m_published, (uint64_t)rep->element[1]->integer);
	} else {
		atomic_fetch_add(&c->m_redis_errors, 1);
		cl_log_limited(&p->rl_err, LOG_LVL_ERR, "cluster: publishing: unexpected reply");
		rc = PUB_ERR;
	}
	freeReplyObject(rep);
	if (rc != PUB_OK)
		p->err = rc;
	return rc;
}

static int arena_add(struct pub *p, const void *b, size_t len)
{
	if (p->alen + len + 1 > p->acap) {
		size_t ncap = (p->alen + len + 1) * 2;
		char *na = realloc(p->arena, ncap);

		if (!na)
			return -1;
		p->arena = na;
		p->acap = ncap;
	}
	p->off[p->nargs] = p->alen;
	p->sz[p->nargs] = len;
	memcpy(p->arena + p->alen, b, len);
	p->alen += len;
	p->arena[p->alen++] = '\0';
	p->nargs++;
	return 0;
}

/* Add one change (del: the id is gone); flushes a full batch. PUB_*. */
static int add(struct pub *p, const void *id, size_t len, bool del, uint64_t t)
{
	char num[24];
	int k = del ? 0 : snprintf(num, sizeof(num), "%" PRIu64, t);

	if (arena_add(p, id, len) != 0 || arena_add(p, num, (size_t)k) != 0) {
		dlog(LOG_LVL_ERR, "cluster: out of memory");
		p->nargs = 0;
		p->alen = 0;
		return p->err = PUB_ERR;
	}
	if (p->nargs >= 2 * CL_BATCH)
		return flush(p);
	return PUB_OK;
}

/* ------------------------------------------------------------------ */
/* shards                                                              */
/* ------------------------------------------------------------------ */

static int collect(const void *id, size_t len, uint64_t t, void *arg)
{
	struct pub *p = arg;
	uint16_t l = (uint16_t)len;

	if (p->scr_len + ENT_HDR + len > p->scr_cap) {
		size_t ncap = (p->scr_len + ENT_HDR + len) * 2 + 256;
		uint8_t *n = realloc(p->scr, ncap);

		if (!n) {
			p->scr_oom = true;
			return 1;
		}
		p->scr = n;
		p->scr_cap = ncap;
	}
	memcpy(p->scr + p->scr_len, &l, sizeof(l));
	memcpy(p->scr + p->scr_len + sizeof(l), &t, sizeof(t));
	memcpy(p->scr + p->scr_len + ENT_HDR, id, len);
	p->scr_len += ENT_HDR + len;
	return 0;
}

static int reread(struct pub *p, uint32_t s)
{
	int rc;

	p->scr_len = 0;
	p->scr_oom = false;
	rc = connreg_foreach_shard(p->c->reg, s, collect, p);
	if (rc || p->scr_oom) {
		dlog(LOG_LVL_ERR, "cluster: cannot read shard %" PRIu32 " of the registry: %s", s,
		     p->scr_oom ? "out of memory" : connreg_strerror(rc));
		return -1;
	}
	return 0;
}

/* Find (id, len) in a packed buffer; its transport in *t. */
static bool find(const uint8_t *buf, size_t blen, const uint8_t *id, size_t len, uint64_t *t)
{
	for (size_t o = 0; o < blen;) {
		uint16_t l;

		memcpy(&l, buf + o, sizeof(l));
		if (l == len && memcmp(buf + o + ENT_HDR, id, len) == 0) {
			memcpy(t, buf + o + sizeof(l), sizeof(*t));
			return true;
		}
		o += ENT_HDR + l;
	}
	return false;
}

/* The scratch becomes the shard's cache. */
static int keep(struct pub *p, uint32_t s)
{
	struct shard_cache *sc = &p->cache[s];
	uint8_t *b = NULL;

	if (p->scr_len) {
		b = malloc(p->scr_len);
		if (!b)
			return -1;
		memcpy(b, p->scr, p->scr_len);
	}
	free(sc->buf);
	sc->buf = b;
	sc->len = (uint32_t)p->scr_len;
	return 0;
}

/* A dirty shard: re-read it, publish what differs from its cache. */
static int on_dirty(uint32_t s, void *arg)
{
	struct pub *p = arg;
	struct shard_cache *sc = &p->cache[s];
	uint64_t t;

	p->dirty++;
	if (reread(p, s) != 0) {
		p->err = PUB_ERR;
		return 1;
	}
	for (size_t o = 0; o < p->scr_len;) {
		uint16_t l;
		uint64_t nt;

		memcpy(&l, p->scr + o, sizeof(l));
		memcpy(&nt, p->scr + o + sizeof(l), sizeof(nt));
		if ((!find(sc->buf, sc->len, p->scr + o + ENT_HDR, l, &t) || t != nt) &&
		    add(p, p->scr + o + ENT_HDR, l, false, nt) != PUB_OK)
			return 1;
		o += ENT_HDR + l;
	}
	for (size_t o = 0; o < sc->len;) {
		uint16_t l;

		memcpy(&l, sc->buf + o, sizeof(l));
		if (!find(p->scr, p->scr_len, sc->buf + o + ENT_HDR, l, &t) &&
		    add(p, sc->buf + o + ENT_HDR, l, true, 0) != PUB_OK)
			return 1;
		o += ENT_HDR + l;
	}
	if (keep(p, s) != 0) {
		p->err = PUB_ERR;
		return 1;
	}
	return 0;
}

static int publish_changes(struct pub *p)
{
	int rc;

	p->err = PUB_OK;
	rc = connreg_changes_drain(p->c->reg, on_dirty, p);
	if (rc < 0) {
		dlog(LOG_LVL_ERR, "cluster: cannot drain the registry's changes: %s",
		     connreg_strerror(rc));
		return PUB_ERR;
	}
	if (rc > 0 || p->err != PUB_OK)
		return p->err != PUB_OK ? p->err : PUB_ERR;
	return flush(p);
}

/* ------------------------------------------------------------------ */
/* reconcile: the whole registry against own:H                         */
/* ------------------------------------------------------------------ */

static int discard(uint32_t s, void *arg)
{
	(void)s;
	(void)arg;
	return 0;
}

/* own:H into p->own (mark 2: a value that is not a transport). PUB_*. */
static int load_own(struct pub *p)
{
	struct cluster *c = p->c;
	char cursor[32] = "0";

	idmap_clear(&p->own);
	do {
		redisReply *rep = rc_cmd(&c->pub, "HSCAN %s %s COUNT 1000", c->keys.k[K_OWN], cursor);
		redisReply *cur, *arr;

		if (!rep)
			return PUB_CONN;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
		    (cur = rep->element[0])->type != REDIS_REPLY_STRING ||
		    (arr = rep->element[1])->type != REDIS_REPLY_ARRAY || cur->len >= 31) {
			atomic_fetch_add(&c->m_redis_errors, 1);
			cl_log_limited(&p->rl_err, LOG_LVL_ERR, "cluster: HSCAN %s: %s",
				       c->keys.k[K_OWN],
				       rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
			freeReplyObject(rep);
			return PUB_ERR;
		}
		memcpy(cursor, cur->str, (size_t)cur->len + 1);
		for (size_t i = 0; i + 1 < arr->elements; i += 2) {
			redisReply *k = arr->element[i], *v = arr->element[i + 1];
			struct idmap_ent *e;

			if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
				continue;
			e = idmap_put(&p->own, k->str, (size_t)k->len);
			if (!e) {
				freeReplyObject(rep);
				dlog(LOG_LVL_ERR, "cluster: out of memory");
				return PUB_ERR;
			}
			if (cl_parse_u64(v->str, (size_t)v->len, &e->val) != 0)
				e->mark = 2;
		}
		freeReplyObject(rep);
	} while (strcmp(cursor, "0") != 0);
	return PUB_OK;
}

static int reconcile(struct pub *p)
{
	struct cluster *c = p->c;
	int rc;

	connreg_changes_drain(c->reg, discard, NULL);
	rc = load_own(p);
	if (rc != PUB_OK)
		return rc;
	p->put_n = p->del_n = 0;
	for (uint32_t s = 0; s < p->nshards; s++) {
		if (reread(p, s) != 0)
			return PUB_ERR;
		for (size_t o = 0; o < p->scr_len;) {
			uint16_t l;
			uint64_t t;
			struct idmap_ent *e;

			memcpy(&l, p->scr + o, sizeof(l));
			memcpy(&t, p->scr + o + sizeof(l), sizeof(t));
			e = idmap_get(&p->own, p->scr + o + ENT_HDR, l);
			if (!e || e->mark == 2 || e->val != t) {
				p->put_n++;
				if (add(p, p->scr + o + ENT_HDR, l, false, t) != PUB_OK)
					return p->err;
			}
			if (e)
				e->mark = 1;
			o += ENT_HDR + l;
		}
		if (keep(p, s) != 0)
			return PUB_ERR;
	}
	for (size_t i = 0; i < p->own.cap; i++) {
		struct idmap_ent *e = &p->own.t[i];

		if (e->id && e->mark != 1) {
			p->del_n++;
			if (add(p, e->id, e->len, true, 0) != PUB_OK)
				return p->err;
		}
	}
	rc = flush(p);
	idmap_clear(&p->own);
	if (rc == PUB_OK) {
		atomic_fetch_add(&c->m_reconciles, 1);
		dlog(LOG_LVL_INFO,
		     "cluster: compared the registry with Redis: %" PRIu64 " id%s published, %" PRIu64
		     " removed",
		     p->put_n, p->put_n == 1 ? "" : "s", p->del_n);
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* ids the mirror asks for                                             */
/* ------------------------------------------------------------------ */

static int publish_forced(struct pub *p)
{
	struct cluster *c = p->c;
	struct idmap q;
	int rc = PUB_OK;

	if (!atomic_load(&c->fq_pending))
		return PUB_OK;
	pthread_mutex_lock(&c->fq_mu);
	q = c->fq;
	memset(&c->fq, 0, sizeof(c->fq));
	atomic_store(&c->fq_pending, false);
	pthread_mutex_unlock(&c->fq_mu);
	for (size_t i = 0; i < q.cap && rc == PUB_OK; i++) {
		struct idmap_ent *e = &q.t[i];
		uint64_t t;
		int g;

		if (!e->id)
			continue;
		g = connreg_get_transport(c->reg, e->id, e->len, &t);
		if (g == 0)
			rc = add(p, e->id, e->len, false, t);
		else if (g == -ENOENT)
			rc = add(p, e->id, e->len, true, 0);
	}
	if (rc == PUB_OK)
		rc = flush(p);
	if (rc != PUB_OK) {
		/* Ask again later (a reconcile does not cover these: see docs/cluster.md). */
		for (size_t i = 0; i < q.cap; i++)
			if (q.t[i].id)
				cl_force(c, q.t[i].id, q.t[i].len);
	}
	idmap_free(&q);
	return rc;
}

/* ------------------------------------------------------------------ */
/* leases                                                              */
/* ------------------------------------------------------------------ */

/* 1 held, 0 held by another token, -1 failed (connection or error). */
static int acquire(struct pub *p)
{
	struct cluster *c = p->c;
	redisReply *rep = cl_script(&c->pub, c->host_id, "acquire", 0, NULL, NULL);
	long long r, n;

	if (!rep)
		return -1;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 2 ||
	    rep->element[0]->type != REDIS_REPLY_INTEGER ||
	    rep->element[1]->type != REDIS_REPLY_INTEGER) {
		atomic_fetch_add(&c->m_redis_errors, 1);
		cl_log_limited(&p->rl_err, LOG_LVL_ERR, "cluster: taking the lease failed: %s",
			       rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
		freeReplyObject(rep);
		return -1;
	}
	r = rep->element[0]->integer;
	n = rep->element[1]->integer;
	freeReplyObject(rep);
	atomic_store(&c->m_host_num, (uint64_t)n);
	if (r == 0) {
		cl_log_limited(&p->rl_held, LOG_LVL_WARNING,
			       "cluster: the lease of host %s is held by another token (this host's "
			       "connregd was killed without handing it over, or another connregd "
			       "uses --host-id %s); waiting for it to expire",
			       c->host_id, c->host_id);
		return 0;
	}
	p->rl_held.last_ms = 0;
	atomic_fetch_add(&c->m_lease_acquired, 1);
	atomic_store(&c->m_lease_held, 1);
	dlog(LOG_LVL_NOTICE, "cluster: lease taken as host %s (number %lld)%s", c->host_id, n,
	     r == 2 ? ": a new lease, every id is asserted"
	     : r == 3 ? ": handed over by a connregd that stopped cleanly" : "");
	return 1;
}

/* 1 renewed, 0 lost, -1 failed. */
static int renew(struct pub *p)
{
	struct cluster *c = p->c;
	redisReply *rep = cl_script(&c->pub, c->host_id, "renew", 0, NULL, NULL);
	int rc = -1;

	if (!rep)
		return -1;
	if (rep->type == REDIS_REPLY_INTEGER) {
		rc = rep->integer == 1;
		if (rc)
			atomic_fetch_add(&c->m_lease_renewals, 1);
	} else {
		atomic_fetch_add(&c->m_redis_errors, 1);
		cl_log_limited(&p->rl_err, LOG_LVL_ERR, "cluster: renewing the lease failed: %s",
			       rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
	}
	freeReplyObject(rep);
	return rc;
}

static void lost(struct pub *p, const char *how)
{
	struct cluster *c = p->c;

	atomic_fetch_add(&c->m_lease_losses, 1);
	atomic_store(&c->m_lease_held, 0);
	dlog(LOG_LVL_WARNING,
	     "cluster: host %s lost its lease (%s): its ids were dropped from the cluster; "
	     "taking a new lease and asserting them again",
	     c->host_id, how);
}

static bool valid_host_id(const char *s, size_t len)
{
	static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";

	if (len == 0 || len > DOPT_HOST_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!s[i] || !strchr(ok, s[i]))
			return false;
	return true;
}

/* End the expired leases of other hosts. */
static void reap_expired(struct pub *p)
{
	struct cluster *c = p->c;
	redisReply *rep = cl_script(&c->pub, c->host_id, "expired", 0, NULL, NULL);

	if (!rep)
		return;
	if (rep->type != REDIS_REPLY_ARRAY) {
		atomic_fetch_add(&c->m_redis_errors, 1);
		cl_log_limited(&p->rl_reap, LOG_LVL_ERR, "cluster: listing expired hosts failed: %s",
			       rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
		freeReplyObject(rep);
		return;
	}
	for (size_t i = 0; i < rep->elements; i++) {
		redisReply *h = rep->element[i], *r;
		char host[DOPT_HOST_ID_MAX + 1];

		if (h->type != REDIS_REPLY_STRING)
			continue;
		if (!valid_host_id(h->str, (size_t)h->len)) {
			atomic_fetch_add(&c->m_garbage, 1);
			cl_log_limited(&p->rl_reap, LOG_LVL_WARNING,
				       "cluster: %s holds a member that is no host id (%zu bytes); "
				       "removing it", c->keys.k[K_HOSTS], h->len);
			r = rc_cmd(&c->pub, "ZREM %s %b", c->keys.k[K_HOSTS], h->str, (size_t)h->len);
			if (r)
				freeReplyObject(r);
			continue;
		}
		memcpy(host, h->str, (size_t)h->len + 1);
		if (strcmp(host, c->host_id) == 0)
			continue; /* our own deadline passed: the renewal finds out */
		r = cl_script(&c->pub, host, "reap", 0, NULL, NULL);
		if (!r)
			break;
		if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
			atomic_fetch_add(&c->m_hosts_reaped, 1);
			dlog(LOG_LVL_NOTICE,
			     "cluster: host %s's lease expired: dropped its %lld id%s from the cluster",
			     host, r->integer, r->integer == 1 ? "" : "s");
		} else if (r->type == REDIS_REPLY_ERROR) {
			atomic_fetch_add(&c->m_redis_errors, 1);
			cl_log_limited(&p->rl_reap, LOG_LVL_ERR,
				       "cluster: ending host %s's lease failed: %s", host, r->str);
		}
		freeReplyObject(r);
	}
	freeReplyObject(rep);
}

static void release(struct pub *p)
{
	struct cluster *c = p->c;
	redisReply *rep = cl_script(&c->pub, c->host_id, "release", 0, NULL, NULL);

	if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
		dlog(LOG_LVL_INFO, "cluster: lease handed over for %" PRIu32
				   " ms (a connregd started again as host %s takes it)",
		     c->lease_ms, c->host_id);
	if (rep)
		freeReplyObject(rep);
}

/* ------------------------------------------------------------------ */
/* the thread                                                          */
/* ------------------------------------------------------------------ */

void *cl_publisher_main(void *arg)
{
	struct cluster *c = arg;
	struct pub p = { .c = c };
	uint32_t third = c->lease_ms / 3, reap_every = c->lease_ms / 5 < 200 ? c->lease_ms / 5 : 200;
	uint64_t next_renew = 0, next_acquire = 0, next_reap = 0, pause_until = 0;
	uint64_t last_dirty = 0, busy_until = 0;
	bool held = false, need_reconcile = true;

	p.nshards = connreg_shards(c->reg);
	p.cache = calloc(p.nshards ? p.nshards : 1, sizeof(*p.cache));
	if (!p.cache) {
		dlog(LOG_LVL_ERR, "cluster: out of memory: not publishing");
		return NULL;
	}
	while (!atomic_load(&c->stop)) {
		uint64_t now = cl_mono_ms();
		int rc;

		if (!rc_up(&c->pub)) {
			if (!rc_connect(&c->pub)) {
				cl_sleep_ms(CL_PUB_PERIOD_MS * 4);
				continue;
			}
			/* Whatever happened meanwhile: check the lease, compare everything. */
			next_renew = 0;
			need_reconcile = true;
		}
		if (!held) {
			if (now < next_acquire) {
				cl_sleep_ms(CL_PUB_PERIOD_MS);
				continue;
			}
			rc = acquire(&p);
			if (rc != 1) {
				next_acquire = now + (rc == 0 ? (third < 100 ? third : 100) : 1000);
				continue;
			}
			held = true;
			need_reconcile = true;
			next_renew = now + third;
		}
		if (now >= next_renew || atomic_exchange(&c->lease_check_now, false)) {
			rc = renew(&p);
			if (rc == 0) {
				lost(&p, "found at renewal");
				held = false;
				continue;
			}
			next_renew = now + (rc == 1 ? third : 100);
		}
		if (now >= pause_until) {
			rc = need_reconcile ? reconcile(&p) : publish_changes(&p);
			if (rc == PUB_OK)
				need_reconcile = false;
			if (rc == PUB_OK)
				rc = publish_forced(&p);
			if (rc == PUB_LEASE) {
				lost(&p, "refused a publish");
				held = false;
				need_reconcile = true;
				continue;
			}
			if (rc != PUB_OK) {
				need_reconcile = true;
				if (rc == PUB_ERR)
					pause_until = cl_mono_ms() + 1000;
			}
		}
		if (now >= next_reap) {
			reap_expired(&p);
			next_reap = now + reap_every;
		}
		if (p.dirty != last_dirty) {
			last_dirty = p.dirty;
			busy_until = now + CL_PUB_BUSY_FOR_MS;
		}
		cl_sleep_ms(now < busy_until ? CL_PUB_BUSY_MS : CL_PUB_PERIOD_MS);
	}
	if (held && rc_up(&c->pub))
		release(&p);
	atomic_store(&c->m_lease_held, 0);
	for (uint32_t s = 0; s < p.nshards; s++)
		free(p.cache[s].buf);
	free(p.cache);
	free(p.scr);
	free(p.arena);
	idmap_free(&p.own);
	return NULL;
}
