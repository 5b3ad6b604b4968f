/*
 * Readers and writers in separate processes, each with its own handle
 * opened by name: values are never torn or misattributed, each reader sees
 * each id's sequence go forward only, and the final state matches what the
 * writers last wrote (INV-2, INV-3). Also: a killed or stopped process
 * never blocks others.
 */
#include "common.h"

TestSuite(multiproc, .fini = t_cleanup_names, .timeout = 120);

#define MP_W 2        /* writer processes */
#define MP_R 3        /* reader processes */
#define MP_N 256      /* ids per writer */
#define MP_IDS (MP_W * MP_N)
#define MP_WRITE_MS 1500

struct mp_shared {
	t_report_t rep;
	atomic_int writers_done;
	uint32_t final_seq[MP_IDS];
	uint8_t final_live[MP_IDS];
	uint32_t max_seen[MP_R][MP_IDS];
	uint64_t writes[MP_W], unregs[MP_W], again[MP_W];
	uint64_t reads[MP_R], hits[MP_R];
};

struct mp_args {
	const char *name;
	void *sh; /* the test's shared area */
	t_gate_t *gate;
	int idx;
};

static size_t mp_id(uint8_t *buf, uint32_t g)
{
	return t_id(buf, 0, g);
}

static int mp_writer(void *p)
{
	struct mp_args *a = p;
	struct mp_shared *sh = a->sh;
	t_report_t *rep = &sh->rep;
	uint32_t seq[MP_N];
	uint8_t live[MP_N];
	memset(seq, 0, sizeof seq);
	memset(live, 0, sizeof live);
	uint8_t id[T_ID_LEN];
	uint64_t seed = 0x1234 + (uint64_t)a->idx * 77;

	t_gate_wait(a->gate);
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(rep, rc == 0, return 1, "writer %d open: %d", a->idx, rc);

	uint64_t end = t_now_ms() + MP_WRITE_MS;
	uint64_t ops = 0;
	while ((ops & 63) || t_now_ms() < end) {
		uint64_t x = t_rand(&seed);
		uint32_t k = (uint32_t)(x % MP_N);
		uint32_t g = (uint32_t)a->idx * MP_N + k;
		size_t len = mp_id(id, g);
		uint32_t s = ++seq[k];
		uint64_t v = t_enc((uint32_t)a->idx, g, s);
		unsigned op = (unsigned)((x >> 32) % 100);
		if (!live[k]) {
			rc = T_RETRY_EAGAIN(connreg_register(r, id, len, v), &sh->again[a->idx]);
			T_CHECK(rep, rc == 0, return 1, "writer %d register new %u: %d (%s)", a->idx, g,
				rc, connreg_strerror(rc));
			live[k] = 1;
		} else if (op < 5) {
			rc = connreg_unregister(r, id, len);
			T_CHECK(rep, rc == 0, return 1, "writer %d unregister %u: %d", a->idx, g, rc);
			live[k] = 0;
			sh->unregs[a->idx]++;
		} else if (op < 35) {
			rc = T_RETRY_EAGAIN(connreg_register(r, id, len, v), &sh->again[a->idx]);
			T_CHECK(rep, rc == 0, return 1, "writer %d register(update) %u: %d (%s)", a->idx,
				g, rc, connreg_strerror(rc));
		} else {
			rc = T_RETRY_EAGAIN(connreg_update_transport(r, id, len, v), &sh->again[a->idx]);
			T_CHECK(rep, rc == 0, return 1, "writer %d update %u: %d (%s)", a->idx, g, rc,
				connreg_strerror(rc));
		}
		ops++;
	}
	for (uint32_t k = 0; k < MP_N; k++) {
		sh->final_seq[a->idx * MP_N + k] = seq[k];
		sh->final_live[a->idx * MP_N + k] = live[k];
	}
	sh->writes[a->idx] = ops;
	connreg_close(r);
	return 0;
}

static int mp_reader(void *p)
{
	struct mp_args *a = p;
	struct mp_shared *sh = a->sh;
	t_report_t *rep = &sh->rep;
	static uint32_t last[MP_IDS];
	memset(last, 0, sizeof last);
	uint8_t id[T_ID_LEN];
	uint64_t seed = 0x9876 + (uint64_t)a->idx * 31;

	t_gate_wait(a->gate);
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(rep, rc == 0, return 1, "reader %d open: %d", a->idx, rc);

	uint64_t reads = 0, hits = 0;
	uint64_t hard_end = t_now_ms() + 30000;
	for (;;) {
		if ((reads & 255) == 0 && (atomic_load(&sh->writers_done) || t_now_ms() > hard_end))
			break;
		uint32_t g = (uint32_t)(t_rand(&seed) % MP_IDS);
		uint64_t v = 0;
		rc = connreg_get_transport(r, id, mp_id(id, g), &v);
		reads++;
		if (rc == -ENOENT)
			continue;
		T_CHECK(rep, rc == 0, return 1, "reader %d get %u: %d (%s)", a->idx, g, rc,
			connreg_strerror(rc));
		hits++;
		uint32_t w, gi, s;
		T_CHECK(rep, t_dec(v, &w, &gi, &s), return 1,
			"reader %d: id %u has malformed value %#" PRIx64, a->idx, g, v);
		T_CHECK(rep, gi == g && w == g / MP_N, return 1,
			"reader %d: id %u has value of writer %u id %u (seq %u)", a->idx, g, w, gi, s);
		T_CHECK(rep, s >= last[g], return 1,
			"reader %d: id %u went back from seq %u to %u", a->idx, g, last[g], s);
		last[g] = s;
	}
	/* one last full sweep after the writers finished */
	for (uint32_t g = 0; g < MP_IDS; g++) {
		uint64_t v = 0;
		rc = connreg_get_transport(r, id, mp_id(id, g), &v);
		if (rc == -ENOENT)
			continue;
		T_CHECK(rep, rc == 0, return 1, "reader %d final get %u: %d", a->idx, g, rc);
		uint32_t w, gi, s;
		T_CHECK(rep, t_dec(v, &w, &gi, &s) && gi == g && s >= last[g], return 1,
			"reader %d final: id %u value %#" PRIx64 " (last seq %u)", a->idx, g, v, last[g]);
		last[g] = s;
	}
	memcpy(sh->max_seen[a->idx], last, sizeof last);
	sh->reads[a->idx] = reads;
	sh->hits[a->idx] = hits;
	connreg_close(r);
	return 0;
}

Test(multiproc, writers_and_readers_in_separate_processes_agree)
{
	char name[T_NAME_BUF];
	t_name(name, "mp");
	connreg_config_t cfg = t_cfg(MP_IDS, 0, 0); /* exactly what the writers can hold */
	connreg_t *r = NULL;
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);

	struct mp_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	t_gate_t gate;
	cr_assert_eq(t_gate_init(&gate), 0);
	struct mp_args wa[MP_W], ra[MP_R];
	pid_t wp[MP_W], rp[MP_R];
	for (int i = 0; i < MP_W; i++) {
		wa[i] = (struct mp_args){ name, sh, &gate, i };
		wp[i] = t_fork(mp_writer, &wa[i]);
		cr_assert_gt(wp[i], 0);
	}
	for (int i = 0; i < MP_R; i++) {
		ra[i] = (struct mp_args){ name, sh, &gate, i };
		rp[i] = t_fork(mp_reader, &ra[i]);
		cr_assert_gt(rp[i], 0);
	}
	t_gate_open(&gate);

	int ws[MP_W], rs[MP_R];
	for (int i = 0; i < MP_W; i++)
		ws[i] = t_wait(wp[i], 60000);
	atomic_store(&sh->writers_done, 1);
	for (int i = 0; i < MP_R; i++)
		rs[i] = t_wait(rp[i], 60000);

	T_ASSERT_REPORT_OK(&sh->rep);
	for (int i = 0; i < MP_W; i++) {
		cr_assert_eq(ws[i], 0, "writer %d status %d", i, ws[i]);
		cr_assert_gt(sh->writes[i], 1000u, "writer %d did only %" PRIu64 " writes", i,
			     sh->writes[i]);
		cr_assert_gt(sh->unregs[i], 0u);
		cr_log_info("writer %d: %" PRIu64 " writes, %" PRIu64 " -EAGAIN retries", i,
			    sh->writes[i], sh->again[i]);
	}
	for (int i = 0; i < MP_R; i++) {
		cr_assert_eq(rs[i], 0, "reader %d status %d", i, rs[i]);
		cr_assert_gt(sh->hits[i], 100u, "reader %d found only %" PRIu64 " of %" PRIu64, i,
			     sh->hits[i], sh->reads[i]);
	}

	/* final state through the parent's own handle == the writers' last writes */
	uint8_t id[T_ID_LEN];
	uint64_t nlive = 0;
	for (uint32_t g = 0; g < MP_IDS; g++) {
		uint64_t v = 0;
		int rc = connreg_get_transport(r, id, mp_id(id, g), &v);
		if (sh->final_live[g]) {
			nlive++;
			cr_assert_eq(rc, 0, "id %u should be live: %d", g, rc);
			cr_assert_eq(v, t_enc(g / MP_N, g, sh->final_seq[g]),
				     "id %u: %#" PRIx64 " != last write (seq %u)", g, v, sh->final_seq[g]);
		} else {
			cr_assert_eq(rc, -ENOENT, "id %u should be unregistered: %d", g, rc);
		}
		/* nothing a reader saw was newer than the last write */
		for (int i = 0; i < MP_R; i++)
			cr_assert_leq(sh->max_seen[i][g], sh->final_seq[g],
				      "reader %d saw seq %u of id %u, last written %u", i,
				      sh->max_seen[i][g], g, sh->final_seq[g]);
	}
	/* the capacity is intact: exactly MP_IDS - nlive new ids fit */
	for (uint64_t k = nlive; k < MP_IDS; k++)
		cr_assert_eq(connreg_register(r, id, t_id(id, 5, k), k), 0, "refill %" PRIu64, k);
	cr_assert_eq(connreg_register(r, id, t_id(id, 5, MP_IDS), 1), -ENOSPC);

	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

/* ------------------------------------------------------------------ */
/* one hot id                                                          */
/* ------------------------------------------------------------------ */

#define HOT_R 2

struct hot_shared {
	t_report_t rep;
	atomic_int done;
	uint32_t last_seq;
	uint64_t again;
	uint64_t hits[HOT_R];
	uint32_t distinct[HOT_R];
};

static int hot_writer(void *p)
{
	struct mp_args *a = p;
	struct hot_shared *sh = a->sh;
	t_gate_wait(a->gate);
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(&sh->rep, rc == 0, return 1, "hot writer open: %d", rc);
	uint32_t s = 1;
	uint64_t end = t_now_ms() + 1000;
	for (; (s & 255) || t_now_ms() < end; s++) {
		rc = T_RETRY_EAGAIN((s % 3) ? connreg_update_transport(r, "hot", 3, t_enc(1, 7, s))
					    : connreg_register(r, "hot", 3, t_enc(1, 7, s)),
				    &sh->again);
		T_CHECK(&sh->rep, rc == 0, return 1, "hot writer seq %u: %d (%s)", s, rc,
			connreg_strerror(rc));
	}
	sh->last_seq = s - 1;
	connreg_close(r);
	return 0;
}

static int hot_reader(void *p)
{
	struct mp_args *a = p;
	struct hot_shared *sh = a->sh;
	t_gate_wait(a->gate);
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(&sh->rep, rc == 0, return 1, "hot reader open: %d", rc);
	uint32_t last = 0, distinct = 0;
	uint64_t hits = 0;
	uint64_t hard_end = t_now_ms() + 30000;
	for (uint64_t n = 0;; n++) {
		if ((n & 255) == 0 && (atomic_load(&sh->done) || t_now_ms() > hard_end))
			break;
		uint64_t v;
		rc = connreg_get_transport(r, "hot", 3, &v);
		T_CHECK(&sh->rep, rc == 0, return 1, "hot reader get: %d (%s)", rc, connreg_strerror(rc));
		uint32_t w, i, s;
		T_CHECK(&sh->rep, t_dec(v, &w, &i, &s) && w == 1 && i == 7, return 1,
			"hot reader: malformed value %#" PRIx64, v);
		T_CHECK(&sh->rep, s >= last, return 1, "hot reader: seq went back %u -> %u", last, s);
		if (s != last)
			distinct++;
		last = s;
		hits++;
	}
	sh->hits[a->idx] = hits;
	sh->distinct[a->idx] = distinct;
	connreg_close(r);
	return 0;
}

Test(multiproc, hot_id_updates_seen_in_order_by_other_processes)
{
	char name[T_NAME_BUF];
	t_name(name, "hot");
	connreg_config_t cfg = t_cfg(4, 0, 0);
	connreg_t *r = NULL;
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	cr_assert_eq(connreg_register(r, "hot", 3, t_enc(1, 7, 0)), 0);

	struct hot_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	t_gate_t gate;
	cr_assert_eq(t_gate_init(&gate), 0);
	struct mp_args wa = { name, sh, &gate, 0 };
	struct mp_args ra[HOT_R];
	pid_t wp = t_fork(hot_writer, &wa), rp[HOT_R];
	cr_assert_gt(wp, 0);
	for (int i = 0; i < HOT_R; i++) {
		ra[i] = (struct mp_args){ name, sh, &gate, i };
		rp[i] = t_fork(hot_reader, &ra[i]);
		cr_assert_gt(rp[i], 0);
	}
	t_gate_open(&gate);
	int ws = t_wait(wp, 60000);
	atomic_store(&sh->done, 1);
	int rs[HOT_R];
	for (int i = 0; i < HOT_R; i++)
		rs[i] = t_wait(rp[i], 60000);
	T_ASSERT_REPORT_OK(&sh->rep);
	cr_assert_eq(ws, 0);
	for (int i = 0; i < HOT_R; i++) {
		cr_assert_eq(rs[i], 0, "reader %d status %d", i, rs[i]);
		cr_assert_gt(sh->hits[i], 0u);
	}
	uint64_t v;
	cr_assert_eq(connreg_get_transport(r, "hot", 3, &v), 0);
	cr_assert_eq(v, t_enc(1, 7, sh->last_seq), "final %#" PRIx64 ", last seq %u", v, sh->last_seq);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

/* ------------------------------------------------------------------ */
/* killed writer                                                       */
/* ------------------------------------------------------------------ */

#define KW_LIVE 32
#define KW_CAP 256

struct kw_shared {
	t_report_t rep;
	atomic_ullong next; /* numbers below this may have been registered */
	atomic_int started;
};

static int kw_writer(void *p)
{
	struct mp_args *a = p;
	struct kw_shared *sh = a->sh;
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(&sh->rep, rc == 0, return 1, "killed writer open: %d", rc);
	uint8_t id[T_ID_LEN];
	uint64_t ring[KW_LIVE];
	uint64_t n = 0;
	atomic_store(&sh->started, 1);
	for (;;) { /* until SIGKILL */
		uint64_t num = atomic_fetch_add(&sh->next, 1);
		if (n >= KW_LIVE) {
			rc = connreg_unregister(r, id, t_id(id, 66, ring[n % KW_LIVE]));
			T_CHECK(&sh->rep, rc == 0, return 1, "killed writer unregister: %d", rc);
		}
		rc = connreg_register(r, id, t_id(id, 66, num), num);
		T_CHECK(&sh->rep, rc == 0, return 1, "killed writer register: %d (%s)", rc,
			connreg_strerror(rc));
		rc = connreg_update_transport(r, id, t_id(id, 66, num), num + 1);
		T_CHECK(&sh->rep, rc == 0, return 1, "killed writer update: %d (%s)", rc,
			connreg_strerror(rc));
		ring[n % KW_LIVE] = num;
		n++;
	}
}

/* After the kill, in a fresh process (so a hang is seen as a timeout). */
static int kw_survivor(void *p)
{
	struct mp_args *a = p;
	struct kw_shared *sh = a->sh;
	t_report_t *rep = &sh->rep;
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(rep, rc == 0, return 1, "survivor open: %d", rc);
	uint8_t id[T_ID_LEN];
	uint64_t top = atomic_load(&sh->next) + 2;

	/* what the dead writer left: each id reads a value it wrote, or nothing */
	uint64_t left = 0;
	for (uint64_t num = 0; num < top; num++) {
		uint64_t v;
		rc = connreg_get_transport(r, id, t_id(id, 66, num), &v);
		T_CHECK(rep, rc == 0 || rc == -ENOENT, return 1, "survivor get: %d", rc);
		if (rc == 0) {
			T_CHECK(rep, v == num || v == num + 1, return 1,
				"dead writer's id %" PRIu64 " reads %" PRIu64, num, v);
			left++;
		}
	}
	T_CHECK(rep, left <= KW_LIVE + 1, return 1, "dead writer left %" PRIu64 " ids", left);

	/* new ids insert (the striped mutex was recovered), updates work */
	uint64_t t0 = t_now_ms();
	for (uint64_t k = 0; k < 2 * KW_CAP; k++) {
		rc = connreg_register(r, id, t_id(id, 77, k), k);
		T_CHECK(rep, rc == 0, return 1, "survivor register #%" PRIu64 ": %d (%s)", k, rc,
			connreg_strerror(rc));
		rc = connreg_update_transport(r, id, t_id(id, 77, k), k + 1);
		T_CHECK(rep, rc == 0, return 1, "survivor update #%" PRIu64 ": %d (%s)", k, rc,
			connreg_strerror(rc));
		rc = connreg_unregister(r, id, t_id(id, 77, k));
		T_CHECK(rep, rc == 0, return 1, "survivor unregister: %d", rc);
	}
	uint64_t dt = t_now_ms() - t0;
	T_CHECK(rep, dt < 10000, return 1, "survivor churn took %" PRIu64 " ms", dt);

	/* remove what the dead writer left; then the full capacity fits again */
	for (uint64_t num = 0; num < top; num++) {
		rc = connreg_unregister(r, id, t_id(id, 66, num));
		T_CHECK(rep, rc == 0, return 1, "survivor unregister dead's id: %d", rc);
	}
	for (uint64_t k = 0; k < KW_CAP; k++) {
		rc = connreg_register(r, id, t_id(id, 88, k), k);
		T_CHECK(rep, rc == 0, return 1,
			"after a writer was killed, new id #%" PRIu64 " of capacity %d: %d (%s)", k,
			KW_CAP, rc, connreg_strerror(rc));
	}
	rc = connreg_register(r, id, t_id(id, 88, KW_CAP), 1);
	T_CHECK(rep, rc == -ENOSPC, return 1, "register beyond capacity: %d", rc);
	for (uint64_t k = 0; k < KW_CAP; k++)
		connreg_unregister(r, id, t_id(id, 88, k));
	connreg_close(r);
	return 0;
}

Test(multiproc, killed_writer_blocks_no_one_and_loses_no_capacity)
{
	char name[T_NAME_BUF];
	t_name(name, "killw");
	connreg_config_t cfg = t_cfg(KW_CAP, 0, 0);
	connreg_t *r = NULL;
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	struct kw_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	struct mp_args a = { name, sh, NULL, 0 };

	for (int round = 0; round < 6; round++) {
		atomic_store(&sh->started, 0);
		atomic_store(&sh->next, 0);
		pid_t w = t_fork(kw_writer, &a);
		cr_assert_gt(w, 0);
		uint64_t t0 = t_now_ms();
		while (!atomic_load(&sh->started) && t_now_ms() - t0 < 10000)
			t_sleep_ms(1);
		cr_assert(atomic_load(&sh->started), "writer did not start");
		t_sleep_ms(50 + 37 * (unsigned)round);
		kill(w, SIGKILL);
		int st = t_wait(w, 10000);
		T_ASSERT_REPORT_OK(&sh->rep);
		cr_assert_eq(st, T_WAIT_SIGNALED + SIGKILL, "round %d: writer status %d", round, st);
		cr_assert_gt(atomic_load(&sh->next), 0u);

		/* the parent's handle still reads without delay */
		uint64_t v, t1 = t_now_ms();
		uint8_t id[T_ID_LEN];
		for (int k = 0; k < 1000; k++) {
			int rc = connreg_get_transport(r, id, t_id(id, 66, (uint64_t)k), &v);
			cr_assert(rc == 0 || rc == -ENOENT, "get: %d", rc);
		}
		cr_assert_lt(t_now_ms() - t1, 2000u);

		pid_t s = t_fork(kw_survivor, &a);
		cr_assert_gt(s, 0);
		st = t_wait(s, 30000);
		T_ASSERT_REPORT_OK(&sh->rep);
		cr_assert_eq(st, 0, "round %d: survivor status %d (%d = timeout)", round, st,
			     T_WAIT_TIMEOUT);
	}
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

/* ------------------------------------------------------------------ */
/* stopped and killed readers                                          */
/* ------------------------------------------------------------------ */

struct sr_shared {
	t_report_t rep;
	atomic_int started;
	atomic_ullong reads;
};

static int sr_reader(void *p)
{
	struct mp_args *a = p;
	struct sr_shared *sh = a->sh;
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(&sh->rep, rc == 0, return 1, "reader open: %d", rc);
	uint8_t id[T_ID_LEN];
	uint64_t seed = 5;
	atomic_store(&sh->started, 1);
	for (uint64_t n = 1;; n++) { /* until stopped/killed */
		uint64_t v;
		rc = connreg_get_transport(r, id, t_id(id, 1, t_rand(&seed) % 64), &v);
		T_CHECK(&sh->rep, rc == 0 || rc == -ENOENT, return 1, "reader get: %d", rc);
		if ((n & 1023) == 0)
			atomic_store_explicit(&sh->reads, n, memory_order_relaxed);
	}
}

static pid_t start_sr_reader(struct mp_args *a, struct sr_shared *sh)
{
	atomic_store(&sh->started, 0);
	atomic_store(&sh->reads, 0);
	pid_t pid = t_fork(sr_reader, a);
	cr_assert_gt(pid, 0);
	uint64_t t0 = t_now_ms();
	while (atomic_load(&sh->reads) < 10000 && t_now_ms() - t0 < 10000)
		t_sleep_ms(1);
	cr_assert_geq(atomic_load(&sh->reads), 10000u, "reader did not get going");
	return pid;
}

#define SR_CAP 64

/*
 * A reader stopped inside a lookup holds back reuse of what it may see: once
 * the spare record positions are used up, re-registrations get -EAGAIN after
 * about CONNREG_RECLAIM_WAIT_MS (never hang, never show a half-made record),
 * and succeed again once the reader resumes. The stop lands inside a lookup
 * only part of the time, so stop/resume until -EAGAIN was seen a few times
 * (each trial re-registers more ids than there are positions).
 */
Test(multiproc, stopped_reader_holds_back_reuse_and_writers_get_EAGAIN_not_hang)
{
	char name[T_NAME_BUF];
	t_name(name, "stopr");
	connreg_config_t cfg = t_cfg(SR_CAP, 0, 0);
	connreg_t *r = NULL;
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	uint8_t id[T_ID_LEN];
	uint64_t vals[SR_CAP];
	for (uint64_t k = 0; k < SR_CAP; k++) {
		cr_assert_eq(connreg_register(r, id, t_id(id, 1, k), k), 0);
		vals[k] = k;
	}
	struct sr_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	struct mp_args a = { name, sh, NULL, 0 };
	pid_t rd = start_sr_reader(&a, sh);

	int trials = 0, again_trials = 0;
	uint64_t worst = 0, seq = 1000;
	for (; trials < 60 && again_trials < 3; trials++) {
		kill(rd, SIGSTOP);
		t_sleep_ms(2);
		for (int s = 0; s < 20000; s++) {
			uint64_t k = (uint64_t)s % SR_CAP, t0 = t_now_ms();
			/*
			 * Remove and re-register: the new record needs a position,
			 * and a removed one waits for the stopped reader.
			 */
			cr_assert_eq(connreg_unregister(r, id, t_id(id, 1, k)), 0);
			int rc = connreg_register(r, id, t_id(id, 1, k), ++seq);
			uint64_t dt = t_now_ms() - t0;
			if (dt > worst)
				worst = dt;
			cr_assert(rc == 0 || rc == -EAGAIN, "register with a stopped reader: %d (%s)",
				  rc, connreg_strerror(rc));
			/* lookups in the writer's process are not blocked */
			uint64_t v;
			if (rc == 0) {
				vals[k] = seq;
				cr_assert_eq(connreg_get_transport(r, id, t_id(id, 1, k), &v), 0);
				cr_assert_eq(v, vals[k], "value %" PRIu64 ", want %" PRIu64, v, vals[k]);
			} else {
				/* refused: the id stays removed, nothing half-made is visible */
				cr_assert_eq(connreg_get_transport(r, id, t_id(id, 1, k), &v), -ENOENT);
			}
			if (rc == -EAGAIN) {
				cr_assert_geq(dt, (uint64_t)CONNREG_RECLAIM_WAIT_MS / 2,
					      "-EAGAIN after only %" PRIu64 " ms", dt);
				again_trials++;
				break;
			}
		}
		kill(rd, SIGCONT);
		t_sleep_ms(2);
		/* resumed: writes succeed again without -EAGAIN */
		for (uint64_t s = 0; s < 4 * SR_CAP; s++) {
			uint64_t k = s % SR_CAP;
			/* (the resumed reader may still wait for a CPU on a loaded machine) */
			int rc = T_RETRY_EAGAIN(connreg_register(r, id, t_id(id, 1, k), ++seq), NULL);
			cr_assert_eq(rc, 0, "register after SIGCONT: %d (%s)", rc, connreg_strerror(rc));
			vals[k] = seq;
		}
	}
	kill(rd, SIGKILL);
	cr_assert_eq(t_wait(rd, 10000), T_WAIT_SIGNALED + SIGKILL);
	T_ASSERT_REPORT_OK(&sh->rep);
	cr_log_info("%d trials, %d with EAGAIN, slowest write %" PRIu64 " ms", trials, again_trials,
		    worst);
	cr_assert_leq(worst, (uint64_t)CONNREG_RECLAIM_WAIT_MS + 1000,
		      "a write took %" PRIu64 " ms with a stopped reader", worst);
	cr_assert_gt(again_trials, 0,
		     "in %d stop/resume trials of a reader looping on lookups, writers never got "
		     "-EAGAIN: entries a stopped reader may hold were reused", trials);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(multiproc, killed_reader_does_not_block_writers)
{
	char name[T_NAME_BUF];
	t_name(name, "killr");
	connreg_config_t cfg = t_cfg(SR_CAP, 0, 8);
	connreg_t *r = NULL;
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	uint8_t id[T_ID_LEN];
	for (uint64_t k = 0; k < SR_CAP; k++)
		cr_assert_eq(connreg_register(r, id, t_id(id, 1, k), k), 0);
	struct sr_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	struct mp_args a = { name, sh, NULL, 0 };

	/* more killed readers than reader slots (8): their slots must come back */
	for (int round = 0; round < 12; round++) {
		pid_t rd = start_sr_reader(&a, sh);
		kill(rd, SIGKILL); /* most likely inside a lookup */
		cr_assert_eq(t_wait(rd, 10000), T_WAIT_SIGNALED + SIGKILL);
		T_ASSERT_REPORT_OK(&sh->rep);

		uint64_t t0 = t_now_ms();
		for (uint64_t s = 0; s < 20 * SR_CAP; s++) {
			uint64_t k = s % SR_CAP;
			int rc = connreg_update_transport(r, id, t_id(id, 1, k), s);
			cr_assert_eq(rc, 0, "round %d: update #%" PRIu64 " after a reader was killed: %d (%s)",
				     round, s, rc, connreg_strerror(rc));
		}
		cr_assert_lt(t_now_ms() - t0, 5000u);
		/* unregister + register churn needs reclaimed entries too */
		for (uint64_t k = 0; k < SR_CAP; k++) {
			cr_assert_eq(connreg_unregister(r, id, t_id(id, 1, k)), 0);
			int rc = connreg_register(r, id, t_id(id, 1, k), k);
			cr_assert_eq(rc, 0, "round %d: re-register %" PRIu64 ": %d (%s)", round, k, rc,
				     connreg_strerror(rc));
		}
	}
	cr_assert_eq(connreg_register(r, id, t_id(id, 2, 0), 0), -ENOSPC);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}
