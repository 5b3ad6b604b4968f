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

/* A copy of the registry's header: its secret and geometry, to compute homes and tags. */
static void pb_header(const char *name, struct cr_header *h)
{
	int fd = shm_open(name, O_RDONLY, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, h, sizeof(*h), 0), (ssize_t)sizeof(*h));
	close(fd);
}

/* n ids homed at bucket 0 of the registry `name`, written as "p-<k>". */
static void pb_ids_at_home0(const char *name, char ids[][16], unsigned n)
{
	struct cr_header hdr, *h = &hdr;
	unsigned found = 0;

	pb_header(name, h);

	for (int k = 0; found < n && k < 1000000; k++) {
		char id[16];

		snprintf(id, sizeof(id), "p-%d", k);
		if (pb_home(h->secret, h->geo.n_buckets, id) == 0)
			memcpy(ids[found++], id, sizeof(id));
	}
	cr_assert_eq(found, n);
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

/*
 * Two ids whose LIVE meta words are equal (same length, same 24-bit tag)
 * and whose homes are equal sit side by side in one bucket: each lookup
 * must still return its own id's transport, whichever record it is in (the
 * scan compares the candidate's key, then the other record's), and a
 * third id with the same word but other bytes must miss.
 */
struct pb_cand {
	uint32_t tag;
	uint32_t k;
};

static int pb_cand_cmp(const void *x, const void *y)
{
	const struct pb_cand *a = x, *b = y;

	return a->tag < b->tag ? -1 : a->tag > b->tag ? 1 : (a->k > b->k) - (a->k < b->k);
}

/* Three 16-byte ids homed at bucket 0 with one 24-bit tag: sort candidates by tag. */
static void pb_find_twins(const char *name, char out[3][17])
{
	enum { NCAND = 600000 };	/* three of 2^24 tags alike: ~120k needed */
	struct cr_header hdr, *h = &hdr;
	struct pb_cand *c = calloc(NCAND, sizeof(*c));
	size_t n = 0;
	int found = 0;

	pb_header(name, h);
	cr_assert_not_null(c);
	for (uint32_t k = 1; n < NCAND; k++) {
		char id[17];
		snprintf(id, sizeof id, "twin-%011u", k);	/* 16 bytes */
		uint64_t hv = XXH3_64bits_withSecret(id, 16, h->secret, CR_SECRET_SIZE);

		if ((uint32_t)(((hv & 0xffffffffu) * h->geo.n_buckets) >> 32) == 0)
			c[n++] = (struct pb_cand){ (uint32_t)(hv >> 40), k };
	}
	qsort(c, n, sizeof(*c), pb_cand_cmp);
	for (size_t i = 0; i + 2 < n && !found; i++) {
		if (c[i].tag == c[i + 2].tag) {
			for (int j = 0; j < 3; j++)
				snprintf(out[j], 17, "twin-%011u", c[i + (size_t)j].k);
			found = 1;
		}
	}
	free(c);
	cr_assert(found, "no three ids with one tag among %zu candidates", n);
}

Test(probe, ids_with_equal_meta_words_are_told_apart_by_key)
{
	char name[T_NAME_BUF], ids[3][17];
	connreg_config_t cfg = t_cfg(2, 16, 4);	/* 2 buckets: one home in two */
	connreg_t *r;
	uint64_t v;

	t_name(name, "twins");
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	pb_find_twins(name, ids);
	for (int order = 0; order < 2; order++) {
		/* both orders: the wanted id in record 0, then in record 1 */
		const char *a = ids[order], *b = ids[1 - order];

		cr_assert_eq(connreg_register(r, a, 16, 100), 0);
		cr_assert_eq(connreg_register(r, b, 16, 200), 0);
		cr_assert_eq(connreg_get_transport(r, a, 16, &v), 0);
		cr_assert_eq(v, 100u, "%s (registered first) got %" PRIu64, a, v);
		cr_assert_eq(connreg_get_transport(r, b, 16, &v), 0);
		cr_assert_eq(v, 200u, "%s (registered second) got %" PRIu64, b, v);
		cr_assert_eq(connreg_get_transport(r, ids[2], 16, &v), -ENOENT,
			     "an id with the same meta word but other bytes was found");
		cr_assert_eq(connreg_check(r, NULL, NULL), 0);
		cr_assert_eq(connreg_unregister(r, a, 16), 0);
		cr_assert_eq(connreg_unregister(r, b, 16), 0);
	}
	connreg_close(r);
}

/*
 * The fast lookup takes the probe's second step itself (the bucket after
 * a full home) and hands anything further, and a home in the last bucket
 * (whose next is bucket 0), to the full probe. Each way must find a
 * displaced id and end a miss at the bound or at an EMPTY record, for ids
 * of both fast copies (1..7 and 8..16 bytes).
 */

/* n ids of len bytes (3..16) homed at bucket `home`: "s-" and the last len-2 digits of k. */
static void pb_ids_at(const struct cr_header *h, uint32_t home, size_t len, unsigned n,
		      unsigned *k, char ids[][17])
{
	for (unsigned found = 0; found < n; (*k)++) {
		char id[40];

		cr_assert_lt(*k, 10000000u, "no id homed at %u", home);
		snprintf(id, sizeof id, "s-%030u", *k);
		memmove(id + 2, id + 32 - (len - 2), len - 2 + 1);	/* the last len-2 digits */
		uint64_t hv = XXH3_64bits_withSecret(id, len, h->secret, CR_SECRET_SIZE);

		if ((uint32_t)(((hv & 0xffffffffu) * h->geo.n_buckets) >> 32) == home)
			memcpy(ids[found++], id, len + 1);
	}
}

/* A single lookup and a bulk one (the same first two steps, cr_probe_short) agree with want. */
static void pb_expect(connreg_t *r, const char *id, size_t len, int rc, uint64_t want)
{
	const void *ids[1] = { id };
	size_t lens[1] = { len };
	uint64_t v = 0, bv = 0;
	int brc = 1;

	cr_assert_eq(connreg_get_transport(r, id, len, &v), rc, "%.*s: rc", (int)len, id);
	if (rc == 0)
		cr_assert_eq(v, want, "%.*s: got %" PRIu64 ", want %" PRIu64, (int)len, id, v, want);
	cr_assert_eq(connreg_get_transport_bulk(r, 1, ids, lens, &bv, &brc), 0);
	cr_assert_eq(brc, rc, "%.*s: bulk rc %d", (int)len, id, brc);
	if (rc == 0)
		cr_assert_eq(bv, want, "%.*s: bulk got %" PRIu64, (int)len, id, bv);
}

static void pb_past_home(size_t len)
{
	char name[T_NAME_BUF], a[4][17], b[3][17], l[4][17];
	connreg_config_t cfg = t_cfg(16, 16, 4);	/* 16 buckets */
	struct cr_header hdr;
	unsigned k = 0;
	uint32_t last;
	connreg_t *r;

	t_name(name, "past");
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	pb_header(name, &hdr);
	last = hdr.geo.n_buckets - 1;
	pb_ids_at(&hdr, 0, len, 4, &k, a);	/* a[3]: never registered */
	pb_ids_at(&hdr, 1, len, 3, &k, b);
	pb_ids_at(&hdr, last, len, 4, &k, l);	/* l[3]: never registered */

	/* a[2] lands in bucket 1 (bound 1), beside one EMPTY record. */
	for (int i = 0; i < 3; i++)
		cr_assert_eq(connreg_register(r, a[i], len, 10 + (uint64_t)i), 0);
	pb_expect(r, a[2], len, 0, 12);
	pb_expect(r, a[3], len, -ENOENT, 0);	/* ends at bucket 1's EMPTY record */

	/* Bucket 1 fills (a[2], b[0]); b[1] and b[2] go on: a miss homed at 0 ends at its bound. */
	for (int i = 0; i < 3; i++)
		cr_assert_eq(connreg_register(r, b[i], len, 20 + (uint64_t)i), 0);
	pb_expect(r, a[3], len, -ENOENT, 0);
	pb_expect(r, b[1], len, 0, 21);
	pb_expect(r, b[2], len, 0, 22);

	/* a[2] moves two buckets on (bound 2): past the fast lookup's second step. */
	cr_assert_eq(connreg_unregister(r, a[2], len), 0);
	cr_assert_eq(connreg_register(r, a[2], len, 32), 0);
	pb_expect(r, a[2], len, 0, 32);
	pb_expect(r, a[3], len, -ENOENT, 0);

	/* Homed at the last bucket: the third wraps to bucket 0 or past it. */
	for (int i = 0; i < 3; i++)
		cr_assert_eq(connreg_register(r, l[i], len, 40 + (uint64_t)i), 0);
	for (int i = 0; i < 3; i++)
		pb_expect(r, l[i], len, 0, 40 + (uint64_t)i);
	pb_expect(r, l[3], len, -ENOENT, 0);
	for (int i = 0; i < 2; i++)
		pb_expect(r, a[i], len, 0, 10 + (uint64_t)i);
	cr_assert_eq(connreg_check(r, NULL, NULL), 0);
	connreg_close(r);
}

Test(probe, ids_past_a_full_home_are_found_and_misses_end_at_the_bound)
{
	pb_past_home(16);
	pb_past_home(8);
	pb_past_home(5);
}
