/*
 * Threads sharing one handle, together with another process; reader slots
 * are limited by max_threads and given back at thread exit / close.
 */
#include "common.h"

TestSuite(threads, .fini = t_cleanup_names, .timeout = 120);

/* ------------------------------------------------------------------ */
/* threads + a process, disjoint id ranges                             */
/* ------------------------------------------------------------------ */

#define TH_TW 2               /* writer threads in the parent (writers 0, 1) */
#define TH_TR 3               /* reader threads in the parent */
#define TH_PW 1               /* writer processes (writer 2) */
#define TH_WRITERS (TH_TW + TH_PW)
#define TH_N 200              /* ids per writer */
#define TH_IDS (TH_WRITERS * TH_N)
#define TH_WRITE_MS 1500

struct th_shared {
	t_report_t rep;
	atomic_int writers_done;
	atomic_int go;
	uint32_t final_seq[TH_IDS];
	uint8_t final_live[TH_IDS];
	uint64_t writes[TH_WRITERS];
	atomic_ullong again;
	uint64_t hits[TH_TR];
};

struct th_args {
	const char *name;
	connreg_t *r; /* NULL: open own handle (process writer) */
	struct th_shared *sh;
	t_gate_t *gate;
	int idx;
};

static size_t th_id(uint8_t *buf, uint32_t g)
{
	return t_id(buf, 3, g);
}

static int th_write_loop(connreg_t *r, struct th_shared *sh, int w)
{
	t_report_t *rep = &sh->rep;
	uint32_t seq[TH_N];
	uint8_t live[TH_N];
	memset(seq, 0, sizeof seq);
	memset(live, 0, sizeof live);
	uint8_t id[T_ID_LEN];
	uint64_t seed = 0xabc + (uint64_t)w * 1337, ops = 0, again = 0;
	uint64_t end = t_now_ms() + TH_WRITE_MS;
	int rc;
	while ((ops & 63) || t_now_ms() < end) {
		uint64_t x = t_rand(&seed);
		uint32_t k = (uint32_t)(x % TH_N), g = (uint32_t)w * TH_N + k;
		size_t len = th_id(id, g);
		uint32_t s = ++seq[k];
		uint64_t v = t_enc((uint32_t)w, g, s);
		unsigned op = (unsigned)((x >> 32) % 100);
		if (!live[k]) {
			rc = T_RETRY_EAGAIN(connreg_register(r, id, len, v), &again);
			T_CHECK(rep, rc == 0, return 1, "writer %d register new %u: %d (%s)", w, g, rc,
				connreg_strerror(rc));
			live[k] = 1;
		} else if (op < 5) {
			rc = connreg_unregister(r, id, len);
			T_CHECK(rep, rc == 0, return 1, "writer %d unregister: %d", w, rc);
			live[k] = 0;
		} else if (op < 35) {
			rc = T_RETRY_EAGAIN(connreg_register(r, id, len, v), &again);
			T_CHECK(rep, rc == 0, return 1, "writer %d register(update): %d (%s)", w, rc,
				connreg_strerror(rc));
		} else {
			rc = T_RETRY_EAGAIN(connreg_update_transport(r, id, len, v), &again);
			T_CHECK(rep, rc == 0, return 1, "writer %d update: %d (%s)", w, rc,
				connreg_strerror(rc));
		}
		ops++;
	}
	for (uint32_t k = 0; k < TH_N; k++) {
		sh->final_seq[w * TH_N + k] = seq[k];
		sh->final_live[w * TH_N + k] = live[k];
	}
	sh->writes[w] = ops;
	atomic_fetch_add(&sh->again, again);
	return 0;
}

static void *th_writer_thread(void *p)
{
	struct th_args *a = p;
	while (!atomic_load(&a->sh->go))
		sched_yield();
	th_write_loop(a->r, a->sh, a->idx);
	return NULL;
}

static int th_writer_proc(void *p)
{
	struct th_args *a = p;
	t_gate_wait(a->gate);
	connreg_t *r = NULL;
	int rc = connreg_open(a->name, &r);
	T_CHECK(&a->sh->rep, rc == 0, return 1, "process writer open: %d", rc);
	rc = th_write_loop(r, a->sh, a->idx);
	connreg_close(r);
	return rc;
}

static void *th_reader_thread(void *p)
{
	struct th_args *a = p;
	struct th_shared *sh = a->sh;
	t_report_t *rep = &sh->rep;
	uint32_t *last = calloc(TH_IDS, sizeof *last);
	T_CHECK(rep, last != NULL, return NULL, "calloc");
	uint8_t id[T_ID_LEN];
	uint64_t seed = 0x5151 + (uint64_t)a->idx, hits = 0;
	while (!atomic_load(&sh->go))
		sched_yield();
	for (uint64_t n = 0;; n++) {
		if ((n & 255) == 0 && atomic_load(&sh->writers_done))
			break;
		uint32_t g = (uint32_t)(t_rand(&seed) % TH_IDS);
		uint64_t v;
		int rc = connreg_get_transport(a->r, id, th_id(id, g), &v);
		if (rc == -ENOENT)
			continue;
		T_CHECK(rep, rc == 0, goto out, "reader thread %d get: %d (%s)", a->idx, rc,
			connreg_strerror(rc));
		uint32_t w, gi, s;
		T_CHECK(rep, t_dec(v, &w, &gi, &s) && gi == g && w == g / TH_N, goto out,
			"reader thread %d: id %u has value %#" PRIx64, a->idx, g, v);
		T_CHECK(rep, s >= last[g], goto out, "reader thread %d: id %u seq went back %u -> %u",
			a->idx, g, last[g], s);
		last[g] = s;
		hits++;
	}
out:
	sh->hits[a->idx] = hits;
	free(last);
	return NULL;
}

Test(threads, threads_sharing_a_handle_and_a_process_agree)
{
	char name[T_NAME_BUF];
	t_name(name, "thmix");
	connreg_config_t cfg = t_cfg(TH_IDS, 0, 0);
	connreg_t *r = NULL;
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	struct th_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);

	/* fork the process writer before any thread exists */
	t_gate_t gate;
	cr_assert_eq(t_gate_init(&gate), 0);
	struct th_args pa = { name, NULL, sh, &gate, TH_TW };
	pid_t pw = t_fork(th_writer_proc, &pa);
	cr_assert_gt(pw, 0);

	pthread_t wt[TH_TW], rt[TH_TR];
	struct th_args wa[TH_TW], ra[TH_TR];
	for (int i = 0; i < TH_TW; i++) {
		wa[i] = (struct th_args){ name, r, sh, NULL, i };
		cr_assert_eq(pthread_create(&wt[i], NULL, th_writer_thread, &wa[i]), 0);
	}
	for (int i = 0; i < TH_TR; i++) {
		ra[i] = (struct th_args){ name, r, sh, NULL, i };
		cr_assert_eq(pthread_create(&rt[i], NULL, th_reader_thread, &ra[i]), 0);
	}
	atomic_store(&sh->go, 1);
	t_gate_open(&gate);

	for (int i = 0; i < TH_TW; i++)
		pthread_join(wt[i], NULL);
	int ps = t_wait(pw, 60000);
	atomic_store(&sh->writers_done, 1);
	for (int i = 0; i < TH_TR; i++)
		pthread_join(rt[i], NULL);

	T_ASSERT_REPORT_OK(&sh->rep);
	cr_assert_eq(ps, 0, "process writer status %d", ps);
	for (int w = 0; w < TH_WRITERS; w++)
		cr_assert_gt(sh->writes[w], 1000u, "writer %d wrote only %" PRIu64, w, sh->writes[w]);
	for (int i = 0; i < TH_TR; i++)
		cr_assert_gt(sh->hits[i], 100u, "reader %d hit only %" PRIu64, i, sh->hits[i]);
	cr_log_info("%llu -EAGAIN retries", (unsigned long long)atomic_load(&sh->again));

	uint8_t id[T_ID_LEN];
	for (uint32_t g = 0; g < TH_IDS; g++) {
		uint64_t v;
		int rc = connreg_get_transport(r, id, th_id(id, g), &v);
		if (sh->final_live[g]) {
			cr_assert_eq(rc, 0, "id %u should be live: %d", g, rc);
			cr_assert_eq(v, t_enc(g / TH_N, g, sh->final_seq[g]),
				     "id %u: %#" PRIx64 ", last write seq %u", g, v, sh->final_seq[g]);
		} else {
			cr_assert_eq(rc, -ENOENT, "id %u should be absent: %d", g, rc);
		}
	}
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

/* ------------------------------------------------------------------ */
/* many threads writing one id                                         */
/* ------------------------------------------------------------------ */

#define ONE_W 4
#define ONE_R 2
#define ONE_K 50000

struct one_args {
	connreg_t *r;
	t_report_t *rep;
	atomic_int *go, *done;
	int idx;
	uint64_t hits;
	uint64_t again;
};

static void *one_writer(void *p)
{
	struct one_args *a = p;
	while (!atomic_load(a->go))
		sched_yield();
	for (uint32_t s = 1; s <= ONE_K; s++) {
		uint64_t v = t_enc((uint32_t)a->idx, 9, s);
		int rc = T_RETRY_EAGAIN((s & 1) ? connreg_update_transport(a->r, "one", 3, v)
						: connreg_register(a->r, "one", 3, v),
					&a->again);
		T_CHECK(a->rep, rc == 0, return NULL, "writer %d seq %u: %d (%s)", a->idx, s, rc,
			connreg_strerror(rc));
	}
	return NULL;
}

static void *one_reader(void *p)
{
	struct one_args *a = p;
	uint32_t last[ONE_W] = { 0 };
	while (!atomic_load(a->go))
		sched_yield();
	while (!atomic_load(a->done)) {
		uint64_t v;
		int rc = connreg_get_transport(a->r, "one", 3, &v);
		T_CHECK(a->rep, rc == 0, return NULL, "reader get: %d (%s)", rc, connreg_strerror(rc));
		uint32_t w, i, s;
		T_CHECK(a->rep, t_dec(v, &w, &i, &s) && i == 9 && w < ONE_W, return NULL,
			"reader: malformed value %#" PRIx64, v);
		/* linearizable: one writer's values are seen in its program order */
		T_CHECK(a->rep, s >= last[w], return NULL, "reader: writer %u's seq went back %u -> %u",
			w, last[w], s);
		last[w] = s;
		a->hits++;
	}
	return NULL;
}

Test(threads, threads_writing_one_id_are_seen_in_each_writers_order)
{
	char name[T_NAME_BUF];
	t_name(name, "thone");
	connreg_config_t cfg = t_cfg(2, 0, 0);
	connreg_t *r = NULL;
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	cr_assert_eq(connreg_register(r, "one", 3, t_enc(0, 9, 0)), 0);
	t_report_t rep;
	memset(&rep, 0, sizeof rep);
	atomic_int go = 0, done = 0;
	pthread_t wt[ONE_W], rt[ONE_R];
	struct one_args wa[ONE_W], ra[ONE_R];
	for (int i = 0; i < ONE_W; i++) {
		wa[i] = (struct one_args){ r, &rep, &go, &done, i, 0, 0 };
		cr_assert_eq(pthread_create(&wt[i], NULL, one_writer, &wa[i]), 0);
	}
	for (int i = 0; i < ONE_R; i++) {
		ra[i] = (struct one_args){ r, &rep, &go, &done, i, 0, 0 };
		cr_assert_eq(pthread_create(&rt[i], NULL, one_reader, &ra[i]), 0);
	}
	atomic_store(&go, 1);
	for (int i = 0; i < ONE_W; i++)
		pthread_join(wt[i], NULL);
	atomic_store(&done, 1);
	for (int i = 0; i < ONE_R; i++)
		pthread_join(rt[i], NULL);
	T_ASSERT_REPORT_OK(&rep);
	uint64_t again = 0;
	for (int i = 0; i < ONE_W; i++)
		again += wa[i].again;
	for (int i = 0; i < ONE_R; i++)
		cr_assert_gt(ra[i].hits, 0u);
	cr_log_info("%" PRIu64 " -EAGAIN retries", again);

	/* the final value is the last write of one of the writers */
	uint64_t v;
	uint32_t w, i, s;
	cr_assert_eq(connreg_get_transport(r, "one", 3, &v), 0);
	cr_assert(t_dec(v, &w, &i, &s), "malformed final value %#" PRIx64, v);
	cr_assert(w < ONE_W && i == 9 && s == ONE_K, "final value is writer %u seq %u, not a last write",
		  w, s);
	/* the other id place is still free: updates consumed no capacity */
	cr_assert_eq(connreg_register(r, "two", 3, 2), 0);
	cr_assert_eq(connreg_register(r, "three", 5, 3), -ENOSPC);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

/* ------------------------------------------------------------------ */
/* concurrent inserts at the capacity limit                            */
/* ------------------------------------------------------------------ */

#define INS_T 4
#define INS_PER 400
#define INS_CAP 1000

struct ins_args {
	connreg_t *r;
	t_report_t *rep;
	atomic_int *go;
	int idx;
	uint8_t ok[INS_PER];
	int nok, nspc;
};

static void *ins_thread(void *p)
{
	struct ins_args *a = p;
	uint8_t id[T_ID_LEN];
	while (!atomic_load(a->go))
		sched_yield();
	for (int k = 0; k < INS_PER; k++) {
		int rc = T_RETRY_EAGAIN(connreg_register(a->r, id,
							 t_id(id, 40 + (uint32_t)a->idx, (uint64_t)k),
							 (uint64_t)a->idx << 32 | (uint64_t)k),
					NULL);
		T_CHECK(a->rep, rc == 0 || rc == -ENOSPC, return NULL, "thread %d register: %d (%s)",
			a->idx, rc, connreg_strerror(rc));
		a->ok[k] = rc == 0;
		a->nok += rc == 0;
		a->nspc += rc == -ENOSPC;
	}
	return NULL;
}

Test(threads, concurrent_inserts_from_threads_stop_exactly_at_capacity)
{
	char name[T_NAME_BUF];
	t_name(name, "thins");
	connreg_config_t cfg = t_cfg(INS_CAP, 0, 0);
	connreg_t *r = NULL;
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	t_report_t rep;
	memset(&rep, 0, sizeof rep);
	atomic_int go = 0;
	pthread_t t[INS_T];
	static struct ins_args a[INS_T];
	for (int i = 0; i < INS_T; i++) {
		memset(&a[i], 0, sizeof a[i]);
		a[i].r = r;
		a[i].rep = &rep;
		a[i].go = &go;
		a[i].idx = i;
		cr_assert_eq(pthread_create(&t[i], NULL, ins_thread, &a[i]), 0);
	}
	atomic_store(&go, 1);
	for (int i = 0; i < INS_T; i++)
		pthread_join(t[i], NULL);
	T_ASSERT_REPORT_OK(&rep);
	int nok = 0, nspc = 0;
	for (int i = 0; i < INS_T; i++) {
		nok += a[i].nok;
		nspc += a[i].nspc;
	}
	cr_assert_eq(nok, INS_CAP, "%d of %d concurrent inserts succeeded, capacity %d", nok,
		     INS_T * INS_PER, INS_CAP);
	cr_assert_eq(nspc, INS_T * INS_PER - INS_CAP);
	/* exactly the successful ones are there */
	uint8_t id[T_ID_LEN];
	for (int i = 0; i < INS_T; i++) {
		for (int k = 0; k < INS_PER; k++) {
			uint64_t v;
			int rc = connreg_get_transport(r, id, t_id(id, 40 + (uint32_t)i, (uint64_t)k), &v);
			if (a[i].ok[k]) {
				cr_assert_eq(rc, 0);
				cr_assert_eq(v, (uint64_t)i << 32 | (uint64_t)k);
			} else {
				cr_assert_eq(rc, -ENOENT, "refused id (thread %d #%d) is visible", i, k);
			}
		}
	}
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

/* ------------------------------------------------------------------ */
/* reader slots                                                        */
/* ------------------------------------------------------------------ */

#define SLOTS 16
#define SHORT_THREADS 2000
#define SHORT_BATCH 4

struct short_args {
	connreg_t *r;
	int n;
	int rc;
	uint64_t v;
};

static void *short_thread(void *p)
{
	struct short_args *a = p;
	uint8_t id[T_ID_LEN];
	a->rc = connreg_get_transport(a->r, id, t_id(id, 8, (uint64_t)(a->n % 10)), &a->v);
	if (a->rc == 0 && a->n % 7 == 0) /* some writers too */
		a->rc = T_RETRY_EAGAIN(connreg_update_transport(a->r, id,
								t_id(id, 8, (uint64_t)(a->n % 10)),
								(uint64_t)(a->n % 10) + 100),
				       NULL);
	return NULL;
}

Test(threads, short_lived_threads_give_their_reader_slots_back)
{
	char name[T_NAME_BUF];
	t_name(name, "thshort");
	connreg_config_t cfg = t_cfg(16, 0, SLOTS);
	connreg_t *r = NULL;
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	uint8_t id[T_ID_LEN];
	for (uint64_t k = 0; k < 10; k++)
		cr_assert_eq(connreg_register(r, id, t_id(id, 8, k), k + 100), 0);

	for (int base = 0; base < SHORT_THREADS; base += SHORT_BATCH) {
		pthread_t t[SHORT_BATCH];
		struct short_args a[SHORT_BATCH];
		for (int j = 0; j < SHORT_BATCH; j++) {
			a[j] = (struct short_args){ r, base + j, -1, 0 };
			cr_assert_eq(pthread_create(&t[j], NULL, short_thread, &a[j]), 0);
		}
		for (int j = 0; j < SHORT_BATCH; j++) {
			pthread_join(t[j], NULL);
			cr_assert_eq(a[j].rc, 0, "thread #%d (of %d, %d reader slots): %d (%s)", base + j,
				     SHORT_THREADS, SLOTS, a[j].rc, connreg_strerror(a[j].rc));
			cr_assert_eq(a[j].v, (uint64_t)(a[j].n % 10) + 100);
		}
	}
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

/* A thread that makes one lookup, then waits (holding its slot) until told to exit. */
struct park_args {
	connreg_t *r;
	int rc;
	atomic_int looked;
	atomic_int release;
	atomic_int retry; /* look up again (after a failure) */
	int rc2;
	atomic_int looked2;
};

static void *park_thread(void *p)
{
	struct park_args *a = p;
	uint64_t v;
	a->rc = connreg_get_transport(a->r, "k", 1, &v);
	atomic_store(&a->looked, 1);
	for (;;) {
		if (atomic_load(&a->retry) && !atomic_load(&a->looked2)) {
			a->rc2 = connreg_get_transport(a->r, "k", 1, &v);
			atomic_store(&a->looked2, 1);
		}
		if (atomic_load(&a->release))
			break;
		t_sleep_ms(1);
	}
	return NULL;
}

static void wait_flag(atomic_int *f)
{
	uint64_t end = t_now_ms() + 10000;
	while (!atomic_load(f) && t_now_ms() < end)
		t_sleep_ms(1);
	cr_assert(atomic_load(f), "thread did not respond");
}

#define FEW_SLOTS 4

Test(threads, lookups_beyond_max_threads_get_EAGAIN_until_a_slot_frees)
{
	char name[T_NAME_BUF];
	t_name(name, "thslots");
	connreg_config_t cfg = t_cfg(4, 0, FEW_SLOTS);
	connreg_t *r = NULL;
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	/* (the main thread makes no call, so it holds no slot) */
	connreg_t *w = NULL;
	cr_assert_eq(connreg_open(name, &w), 0);

	pthread_t t[FEW_SLOTS + 1];
	static struct park_args a[FEW_SLOTS + 1];
	for (int i = 0; i <= FEW_SLOTS; i++) {
		memset(&a[i], 0, sizeof a[i]);
		a[i].r = r;
	}
	/* fill every slot with a parked thread */
	for (int i = 0; i < FEW_SLOTS; i++) {
		cr_assert_eq(pthread_create(&t[i], NULL, park_thread, &a[i]), 0);
		wait_flag(&a[i].looked);
		cr_assert_eq(a[i].rc, -ENOENT, "parked thread %d: %d (%s)", i, a[i].rc,
			     connreg_strerror(a[i].rc));
	}
	/* one more thread: every slot is taken */
	cr_assert_eq(pthread_create(&t[FEW_SLOTS], NULL, park_thread, &a[FEW_SLOTS]), 0);
	wait_flag(&a[FEW_SLOTS].looked);
	cr_assert_eq(a[FEW_SLOTS].rc, -EAGAIN, "lookup with all %d slots taken: %d (%s)", FEW_SLOTS,
		     a[FEW_SLOTS].rc, connreg_strerror(a[FEW_SLOTS].rc));

	/* one parked thread exits: its slot is given back and the refused thread gets it */
	atomic_store(&a[0].release, 1);
	pthread_join(t[0], NULL);
	atomic_store(&a[FEW_SLOTS].retry, 1);
	wait_flag(&a[FEW_SLOTS].looked2);
	cr_assert_eq(a[FEW_SLOTS].rc2, -ENOENT, "lookup after a slot was freed: %d (%s)",
		     a[FEW_SLOTS].rc2, connreg_strerror(a[FEW_SLOTS].rc2));

	for (int i = 1; i <= FEW_SLOTS; i++) {
		atomic_store(&a[i].release, 1);
		pthread_join(t[i], NULL);
	}
	/* all exited: the main thread can attach, through either handle */
	uint64_t v;
	cr_assert_eq(connreg_get_transport(r, "k", 1, &v), -ENOENT);
	connreg_close(w);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}

Test(threads, close_gives_back_the_slots_of_threads_still_alive)
{
	char name[T_NAME_BUF];
	t_name(name, "thclose");
	connreg_config_t cfg = t_cfg(4, 0, FEW_SLOTS);
	connreg_t *r = NULL;
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	cr_assert_eq(connreg_register(r, "k", 1, 5), 0); /* main thread takes a slot */

	pthread_t t[FEW_SLOTS];
	static struct park_args a[FEW_SLOTS];
	for (int i = 0; i < FEW_SLOTS; i++) {
		memset(&a[i], 0, sizeof a[i]);
		a[i].r = r;
		cr_assert_eq(pthread_create(&t[i], NULL, park_thread, &a[i]), 0);
		wait_flag(&a[i].looked);
	}
	/* main + FEW_SLOTS threads: the last thread found none */
	int nok = 0, nagain = 0;
	for (int i = 0; i < FEW_SLOTS; i++) {
		nok += a[i].rc == 0;
		nagain += a[i].rc == -EAGAIN;
	}
	cr_assert_eq(nok, FEW_SLOTS - 1, "%d threads attached beside main", nok);
	cr_assert_eq(nagain, 1);

	/* close while the threads are alive (none inside a call) */
	connreg_close(r);
	connreg_t *r2 = NULL;
	cr_assert_eq(connreg_open(name, &r2), 0);
	/* FEW_SLOTS new threads attach through the new handle: the old slots are free */
	pthread_t t2[FEW_SLOTS];
	static struct park_args b[FEW_SLOTS];
	for (int i = 0; i < FEW_SLOTS; i++) {
		memset(&b[i], 0, sizeof b[i]);
		b[i].r = r2;
		cr_assert_eq(pthread_create(&t2[i], NULL, park_thread, &b[i]), 0);
		wait_flag(&b[i].looked);
		cr_assert_eq(b[i].rc, 0, "thread %d through the new handle: %d (%s)", i, b[i].rc,
			     connreg_strerror(b[i].rc));
	}
	for (int i = 0; i < FEW_SLOTS; i++) {
		atomic_store(&b[i].release, 1);
		pthread_join(t2[i], NULL);
		atomic_store(&a[i].release, 1); /* they never touch the closed handle again */
		pthread_join(t[i], NULL);
	}
	uint64_t v;
	cr_assert_eq(connreg_get_transport(r2, "k", 1, &v), 0);
	cr_assert_eq(v, 5);
	connreg_close(r2);
	cr_assert_eq(connreg_unlink(name), 0);
}

/* ------------------------------------------------------------------ */
/* fork from a process whose threads use the handle                    */
/* ------------------------------------------------------------------ */

struct fk_args {
	connreg_t *r;
	atomic_int *stop;
	t_report_t *rep;
	char id[8]; /* each spinner has its own id */
};

static void *fk_spinner(void *p)
{
	struct fk_args *a = p;
	uint32_t s = 0;
	while (!atomic_load(a->stop)) {
		++s;
		int rc = T_RETRY_EAGAIN(connreg_register(a->r, a->id, strlen(a->id), s), NULL);
		T_CHECK(a->rep, rc == 0, return NULL, "spinner register: %d (%s)", rc,
			connreg_strerror(rc));
		uint64_t v;
		rc = connreg_get_transport(a->r, a->id, strlen(a->id), &v);
		T_CHECK(a->rep, rc == 0 && v == s, return NULL, "spinner get: %d v=%" PRIu64 " want %u",
			rc, v, s);
	}
	return NULL;
}

struct fk_child_args {
	const char *name;
	connreg_t *parent;
	t_report_t *rep;
};

static int fk_child(void *p)
{
	struct fk_child_args *a = p;
	uint64_t v;
	int rc = connreg_get_transport(a->parent, "spin", 4, &v);
	T_CHECK(a->rep, rc == -ECHILD, return 1, "child via parent handle: %d", rc);
	connreg_t *own = NULL;
	rc = connreg_open(a->name, &own);
	T_CHECK(a->rep, rc == 0, return 1, "child open: %d", rc);
	for (int k = 0; k < 1000; k++) {
		rc = connreg_get_transport(own, "spin", 4, &v);
		T_CHECK(a->rep, rc == 0, return 1, "child get: %d", rc);
		rc = T_RETRY_EAGAIN(connreg_register(own, "child", 5, (uint64_t)k), NULL);
		T_CHECK(a->rep, rc == 0, return 1, "child register: %d (%s)", rc, connreg_strerror(rc));
	}
	connreg_close(own);
	return 0;
}

Test(threads, fork_while_threads_use_the_handle)
{
	char name[T_NAME_BUF];
	t_name(name, "thfork");
	connreg_config_t cfg = t_cfg(8, 0, 0);
	connreg_t *r = NULL;
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	cr_assert_eq(connreg_register(r, "spin", 4, 0), 0);
	t_report_t *rep = t_shared(sizeof *rep);
	cr_assert_not_null(rep);
	atomic_int stop = 0;
	struct fk_args fa[2] = { { r, &stop, rep, "spin0" }, { r, &stop, rep, "spin1" } };
	pthread_t sp[2];
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&sp[i], NULL, fk_spinner, &fa[i]), 0);
	t_sleep_ms(20);
	struct fk_child_args ca = { name, r, rep };
	for (int round = 0; round < 5; round++) {
		pid_t c = t_fork(fk_child, &ca);
		cr_assert_gt(c, 0);
		int st = t_wait(c, 20000);
		T_ASSERT_REPORT_OK(rep);
		cr_assert_eq(st, 0, "child status %d", st);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(sp[i], NULL);
	T_ASSERT_REPORT_OK(rep);
	uint64_t v;
	cr_assert_eq(connreg_get_transport(r, "child", 5, &v), 0);
	cr_assert_eq(v, 999);
	connreg_close(r);
	cr_assert_eq(connreg_unlink(name), 0);
}
