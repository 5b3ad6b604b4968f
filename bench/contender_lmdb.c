/*
 * contender_lmdb.c: LMDB on tmpfs (an env directory under /dev/shm), two
 * ways of reading:
 *   lmdb_txn    mdb_txn_begin(MDB_RDONLY) + mdb_get + mdb_txn_abort per lookup
 *   lmdb_renew  one read txn per process, mdb_txn_renew + mdb_get +
 *               mdb_txn_reset per lookup (env opened with MDB_NOTLS, so the
 *               reset txn keeps its reader slot)
 * Both see the latest committed data at every lookup, like the other
 * contenders. Writers: one write txn per update (MDB_NOSYNC |
 * MDB_NOMETASYNC; tmpfs has nothing to sync anyway). Readers and writer are
 * processes, each with its own mdb_env_open; the parent closes its env
 * after populating, so no env crosses a fork().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loops.h"

struct lm_bench {
	char dir[128];
	size_t mapsize;
};

struct lm_handle {
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *rtxn;		/* lmdb_renew: the reused read txn (reset) */
};

#define LM_ENV_FLAGS (MDB_NOSYNC | MDB_NOMETASYNC)

static inline bool lm_get(MDB_txn *txn, MDB_dbi dbi, const uint8_t *id, uint64_t *val)
{
	MDB_val k = { .mv_size = ID_LEN, .mv_data = (void *)id }, d;

	if (mdb_get(txn, dbi, &k, &d) != 0 || d.mv_size != sizeof(*val))
		return false;
	memcpy(val, d.mv_data, sizeof(*val));
	return true;
}

/* ---- lmdb_txn: a fresh read txn per lookup ---- */

static bool lmt_lookup(void *h, const uint8_t *id, uint64_t *val)
{
	struct lm_handle *l = h;
	MDB_txn *txn;
	bool found;

	if (mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn) != 0)
		return false;
	found = lm_get(txn, l->dbi, id, val);
	mdb_txn_abort(txn);
	return found;
}

static unsigned lmt_bulk(void *h, const uint8_t *ids, unsigned n, uint64_t *vals)
{
	struct lm_handle *l = h;
	unsigned hits = 0;
	MDB_txn *txn;

	if (mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn) != 0)
		return 0;
	for (unsigned i = 0; i < n; i++)
		hits += lm_get(txn, l->dbi, ids + i * ID_LEN, &vals[i]);
	mdb_txn_abort(txn);
	return hits;
}

/* ---- lmdb_renew: one reused read txn ---- */

static bool lmr_lookup(void *h, const uint8_t *id, uint64_t *val)
{
	struct lm_handle *l = h;
	bool found;

	if (mdb_txn_renew(l->rtxn) != 0)
		return false;
	found = lm_get(l->rtxn, l->dbi, id, val);
	mdb_txn_reset(l->rtxn);
	return found;
}

static unsigned lmr_bulk(void *h, const uint8_t *ids, unsigned n, uint64_t *vals)
{
	struct lm_handle *l = h;
	unsigned hits = 0;

	if (mdb_txn_renew(l->rtxn) != 0)
		return 0;
	for (unsigned i = 0; i < n; i++)
		hits += lm_get(l->rtxn, l->dbi, ids + i * ID_LEN, &vals[i]);
	mdb_txn_reset(l->rtxn);
	return hits;
}

/* ---- writers: one write txn per call ---- */

static int lm_put(void *h, const uint8_t *id, uint64_t val)
{
	struct lm_handle *l = h;
	MDB_val k = { .mv_size = ID_LEN, .mv_data = (void *)id };
	MDB_val d = { .mv_size = sizeof(val), .mv_data = &val };
	MDB_txn *txn;
	int rc = mdb_txn_begin(l->env, NULL, 0, &txn);

	if (rc)
		return rc;
	rc = mdb_put(txn, l->dbi, &k, &d, 0);
	if (rc) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

static int lm_del(void *h, const uint8_t *id)
{
	struct lm_handle *l = h;
	MDB_val k = { .mv_size = ID_LEN, .mv_data = (void *)id };
	MDB_txn *txn;
	int rc = mdb_txn_begin(l->env, NULL, 0, &txn);

	if (rc)
		return rc;
	rc = mdb_del(txn, l->dbi, &k, NULL);
	if (rc && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

static const struct bench_ops lmt_ops = {
	.lookup = lmt_lookup,
	.bulk = lmt_bulk,
	.update = lm_put,
	.insert = lm_put,
	.remove = lm_del,
};

static const struct bench_ops lmr_ops = {
	.lookup = lmr_lookup,
	.bulk = lmr_bulk,
	.update = lm_put,
	.insert = lm_put,
	.remove = lm_del,
};

/* ---- lifecycle ---- */

static int lm_open(const struct lm_bench *b, unsigned flags, struct lm_handle *l)
{
	MDB_txn *txn;
	int rc;

	memset(l, 0, sizeof(*l));
	rc = mdb_env_create(&l->env);
	if (rc)
		return rc;
	mdb_env_set_mapsize(l->env, b->mapsize);
	mdb_env_set_maxreaders(l->env, 256);
	rc = mdb_env_open(l->env, b->dir, LM_ENV_FLAGS | flags, 0600);
	if (!rc)
		rc = mdb_txn_begin(l->env, NULL, 0, &txn);
	if (!rc) {
		rc = mdb_dbi_open(txn, NULL, 0, &l->dbi);
		if (rc)
			mdb_txn_abort(txn);
		else
			rc = mdb_txn_commit(txn);
	}
	if (rc) {
		mdb_env_close(l->env);
		l->env = NULL;
	}
	return rc;
}

static void lm_remove_files(const char *dir, bool rmdir_too)
{
	char p[160];

	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/lock.mdb", dir);
	unlink(p);
	if (rmdir_too)
		rmdir(dir);
}

static int lm_create(struct instance *in)
{
	struct lm_bench *b = calloc(1, sizeof(*b));
	struct lm_handle l;
	MDB_txn *txn;
	int rc;

	if (!b)
		return -ENOMEM;
	snprintf(b->dir, sizeof(b->dir), "/dev/shm/connreg-bench-%s", in->tag);
	/* Sparse on tmpfs: only pages LMDB touches take memory. */
	b->mapsize = (size_t)in->n * 512 + (64u << 20);
	if (mkdir(b->dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		fprintf(stderr, "bench: lmdb: mkdir %s: %s\n", b->dir, strerror(errno));
		free(b);
		return rc;
	}
	lm_remove_files(b->dir, false);	/* a leftover of a killed run */
	rc = lm_open(b, 0, &l);
	if (!rc) {
		rc = mdb_txn_begin(l.env, NULL, 0, &txn);
		for (uint64_t i = 0; i < in->n && !rc; i++) {
			uint64_t v = key_transport(i);
			const uint8_t *id = key_in(in->ks, POOL_HIT, i);
			MDB_val k = { .mv_size = ID_LEN, .mv_data = (void *)id };
			MDB_val d = { .mv_size = sizeof(v), .mv_data = &v };

			rc = mdb_put(txn, l.dbi, &k, &d, 0);
			if (rc)
				mdb_txn_abort(txn);
		}
		if (!rc)
			rc = mdb_txn_commit(txn);
		mdb_env_close(l.env);
	}
	if (rc) {
		fprintf(stderr, "bench: lmdb populate: %s\n", mdb_strerror(rc));
		lm_remove_files(b->dir, true);
		free(b);
		return rc > 0 ? -EIO : rc;
	}
	in->priv = b;
	return 0;
}

static void lm_destroy(struct instance *in)
{
	struct lm_bench *b = in->priv;

	if (!b)
		return;
	lm_remove_files(b->dir, true);
	free(b);
	in->priv = NULL;
}

static int lm_attach_flags(struct instance *in, void **h, unsigned flags, bool renew)
{
	struct lm_handle *l = malloc(sizeof(*l));
	int rc;

	if (!l)
		return -ENOMEM;
	rc = lm_open(in->priv, flags, l);
	if (!rc && renew) {
		rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &l->rtxn);
		if (!rc)
			mdb_txn_reset(l->rtxn);
		else
			mdb_env_close(l->env);
	}
	if (rc) {
		fprintf(stderr, "bench: lmdb attach: %s\n", mdb_strerror(rc));
		free(l);
		return rc > 0 ? -EIO : rc;
	}
	*h = l;
	return 0;
}

static int lmt_attach(struct instance *in, void **h)
{
	return lm_attach_flags(in, h, 0, false);
}

static int lmr_attach(struct instance *in, void **h)
{
	return lm_attach_flags(in, h, MDB_NOTLS, true);
}

static void lm_detach(struct instance *in, void *h)
{
	struct lm_handle *l = h;

	(void)in;
	if (l->rtxn)
		mdb_txn_abort(l->rtxn);
	mdb_env_close(l->env);
	free(l);
}

static int lmt_run(struct instance *in, void *h, struct worker *w)
{
	(void)in;
	return BENCH_RUN(w, h, &lmt_ops);
}

static int lmr_run(struct instance *in, void *h, struct worker *w)
{
	(void)in;
	return BENCH_RUN(w, h, &lmr_ops);
}

const struct contender contender_lmdb_txn = {
	.name = "lmdb_txn",
	.what = "LMDB on /dev/shm, mdb_txn_begin/mdb_get/mdb_txn_abort per lookup; processes",
	.processes = true,
	.bulk_how = "64 mdb_get in one read txn",
	.write_how = "one write txn (mdb_put / mdb_del) per call, MDB_NOSYNC",
	.create = lm_create,
	.destroy = lm_destroy,
	.attach = lmt_attach,
	.detach = lm_detach,
	.run = lmt_run,
};

const struct contender contender_lmdb_renew = {
	.name = "lmdb_renew",
	.what = "LMDB on /dev/shm, one reused read txn: mdb_txn_renew/mdb_get/mdb_txn_reset "
		"per lookup; processes",
	.processes = true,
	.bulk_how = "64 mdb_get in one renewed read txn",
	.write_how = "one write txn (mdb_put / mdb_del) per call, MDB_NOSYNC",
	.create = lm_create,
	.destroy = lm_destroy,
	.attach = lmr_attach,
	.detach = lm_detach,
	.run = lmr_run,
};
