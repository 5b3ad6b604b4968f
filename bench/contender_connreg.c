/*
 * contender_connreg.c: connreg through its public API only.
 *
 * The parent creates the registry (capacity n plus --headroom, key_max 16,
 * 64 reader slots) and registers
 * the hit ids; every worker is a forked process that opens it by name
 * (connreg_open) and closes it at the end, as a real client would.
 *
 * Built twice: into connreg-bench itself against the static archive
 * (contender "connreg"), and with BENCH_CONNREG_SO into the module
 * libconnreg-bench-so.so against libconnreg.so (contender "connreg_so"), so
 * that the same run compares the two (bench/CMakeLists.txt). The archive
 * build also defines "connreg_2m": the same, with the segment in
 * $CONNREG_BENCH_HUGE_DIR (a tmpfs mounted huge=always, or hugetlbfs), so
 * that one run compares 2 MiB pages with /dev/shm's 4 KiB ones.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connreg.h"
#include "loops.h"

struct cr_bench {
	char name[96];
	connreg_t *reg;		/* the parent's handle */
};

static bool crb_lookup(void *h, const uint8_t *id, uint64_t *val)
{
	return connreg_get_transport(h, id, ID_LEN, val) == 0;
}

static unsigned crb_bulk(void *h, const uint8_t *ids, unsigned n, uint64_t *vals)
{
	static const size_t lens[MAX_BATCH] = {
		[0 ... MAX_BATCH - 1] = ID_LEN,
	};
	const void *ptrs[MAX_BATCH];
	int rc[MAX_BATCH];
	unsigned hits = 0;

	for (unsigned i = 0; i < n; i++)
		ptrs[i] = ids + i * ID_LEN;
	if (connreg_get_transport_bulk(h, n, ptrs, lens, vals, rc) != 0)
		return 0;
	for (unsigned i = 0; i < n; i++)
		hits += rc[i] == 0;
	return hits;
}

static int crb_update(void *h, const uint8_t *id, uint64_t val)
{
	return connreg_update_transport(h, id, ID_LEN, val);
}

static int crb_insert(void *h, const uint8_t *id, uint64_t val)
{
	return connreg_register(h, id, ID_LEN, val);
}

static int crb_remove(void *h, const uint8_t *id)
{
	return connreg_unregister(h, id, ID_LEN);
}

static const struct bench_ops crb_ops = {
	.lookup = crb_lookup,
	.bulk = crb_bulk,
	.update = crb_update,
	.insert = crb_insert,
	.remove = crb_remove,
};

static int crb_create(struct instance *in)
{
	struct cr_bench *b = calloc(1, sizeof(*b));
	connreg_config_t cfg;
	int rc;

	if (!b)
		return -ENOMEM;
	snprintf(b->name, sizeof(b->name), "/connreg-bench-%s", in->tag);
	connreg_unlink(b->name);	/* a leftover of a killed run */
	memset(&cfg, 0, sizeof(cfg));
	cfg.capacity = in->capacity;
	cfg.key_max = ID_LEN;
	cfg.max_threads = 64;
	rc = connreg_create(b->name, &cfg, &b->reg);
	if (rc) {
		fprintf(stderr, "bench: connreg_create(%s): %s\n", b->name, connreg_strerror(rc));
		free(b);
		return rc;
	}
	for (uint64_t i = 0; i < in->n; i++) {
		const uint8_t *id = key_in(in->ks, POOL_HIT, i);

		rc = connreg_register(b->reg, id, ID_LEN, key_transport(i));
		if (rc) {
			fprintf(stderr, "bench: connreg_register #%llu: %s\n",
				(unsigned long long)i, connreg_strerror(rc));
			connreg_close(b->reg);
			connreg_unlink(b->name);
			free(b);
			return rc;
		}
	}
	in->priv = b;
	return 0;
}

static void crb_destroy(struct instance *in)
{
	struct cr_bench *b = in->priv;

	if (!b)
		return;
	connreg_close(b->reg);
	connreg_unlink(b->name);
	free(b);
	in->priv = NULL;
}

static int crb_attach(struct instance *in, void **h)
{
	struct cr_bench *b = in->priv;
	connreg_t *reg;
	int rc = connreg_open(b->name, &reg);

	if (rc)
		return rc;
	*h = reg;
	return 0;
}

static void crb_detach(struct instance *in, void *h)
{
	(void)in;
	connreg_close(h);
}

static bool crb_epoch(struct instance *in, uint64_t *epoch)
{
	struct cr_bench *b = in->priv;
	connreg_stats_t st = { .size = sizeof(st) };

	if (connreg_stats(b->reg, &st) != 0)
		return false;
	*epoch = st.epoch;
	return true;
}

static int crb_run(struct instance *in, void *h, struct worker *w)
{
	(void)in;
	return BENCH_RUN(w, h, &crb_ops);
}

#ifdef BENCH_CONNREG_SO
#define CRB_SYMBOL contender_connreg_so
#define CRB_NAME "connreg_so"
#define CRB_LINKED "libconnreg.so (calls through the PLT, initial-exec TLS)"
#else
#define CRB_SYMBOL contender_connreg
#define CRB_NAME "connreg"
#define CRB_LINKED "the static libconnreg.a"
#endif

const struct contender CRB_SYMBOL = {
	.name = CRB_NAME,
	.what = "connreg public API, linked from " CRB_LINKED "; readers and writer are "
		"processes that connreg_open by name",
	.processes = true,
	.bulk_how = "connreg_get_transport_bulk, 64 ids per call",
	.write_how = "connreg_update_transport / connreg_unregister + connreg_register",
	.create = crb_create,
	.destroy = crb_destroy,
	.attach = crb_attach,
	.detach = crb_detach,
	.run = crb_run,
	.epoch = crb_epoch,
};

#ifndef BENCH_CONNREG_SO
/* connreg_2m: the library finds the directory in CONNREG_SHM_DIR, set around each call. */
static const char *crb_huge_dir(void)
{
	const char *d = getenv("CONNREG_BENCH_HUGE_DIR");

	return d && *d ? d : NULL;
}

static const char *crb_huge_unavailable(void)
{
	return crb_huge_dir() ? NULL
			      : "set CONNREG_BENCH_HUGE_DIR to a huge=always tmpfs or a hugetlbfs "
				"mount (README: Memory)";
}

static char *crb_dir_enter(void)
{
	const char *old = getenv("CONNREG_SHM_DIR");
	char *saved = old ? strdup(old) : NULL;

	setenv("CONNREG_SHM_DIR", crb_huge_dir(), 1);
	return saved;
}

static void crb_dir_leave(char *saved)
{
	if (saved)
		setenv("CONNREG_SHM_DIR", saved, 1);
	else
		unsetenv("CONNREG_SHM_DIR");
	free(saved);
}

static int crb_huge_create(struct instance *in)
{
	char *saved = crb_dir_enter();
	int rc = crb_create(in);

	crb_dir_leave(saved);
	return rc;
}

static void crb_huge_destroy(struct instance *in)
{
	char *saved = crb_dir_enter();

	crb_destroy(in);
	crb_dir_leave(saved);
}

static int crb_huge_attach(struct instance *in, void **h)
{
	char *saved = crb_dir_enter();
	int rc = crb_attach(in, h);

	crb_dir_leave(saved);
	return rc;
}

const struct contender contender_connreg_2m = {
	.name = "connreg_2m",
	.what = "connreg as above (static archive), the segment in $CONNREG_BENCH_HUGE_DIR "
		"(2 MiB pages)",
	.processes = true,
	.bulk_how = "connreg_get_transport_bulk, 64 ids per call",
	.write_how = "connreg_update_transport / connreg_unregister + connreg_register",
	.create = crb_huge_create,
	.destroy = crb_huge_destroy,
	.attach = crb_huge_attach,
	.detach = crb_detach,
	.run = crb_run,
	.epoch = crb_epoch,
	.unavailable = crb_huge_unavailable,
};
#endif
