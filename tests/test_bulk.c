/*
 * connreg_get_transport_bulk: results equal single lookups for any mix of
 * present, absent and invalid ids and any n; argument errors; and every
 * value it returns while another process writes is one written for that id.
 */
#include "ext_common.h"

TestSuite(bulk, .fini = t_cleanup_names, .timeout = 60);

#define NIDS 10000

struct idset {
	uint8_t (*buf)[T_ID_LEN];
	const void **ids;
	size_t *lens;
	uint64_t *out;
	int *rc;
	size_t n;
};

static void idset_alloc(struct idset *s, size_t n)
{
	s->n = n;
	s->buf = calloc(n ? n : 1, T_ID_LEN);
	s->ids = calloc(n ? n : 1, sizeof *s->ids);
	s->lens = calloc(n ? n : 1, sizeof *s->lens);
	s->out = calloc(n ? n : 1, sizeof *s->out);
	s->rc = calloc(n ? n : 1, sizeof *s->rc);
	cr_assert(s->buf && s->ids && s->lens && s->out && s->rc);
}

static void idset_free(struct idset *s)
{
	free(s->buf);
	free(s->ids);
	free(s->lens);
	free(s->out);
	free(s->rc);
}

static uint64_t val_of(uint64_t k)
{
	return k * 0x9E3779B97F4A7C15ull ^ 0x5555;
}

/* Compare a bulk call over ids[0..n) with single lookups of the same ids. */
static void assert_bulk_matches_single(connreg_t *r, size_t n, const void *const ids[],
				       const size_t lens[])
{
	uint64_t *out = malloc((n ? n : 1) * sizeof *out);
	int *rc = malloc((n ? n : 1) * sizeof *rc);
	cr_assert(out && rc);
	for (size_t i = 0; i < n; i++) {
		out[i] = 0xdeadbeef;
		rc[i] = 12345;
	}
	int brc = connreg_get_transport_bulk(r, n, ids, lens, out, rc);
	cr_assert_eq(brc, 0, "bulk(n=%zu) = %d (%s)", n, brc, connreg_strerror(brc));
	for (size_t i = 0; i < n; i++) {
		uint64_t v = 0xfeedface;
		int src = connreg_get_transport(r, ids[i], lens[i], &v);
		cr_assert_eq(rc[i], src, "n=%zu, id #%zu (len %zu): bulk rc %d, single rc %d", n, i,
			     lens[i], rc[i], src);
		if (src == 0)
			cr_assert_eq(out[i], v,
				     "n=%zu, id #%zu: bulk value %#" PRIx64 ", single %#" PRIx64, n,
				     i, out[i], v);
	}
	free(out);
	free(rc);
}

Test(bulk, matches_single_lookups_for_mixed_present_and_absent_ids)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "bulk-mix", NIDS, 0, 0, 0);
	struct idset s;
	idset_alloc(&s, NIDS);
	size_t order[NIDS];
	for (size_t k = 0; k < NIDS; k++)
		order[k] = k;
	uint64_t seed = 42;
	x_shuffle(order, NIDS, &seed);
	/* half registered (even k), in random order */
	for (size_t i = 0; i < NIDS; i++) {
		size_t k = order[i];
		if (k % 2 == 0) {
			uint8_t id[T_ID_LEN];
			cr_assert_eq(connreg_register(r, id, t_id(id, 1, k), val_of(k)), 0);
		}
	}
	/* ask for all of them, in another random order */
	x_shuffle(order, NIDS, &seed);
	for (size_t i = 0; i < NIDS; i++) {
		s.lens[i] = t_id(s.buf[i], 1, order[i]);
		s.ids[i] = s.buf[i];
	}
	size_t n = NIDS - 3; /* not a multiple of 16 */
	int brc = connreg_get_transport_bulk(r, n, s.ids, s.lens, s.out, s.rc);
	cr_assert_eq(brc, 0);
	size_t hits = 0;
	for (size_t i = 0; i < n; i++) {
		size_t k = order[i];
		if (k % 2 == 0) {
			cr_assert_eq(s.rc[i], 0, "id %zu registered but bulk rc %d", k, s.rc[i]);
			cr_assert_eq(s.out[i], val_of(k), "id %zu: %#" PRIx64 ", want %#" PRIx64, k,
				     s.out[i], val_of(k));
			hits++;
		} else {
			cr_assert_eq(s.rc[i], -ENOENT, "id %zu absent but bulk rc %d", k, s.rc[i]);
		}
	}
	cr_assert_gt(hits, n / 3);
	/* and equal to single lookups for many sizes and offsets */
	size_t sizes[] = { 0, 1, 2, 15, 16, 17, 31, 33, 100, 1000, 4097, NIDS };
	for (unsigned j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
		size_t off = sizes[j] == NIDS ? 0 : (size_t)(t_rand(&seed) % (NIDS - sizes[j]));
		assert_bulk_matches_single(r, sizes[j], s.ids + off, s.lens + off);
	}
	idset_free(&s);
	connreg_close(r);
}

Test(bulk, n_zero_returns_0_and_touches_nothing)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "bulk-zero", 16, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "a", 1, 1), 0);
	const void *ids[1] = { "a" };
	size_t lens[1] = { 1 };
	uint64_t out[1] = { 77 };
	int rc[1] = { 88 };
	cr_assert_eq(connreg_get_transport_bulk(r, 0, ids, lens, out, rc), 0);
	cr_assert_eq(out[0], 77);
	cr_assert_eq(rc[0], 88);
	connreg_close(r);
}

Test(bulk, n_one_present_and_absent)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "bulk-one", 16, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "a", 1, UINT64_MAX), 0);
	cr_assert_eq(connreg_register(r, "z", 1, 0), 0);
	const void *ids[1] = { "a" };
	size_t lens[1] = { 1 };
	uint64_t out[1] = { 0 };
	int rc[1] = { 1 };
	cr_assert_eq(connreg_get_transport_bulk(r, 1, ids, lens, out, rc), 0);
	cr_assert_eq(rc[0], 0);
	cr_assert_eq(out[0], UINT64_MAX);
	ids[0] = "z";
	out[0] = 5;
	cr_assert_eq(connreg_get_transport_bulk(r, 1, ids, lens, out, rc), 0);
	cr_assert_eq(rc[0], 0);
	cr_assert_eq(out[0], 0);
	ids[0] = "b";
	cr_assert_eq(connreg_get_transport_bulk(r, 1, ids, lens, out, rc), 0);
	cr_assert_eq(rc[0], -ENOENT);
	connreg_close(r);
}

Test(bulk, bad_ids_get_per_id_errors_while_others_succeed)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "bulk-bad", 64, 8, 0, 0);
	const char *good[] = { "a", "bb", "12345678", "\0\0", "x" };
	size_t good_len[] = { 1, 2, 8, 2, 1 };
	for (int i = 0; i < 4; i++)
		cr_assert_eq(connreg_register(r, good[i], good_len[i], 100 + (uint64_t)i), 0);

	/* 40 entries: a pattern of good / bad, crossing a 16-id batch boundary */
	enum { N = 40 };
	const void *ids[N];
	size_t lens[N];
	uint64_t out[N];
	int rc[N], want_rc[N];
	uint64_t want_v[N];
	for (int i = 0; i < N; i++) {
		int g = i % 5;
		switch (i % 8) {
		case 1:
			ids[i] = NULL, lens[i] = 1, want_rc[i] = -EINVAL;
			break;
		case 3:
			ids[i] = "a", lens[i] = 0, want_rc[i] = -EINVAL;
			break;
		case 5:
			ids[i] = "123456789", lens[i] = 9, want_rc[i] = -ENAMETOOLONG;
			break;
		case 6:
			ids[i] = "123456789", lens[i] = (size_t)1 << 40, want_rc[i] = -ENAMETOOLONG;
			break;
		default:
			ids[i] = good[g], lens[i] = good_len[g];
			want_rc[i] = g < 4 ? 0 : -ENOENT;
			want_v[i] = 100 + (uint64_t)g;
			break;
		}
		rc[i] = 12345;
		out[i] = 0;
	}
	cr_assert_eq(connreg_get_transport_bulk(r, N, ids, lens, out, rc), 0);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(rc[i], want_rc[i], "entry %d: rc %d, want %d", i, rc[i], want_rc[i]);
		if (want_rc[i] == 0)
			cr_assert_eq(out[i], want_v[i], "entry %d: value %" PRIu64 ", want %" PRIu64,
				     i, out[i], want_v[i]);
	}
	connreg_close(r);
}

Test(bulk, null_arrays_or_handle_return_EINVAL)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "bulk-null", 16, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "a", 1, 1), 0);
	const void *ids[2] = { "a", "a" };
	size_t lens[2] = { 1, 1 };
	uint64_t out[2];
	int rc[2];
	cr_assert_eq(connreg_get_transport_bulk(NULL, 2, ids, lens, out, rc), -EINVAL);
	cr_assert_eq(connreg_get_transport_bulk(r, 2, NULL, lens, out, rc), -EINVAL);
	cr_assert_eq(connreg_get_transport_bulk(r, 2, ids, NULL, out, rc), -EINVAL);
	cr_assert_eq(connreg_get_transport_bulk(r, 2, ids, lens, NULL, rc), -EINVAL);
	cr_assert_eq(connreg_get_transport_bulk(r, 2, ids, lens, out, NULL), -EINVAL);
	cr_assert_eq(connreg_get_transport_bulk(NULL, 0, ids, lens, out, rc), -EINVAL);
	connreg_close(r);
}

static int bulk_echild_child(void *arg)
{
	const void *ids[1] = { "a" };
	size_t lens[1] = { 1 };
	uint64_t out[1];
	int rc[1];
	return connreg_get_transport_bulk(arg, 1, ids, lens, out, rc) == -ECHILD ? 0 : 1;
}

Test(bulk, parent_handle_in_forked_child_returns_ECHILD)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "bulk-echild", 16, 0, 0, 0);
	cr_assert_eq(connreg_register(r, "a", 1, 1), 0);
	pid_t pid = t_fork(bulk_echild_child, r);
	cr_assert_eq(t_wait(pid, 10000), 0, "bulk on the parent's handle in a child was not -ECHILD");
	connreg_close(r);
}

Test(bulk, duplicates_binary_ids_and_key_max_lengths)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "bulk-bin", 512, 40, 0, 0);
	/* ids of every length 1..40, bytes including 0 and 0xff */
	static uint8_t keys[40][40];
	const void *ids[200];
	size_t lens[200];
	for (int l = 1; l <= 40; l++) {
		for (int j = 0; j < l; j++)
			keys[l - 1][j] = (uint8_t)((j * 37 + l) % 3 == 0 ? 0 : 0xff - j);
		if (l % 3 != 0)
			cr_assert_eq(connreg_register(r, keys[l - 1], (size_t)l, (uint64_t)l << 20), 0);
	}
	for (int i = 0; i < 200; i++) {
		int l = 1 + (i * 7) % 40;
		ids[i] = keys[l - 1];
		lens[i] = (size_t)l;
	}
	/* the same id many times in one call */
	for (int i = 150; i < 200; i++) {
		ids[i] = keys[4];
		lens[i] = 5;
	}
	assert_bulk_matches_single(r, 200, ids, lens);
	connreg_close(r);
}

Test(bulk, matches_single_lookups_in_a_full_and_churned_registry)
{
	char name[T_NAME_BUF];
	enum { CAP = 2000 };
	/* a full registry: ids sit beyond their home buckets, probes are long */
	connreg_t *r = x_make(name, "bulk-full", CAP, 0, 0, 0);
	struct idset s;
	idset_alloc(&s, 3 * CAP);
	for (size_t k = 0; k < CAP; k++) {
		uint8_t id[T_ID_LEN];
		cr_assert_eq(connreg_register(r, id, t_id(id, 2, k), val_of(k)), 0);
	}
	for (size_t i = 0; i < 3 * CAP; i++) {
		s.lens[i] = t_id(s.buf[i], 2, i);
		s.ids[i] = s.buf[i];
	}
	assert_bulk_matches_single(r, 3 * CAP, s.ids, s.lens);

	/* churn: tombstones, reinserts elsewhere */
	uint64_t seed = 7;
	bool live[3 * CAP];
	for (size_t k = 0; k < 3 * CAP; k++)
		live[k] = k < CAP;
	size_t nlive = CAP;
	for (int op = 0; op < 20000; op++) {
		size_t k = (size_t)(t_rand(&seed) % (3 * CAP));
		if (live[k]) {
			cr_assert_eq(connreg_unregister(r, s.ids[k], s.lens[k]), 0);
			live[k] = false;
			nlive--;
		} else if (nlive < CAP) {
			int rc = connreg_register(r, s.ids[k], s.lens[k], val_of(k) + (uint64_t)op);
			cr_assert_eq(rc, 0, "register: %d (%s)", rc, connreg_strerror(rc));
			live[k] = true;
			nlive++;
		}
	}
	assert_bulk_matches_single(r, 3 * CAP, s.ids, s.lens);
	int brc = connreg_get_transport_bulk(r, 3 * CAP, s.ids, s.lens, s.out, s.rc);
	cr_assert_eq(brc, 0);
	for (size_t k = 0; k < 3 * CAP; k++)
		cr_assert_eq(s.rc[k], live[k] ? 0 : -ENOENT, "id %zu: rc %d, live %d", k, s.rc[k],
			     live[k]);
	idset_free(&s);
	connreg_close(r);
}

/* ------------------------------------------------------------------ */
/* bulk lookups while another process writes                           */
/* ------------------------------------------------------------------ */

#define CC_STABLE 512 /* ids 0..511: always registered, values updated */
#define CC_CHURN 512  /* ids 512..1023: registered and unregistered */
#define CC_IDS (CC_STABLE + CC_CHURN)
#define CC_MS 800

struct cc_shared {
	t_report_t rep;
	atomic_uint ready;
	atomic_int done;
	uint64_t writes;
};

struct cc_args {
	const char *name;
	struct cc_shared *sh;
};

static int cc_writer(void *p)
{
	struct cc_args *a = p;
	struct cc_shared *sh = a->sh;
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(&sh->rep, rc == 0, goto out, "open: %d", rc);
	T_CHECK(&sh->rep, t_barrier(&sh->ready, 2, 10000) == 0, goto out, "barrier");
	static uint32_t seq[CC_IDS];
	static bool live[CC_IDS];
	for (uint32_t k = 0; k < CC_STABLE; k++)
		live[k] = true;
	uint64_t seed = 99, end = t_now_ms() + CC_MS, n = 0;
	while ((n & 63) || t_now_ms() < end) {
		uint64_t x = t_rand(&seed);
		uint32_t k = (uint32_t)(x % CC_IDS);
		uint8_t id[T_ID_LEN];
		size_t len = t_id(id, 3, k);
		uint64_t v = t_enc(1, k, ++seq[k]);
		if (k >= CC_STABLE && live[k] && (x >> 40) % 3 == 0) {
			rc = connreg_unregister(r, id, len);
			live[k] = false;
		} else if (live[k] && (x >> 40) % 3 == 1) {
			rc = connreg_cas_transport(r, id, len, t_enc(1, k, seq[k] - 1), v, NULL);
		} else if (live[k]) {
			rc = connreg_update_transport(r, id, len, v);
		} else {
			rc = connreg_register(r, id, len, v);
			live[k] = true;
		}
		T_CHECK(&sh->rep, rc == 0, goto out, "writer op on %u: %d (%s)", k, rc,
			connreg_strerror(rc));
		n++;
	}
	sh->writes = n;
out:
	atomic_store(&sh->done, 1);
	connreg_close(r);
	return atomic_load(&sh->rep.nfail) ? 1 : 0;
}

Test(bulk, values_returned_during_writes_were_written_for_that_id)
{
	char name[T_NAME_BUF];
	connreg_t *r = x_make(name, "bulk-conc", 2 * CC_IDS, 0, 0, 0);
	for (uint32_t k = 0; k < CC_STABLE; k++) {
		uint8_t id[T_ID_LEN];
		cr_assert_eq(connreg_register(r, id, t_id(id, 3, k), t_enc(1, k, 0)), 0);
	}
	struct cc_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	struct cc_args a = { name, sh };
	pid_t pid = t_fork(cc_writer, &a);
	cr_assert_gt(pid, 0);

	/* ask for every id, in a shuffled order, plus absent ones of another namespace */
	enum { NQ = CC_IDS + 100 };
	struct idset s;
	idset_alloc(&s, NQ);
	size_t order[CC_IDS];
	for (size_t k = 0; k < CC_IDS; k++)
		order[k] = k;
	uint64_t seed = 5;
	x_shuffle(order, CC_IDS, &seed);
	for (size_t i = 0; i < CC_IDS; i++) {
		s.lens[i] = t_id(s.buf[i], 3, order[i]);
		s.ids[i] = s.buf[i];
	}
	for (size_t i = CC_IDS; i < NQ; i++) {
		s.lens[i] = t_id(s.buf[i], 4, i);
		s.ids[i] = s.buf[i];
	}
	static uint32_t last_seq[CC_IDS];
	cr_assert_eq(t_barrier(&sh->ready, 2, 10000), 0);
	unsigned calls = 0;
	uint64_t hard_end = t_now_ms() + 20000;
	while (!atomic_load(&sh->done) && t_now_ms() < hard_end) {
		int brc = connreg_get_transport_bulk(r, NQ, s.ids, s.lens, s.out, s.rc);
		cr_assert_eq(brc, 0, "bulk = %d", brc);
		calls++;
		for (size_t i = 0; i < NQ; i++) {
			if (i >= CC_IDS) {
				cr_assert_eq(s.rc[i], -ENOENT, "never-registered id got rc %d", s.rc[i]);
				continue;
			}
			uint32_t k = (uint32_t)order[i];
			if (k < CC_STABLE)
				cr_assert_eq(s.rc[i], 0, "stable id %u: rc %d", k, s.rc[i]);
			else
				cr_assert(s.rc[i] == 0 || s.rc[i] == -ENOENT, "churned id %u: rc %d", k,
					  s.rc[i]);
			if (s.rc[i] != 0)
				continue;
			uint32_t w, id, sq;
			cr_assert(t_dec(s.out[i], &w, &id, &sq),
				  "id %u: value %#" PRIx64 " was never written (torn?)", k, s.out[i]);
			cr_assert_eq(w, 1);
			cr_assert_eq(id, k, "id %u returned the value of id %u", k, id);
			/* one writer per id: its values only move forward */
			cr_assert_geq(sq, last_seq[k], "id %u went back from seq %u to %u", k,
				      last_seq[k], sq);
			last_seq[k] = sq;
		}
	}
	X_ASSERT_CHILD_OK(pid, 30000, &sh->rep);
	T_ASSERT_REPORT_OK(&sh->rep);
	cr_assert_gt(calls, 2u, "only %u bulk calls overlapped the writer", calls);
	cr_log_info("bulk calls %u, writer ops %" PRIu64, calls, sh->writes);
	X_ASSERT_CHECK_CLEAN(r);
	idset_free(&s);
	connreg_close(r);
}
