/*
 * Several processes race to create / open one name: exactly one creates it,
 * and all of them end up attached to that same registry.
 */
#include "common.h"

TestSuite(create_race, .fini = t_cleanup_names, .timeout = 120);

#define RACE_N 8
#define RACE_ROUNDS 10

enum race_mode {
	RACE_OPEN_OR_CREATE,   /* everyone calls connreg_open_or_create */
	RACE_CREATE_THEN_OPEN, /* everyone calls connreg_create, then open on -EEXIST */
	RACE_CREATORS_OPENERS, /* half create, half spin on connreg_open until it exists */
	RACE_MIXED_CONFIGS,    /* open_or_create with a different key_max each */
};

struct race_shared {
	t_report_t rep;
	atomic_uint attached;
	atomic_uint registered;
	atomic_int winner; /* index of the creator, -1 before */
	int created[RACE_N];
	int create_rc[RACE_N];
	int open_rc[RACE_N];
	uint64_t open_enoent[RACE_N];
};

struct race_args {
	const char *name;
	struct race_shared *sh;
	t_gate_t *gate;
	int idx;
	int round;
	enum race_mode mode;
	uint64_t capacity;
};

static uint32_t race_key_max(int idx)
{
	return 16 + 8 * (uint32_t)idx;
}

static int race_child(void *p)
{
	struct race_args *a = p;
	struct race_shared *sh = a->sh;
	t_report_t *rep = &sh->rep;
	connreg_config_t cfg = t_cfg(a->capacity, 0, 0);
	if (a->mode == RACE_MIXED_CONFIGS)
		cfg.key_max = race_key_max(a->idx);
	connreg_t *r = NULL;
	int created = 0, rc;

	t_gate_wait(a->gate);
	switch (a->mode) {
	case RACE_OPEN_OR_CREATE:
	case RACE_MIXED_CONFIGS:
		created = -1;
		rc = connreg_open_or_create(a->name, &cfg, &r, &created);
		sh->open_rc[a->idx] = rc;
		T_CHECK(rep, rc == 0, return 1, "round %d proc %d: open_or_create: %d (%s)", a->round,
			a->idx, rc, connreg_strerror(rc));
		T_CHECK(rep, created == 0 || created == 1, return 1, "created = %d", created);
		break;
	case RACE_CREATE_THEN_OPEN:
		rc = connreg_create(a->name, &cfg, &r);
		sh->create_rc[a->idx] = rc;
		T_CHECK(rep, rc == 0 || rc == -EEXIST, return 1, "round %d proc %d: create: %d (%s)",
			a->round, a->idx, rc, connreg_strerror(rc));
		if (rc == 0) {
			created = 1;
		} else {
			rc = connreg_open(a->name, &r);
			sh->open_rc[a->idx] = rc;
			T_CHECK(rep, rc == 0, return 1, "round %d proc %d: open after -EEXIST: %d (%s)",
				a->round, a->idx, rc, connreg_strerror(rc));
		}
		break;
	case RACE_CREATORS_OPENERS:
		if (a->idx % 2 == 0) {
			rc = connreg_create(a->name, &cfg, &r);
			sh->create_rc[a->idx] = rc;
			T_CHECK(rep, rc == 0 || rc == -EEXIST, return 1, "round %d proc %d: create: %d (%s)",
				a->round, a->idx, rc, connreg_strerror(rc));
			if (rc == 0) {
				created = 1;
				break;
			}
		}
		/* openers: -ENOENT until the creator's shm_open; then it must open
		 * (waiting for initialisation), never -EPROTO */
		for (uint64_t end = t_now_ms() + 10000;;) {
			rc = connreg_open(a->name, &r);
			if (rc != -ENOENT || t_now_ms() > end)
				break;
			sh->open_enoent[a->idx]++;
			sched_yield();
		}
		sh->open_rc[a->idx] = rc;
		T_CHECK(rep, rc == 0, return 1, "round %d proc %d: open racing with create: %d (%s)",
			a->round, a->idx, rc, connreg_strerror(rc));
		break;
	}
	sh->created[a->idx] = created;
	if (created)
		atomic_store(&sh->winner, a->idx);
	T_CHECK(rep, t_barrier(&sh->attached, RACE_N, 20000) == 0, return 1, "attach barrier timeout");

	/* everyone registers its own id ... */
	char id[32];
	size_t len = t_sid(id, sizeof id, "proc-", (uint64_t)a->idx);
	rc = connreg_register(r, id, len, t_enc((uint32_t)a->idx, (uint32_t)a->idx, (uint32_t)a->round));
	T_CHECK(rep, rc == 0, return 1, "proc %d register: %d (%s)", a->idx, rc, connreg_strerror(rc));
	T_CHECK(rep, t_barrier(&sh->registered, RACE_N, 20000) == 0, return 1,
		"register barrier timeout");

	/* ... and then sees everyone's */
	for (int j = 0; j < RACE_N; j++) {
		uint64_t v = 0;
		len = t_sid(id, sizeof id, "proc-", (uint64_t)j);
		rc = connreg_get_transport(r, id, len, &v);
		T_CHECK(rep, rc == 0, return 1, "round %d: proc %d does not see proc %d's id: %d",
			a->round, a->idx, j, rc);
		T_CHECK(rep, v == t_enc((uint32_t)j, (uint32_t)j, (uint32_t)a->round), return 1,
			"round %d: proc %d sees proc %d's id as %#" PRIx64, a->round, a->idx, j, v);
	}

	if (a->mode == RACE_MIXED_CONFIGS) {
		/* the creator's key_max applies to every process */
		int w = atomic_load(&sh->winner);
		T_CHECK(rep, w >= 0 && w < RACE_N, return 1, "no winner recorded");
		uint32_t km = race_key_max(w);
		char big[128];
		memset(big, 'b', sizeof big);
		big[0] = (char)('A' + a->idx);
		rc = connreg_register(r, big, km, 1);
		T_CHECK(rep, rc == 0, return 1, "proc %d: id of the creator's key_max %u: %d", a->idx,
			km, rc);
		rc = connreg_register(r, big, km + 1, 1);
		T_CHECK(rep, rc == -ENAMETOOLONG, return 1,
			"proc %d: id of creator's key_max+1 (%u): %d", a->idx, km + 1, rc);
	}
	connreg_close(r);
	return 0;
}

static void run_race(const char *tag, enum race_mode mode, int rounds, uint64_t capacity)
{
	struct race_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	for (int round = 0; round < rounds; round++) {
		char name[T_NAME_BUF];
		t_name(name, tag);
		memset(sh, 0, sizeof *sh);
		atomic_store(&sh->winner, -1);
		t_gate_t gate;
		cr_assert_eq(t_gate_init(&gate), 0);
		struct race_args args[RACE_N];
		pid_t pids[RACE_N];
		for (int i = 0; i < RACE_N; i++) {
			args[i] = (struct race_args){ name, sh, &gate, i, round, mode, capacity };
			pids[i] = t_fork(race_child, &args[i]);
			cr_assert_gt(pids[i], 0);
		}
		t_gate_open(&gate);
		int st[RACE_N];
		for (int i = 0; i < RACE_N; i++)
			st[i] = t_wait(pids[i], 60000);
		T_ASSERT_REPORT_OK(&sh->rep);
		int ncreated = 0;
		for (int i = 0; i < RACE_N; i++) {
			cr_assert_eq(st[i], 0, "round %d: proc %d status %d", round, i, st[i]);
			ncreated += sh->created[i] == 1;
		}
		cr_assert_eq(ncreated, 1, "round %d: %d processes report created", round, ncreated);
		if (mode == RACE_CREATE_THEN_OPEN || mode == RACE_CREATORS_OPENERS) {
			int nok = 0;
			for (int i = 0; i < RACE_N; i++)
				nok += sh->create_rc[i] == 0 && sh->created[i] == 1;
			cr_assert_eq(nok, 1);
		}

		uint64_t enoent = 0;
		int winner = atomic_load(&sh->winner);
		for (int i = 0; i < RACE_N; i++)
			enoent += sh->open_enoent[i];
		cr_log_info("%s round %d: proc %d created; openers saw -ENOENT %" PRIu64 " times", tag,
			    round, winner, enoent);

		/* the parent sees the same registry */
		connreg_t *r = NULL;
		cr_assert_eq(connreg_open(name, &r), 0);
		for (int j = 0; j < RACE_N; j++) {
			char id[32];
			uint64_t v;
			size_t len = t_sid(id, sizeof id, "proc-", (uint64_t)j);
			cr_assert_eq(connreg_get_transport(r, id, len, &v), 0);
			cr_assert_eq(v, t_enc((uint32_t)j, (uint32_t)j, (uint32_t)round));
		}
		connreg_close(r);
		cr_assert_eq(connreg_unlink(name), 0);
	}
	munmap(sh, sizeof *sh);
}

Test(create_race, open_or_create_race_has_exactly_one_creator)
{
	run_race("race-ooc", RACE_OPEN_OR_CREATE, RACE_ROUNDS, 64);
}

Test(create_race, create_race_has_exactly_one_winner_and_losers_open_it)
{
	run_race("race-cto", RACE_CREATE_THEN_OPEN, RACE_ROUNDS, 64);
}

Test(create_race, open_racing_with_large_create_waits_and_never_sees_EPROTO)
{
	/* a big registry takes the creator a while to initialise */
	run_race("race-big", RACE_CREATORS_OPENERS, 5, 200000);
}

Test(create_race, open_racing_with_small_create_waits_and_never_sees_EPROTO)
{
	run_race("race-small", RACE_CREATORS_OPENERS, RACE_ROUNDS, 16);
}

Test(create_race, open_or_create_with_different_configs_all_use_the_creators)
{
	run_race("race-cfg", RACE_MIXED_CONFIGS, RACE_ROUNDS, 64);
}

/* ------------------------------------------------------------------ */
/* a creator stopped while it initialises                              */
/* ------------------------------------------------------------------ */

struct slow_shared {
	t_report_t rep;
	atomic_int opened;
	int open_rc;
	uint64_t open_ms;
};

struct slow_args {
	const char *name;
	struct slow_shared *sh;
	t_gate_t *gate;
	uint64_t capacity;
};

static int slow_creator(void *p)
{
	struct slow_args *a = p;
	connreg_config_t cfg = t_cfg(a->capacity, 0, 0);
	connreg_t *r = NULL;
	t_gate_wait(a->gate);
	int rc = connreg_create(a->name, &cfg, &r);
	T_CHECK(&a->sh->rep, rc == 0, return 1, "creator: %d (%s)", rc, connreg_strerror(rc));
	rc = connreg_register(r, "creator", 7, 4242);
	T_CHECK(&a->sh->rep, rc == 0, return 1, "creator register: %d", rc);
	connreg_close(r);
	return 0;
}

static int slow_opener(void *p)
{
	struct slow_args *a = p;
	connreg_t *r = NULL;
	uint64_t t0 = t_now_ms();
	int rc = connreg_open(a->name, &r);
	a->sh->open_ms = t_now_ms() - t0;
	a->sh->open_rc = rc;
	atomic_store(&a->sh->opened, 1);
	if (rc == 0)
		connreg_close(r);
	return 0;
}

/* Start a creator and SIGSTOP it as soon as its segment shows up. */
static pid_t start_and_stop_creator(struct slow_args *a, const char *name)
{
	char path[T_NAME_BUF + 16];
	snprintf(path, sizeof path, "/dev/shm%s", name);
	t_gate_t gate;
	cr_assert_eq(t_gate_init(&gate), 0);
	a->gate = &gate;
	pid_t c = t_fork(slow_creator, a);
	cr_assert_gt(c, 0);
	t_gate_open(&gate);
	struct stat st;
	uint64_t end = t_now_ms() + 10000;
	while (stat(path, &st) != 0 && t_now_ms() < end)
		;
	kill(c, SIGSTOP);
	cr_assert_eq(stat(path, &st), 0, "creator's segment %s never appeared", path);
	return c;
}

Test(create_race, open_waits_for_a_creator_stopped_while_initialising)
{
	/*
	 * The stop lands inside the creator's initialisation only sometimes
	 * (otherwise the open just succeeds at once); when it does, the open
	 * must wait for it rather than fail.
	 */
	struct slow_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	int caught = 0;
	for (int round = 0; round < 30; round++) {
		char name[T_NAME_BUF];
		t_name(name, "slowc");
		memset(sh, 0, sizeof *sh);
		struct slow_args a = { name, sh, NULL, round & 1 ? 16 : 200000 };
		pid_t c = start_and_stop_creator(&a, name);
		pid_t o = t_fork(slow_opener, &a);
		cr_assert_gt(o, 0);
		/* give the opener CONNREG_OPEN_WAIT_MS / 4 with the creator stopped */
		uint64_t end = t_now_ms() + CONNREG_OPEN_WAIT_MS / 4;
		while (!atomic_load(&sh->opened) && t_now_ms() < end)
			t_sleep_ms(1);
		int returned_while_stopped = atomic_load(&sh->opened);
		kill(c, SIGCONT);
		int os = t_wait(o, 30000), cs = t_wait(c, 30000);
		T_ASSERT_REPORT_OK(&sh->rep);
		cr_assert_eq(cs, 0, "creator status %d", cs);
		cr_assert_eq(os, 0, "opener status %d", os);
		cr_assert_eq(sh->open_rc, 0,
			     "open while the creator was stopped: %d (%s) after %" PRIu64 " ms",
			     sh->open_rc, connreg_strerror(sh->open_rc), sh->open_ms);
		if (!returned_while_stopped)
			caught++;
		connreg_t *r = NULL;
		uint64_t v;
		cr_assert_eq(connreg_open(name, &r), 0);
		cr_assert_eq(connreg_get_transport(r, "creator", 7, &v), 0);
		cr_assert_eq(v, 4242);
		connreg_close(r);
		cr_assert_eq(connreg_unlink(name), 0);
	}
	cr_log_info("%d of 30 creators were stopped while initialising", caught);
}

Test(create_race, open_of_a_creator_that_never_finishes_fails_in_bounded_time)
{
	struct slow_shared *sh = t_shared(sizeof *sh);
	cr_assert_not_null(sh);
	for (int round = 0; round < 2; round++) {
		char name[T_NAME_BUF];
		t_name(name, "deadc");
		memset(sh, 0, sizeof *sh);
		struct slow_args a = { name, sh, NULL, 200000 };
		pid_t c = start_and_stop_creator(&a, name);
		kill(c, SIGKILL); /* it never finishes (unless it already had) */
		int cs = t_wait(c, 10000);
		cr_assert(cs == T_WAIT_SIGNALED + SIGKILL || cs == 0, "creator status %d", cs);
		pid_t o = t_fork(slow_opener, &a);
		cr_assert_gt(o, 0);
		int os = t_wait(o, 30000);
		cr_assert_eq(os, 0, "opener status %d", os);
		cr_log_info("round %d: open returned %d after %" PRIu64 " ms", round, sh->open_rc,
			    sh->open_ms);
		/* 0 when the creator was stopped after it finished, else -EPROTO */
		cr_assert(sh->open_rc == 0 || sh->open_rc == -EPROTO, "open: %d (%s)", sh->open_rc,
			  connreg_strerror(sh->open_rc));
		cr_assert_leq(sh->open_ms, (uint64_t)CONNREG_OPEN_WAIT_MS + 2000,
			      "open took %" PRIu64 " ms", sh->open_ms);
		connreg_unlink(name);
	}
}
