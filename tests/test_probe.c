/*
 * test_probe.c: the per-home probe bound follows the ids that need it: it
 * rises when an id homed at a full bucket lands further on, and falls back
 * when a later insert at that home finds the displaced ids gone, so misses
 * stay one bucket long after churn. Every live id stays within its home's
 * bound (INV-4, docs/design.md §4).
 */
#include <criterion/criterion.h>
#include <fcntl.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common.h"
#include "layout.h"

static void pb_fini(void)
{
	t_cleanup_names();
}

TestSuite(probe, .fini = pb_fini, .timeout = 60);

/* Home bucket of an id, computed from the segment's own secret and size. */
static uint32_t pb_home(const uint8_t *secret, uint32_t n_buckets, const char *id)
{
	uint64_t h = XXH3_64bits_withSecret(id, strlen(id), secret, CR_SECRET_SIZE);

	return (uint32_t)(((h & 0xffffffffu) * n_buckets) >> 32);
}

/* n ids homed at bucket 0 of the registry `name`, written as "p-<k>". */
static void pb_ids_at_home0(const char *name, char ids[][16], unsigned n)
{
	int fd = shm_open(name, O_RDONLY, 0);
	struct stat sb;

	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &sb), 0);
	uint8_t *base = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(base, MAP_FAILED);
	const struct cr_header *h = (const struct cr_header *)base;
	unsigned found = 0;

	for (int k = 0; found < n && k < 1000000; k++) {
		char id[16];

		snprintf(id, sizeof(id), "p-%d", k);
		if (pb_home(h->secret, h->geo.n_buckets, id) == 0)
			memcpy(ids[found++], id, sizeof(id));
	}
	cr_assert_eq(found, n);
	munmap(base, (size_t)sb.st_size);
	close(fd);
}

static uint32_t pb_max_probe(connreg_t *r)
{
	connreg_stats_t st = { .size = sizeof(st) };

	cr_assert_eq(connreg_stats(r, &st), 0);
	return st.max_probe;
}

/* Ids 0..D-1 fill bucket 0; id D is displaced one bucket on; id D+1 is spare. */
#define D CR_BUCKET_SLOTS

/* Fill bucket 0 and one more, so the bound rises. */
static connreg_t *pb_setup(char *name, char ids[][16])
{
	connreg_config_t cfg = t_cfg(14, 16, 4);
	connreg_t *r;

	t_name(name, "probe");
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	pb_ids_at_home0(name, ids, D + 2);
	cr_assert_eq(pb_max_probe(r), 1);
	for (unsigned k = 0; k <= D; k++)
		cr_assert_eq(connreg_register(r, ids[k], strlen(ids[k]), (uint64_t)k), 0);
	/* Bucket 0 holds D records: the last id had to go one bucket further. */
	cr_assert_eq(pb_max_probe(r), 2);
	return r;
}

/*
 * Free a home position for the spare id: remove id 0. Its position is
 * reusable only after a grace period, so the spare's first insert lands
 * further out (and runs one); removed and inserted again, it lands at home.
 */
static void pb_spare_at_home(connreg_t *r, char ids[][16])
{
	cr_assert_eq(connreg_unregister(r, ids[0], strlen(ids[0])), 0);
	cr_assert_eq(connreg_register(r, ids[D + 1], strlen(ids[D + 1]), D + 1), 0);
	cr_assert_eq(connreg_unregister(r, ids[D + 1], strlen(ids[D + 1])), 0);
	cr_assert_eq(connreg_register(r, ids[D + 1], strlen(ids[D + 1]), D + 1), 0);
}

Test(probe, bound_falls_back_when_the_displaced_id_is_gone)
{
	char name[T_NAME_BUF], ids[D + 2][16];
	connreg_t *r = pb_setup(name, ids);
	uint64_t v;

	cr_assert_eq(connreg_unregister(r, ids[D], strlen(ids[D])), 0);	/* the displaced one */
	cr_assert_eq(pb_max_probe(r), 2, "removals do not touch the bound");
	pb_spare_at_home(r, ids);
	cr_assert_eq(pb_max_probe(r), 1, "the bound did not fall back");
	for (unsigned k = 1; k < D; k++) {
		cr_assert_eq(connreg_get_transport(r, ids[k], strlen(ids[k]), &v), 0);
		cr_assert_eq(v, (uint64_t)k);
	}
	cr_assert_eq(connreg_get_transport(r, ids[D + 1], strlen(ids[D + 1]), &v), 0);
	cr_assert_eq(connreg_check(r, NULL, NULL), 0);
	connreg_close(r);
}

Test(probe, bound_stays_while_a_displaced_id_is_live)
{
	char name[T_NAME_BUF], ids[D + 2][16];
	connreg_t *r = pb_setup(name, ids);
	uint64_t v;

	pb_spare_at_home(r, ids);
	/* id D still sits one bucket past its home: the bound must cover it. */
	cr_assert_eq(pb_max_probe(r), 2);
	cr_assert_eq(connreg_get_transport(r, ids[D], strlen(ids[D]), &v), 0);
	cr_assert_eq(v, (uint64_t)D);
	cr_assert_eq(connreg_check(r, NULL, NULL), 0);
	connreg_close(r);
}
