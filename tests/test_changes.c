/*
 * test_changes.c: the change feed (connreg.h, "Change feed"): a mirror
 * that walks once and then drains dirty shards ends up equal to the
 * registry after any history, writers in other processes included, and a
 * writer killed before it marked its change is marked by its recoverer.
 */
#include "common.h"

#include <criterion/criterion.h>

#include "fault.h"

#define CH_IDS 400

struct ch_mirror {
	connreg_t *r;
	uint32_t shard_of[CH_IDS];	/* learnt from the walks */
	bool present[CH_IDS];
	uint64_t transport[CH_IDS];
	uint32_t cur_shard;
	unsigned drained;
};

static int ch_id_index(const void *id, size_t len)
{
	char buf[32];

	if (len >= sizeof buf)
		return -1;
	memcpy(buf, id, len);
	buf[len] = '\0';
	return strncmp(buf, "m-", 2) == 0 ? atoi(buf + 2) : -1;
}

static int ch_put(const void *id, size_t len, uint64_t transport, void *arg)
{
	struct ch_mirror *m = arg;
	int i = ch_id_index(id, len);

	if (i < 0 || i >= CH_IDS)
		return 1;
	m->present[i] = true;
	m->transport[i] = transport;
	m->shard_of[i] = m->cur_shard;
	return 0;
}

/* Re-read one shard whole: forget what the mirror had there, then put what is there now. */
static int ch_reread(uint32_t shard, void *arg)
{
	struct ch_mirror *m = arg;

	for (int i = 0; i < CH_IDS; i++)
		if (m->present[i] && m->shard_of[i] == shard)
			m->present[i] = false;
	m->cur_shard = shard;
	m->drained++;
	return connreg_foreach_shard(m->r, shard, ch_put, m);
}

static void ch_full_walk(struct ch_mirror *m)
{
	uint32_t n = connreg_shards(m->r);

	memset(m->present, 0, sizeof m->present);
	for (uint32_t s = 0; s < n; s++)
		cr_assert_eq(ch_reread(s, m), 0);
}

static void ch_assert_equal(struct ch_mirror *m)
{
	struct ch_mirror truth;

	memset(&truth, 0, sizeof truth);
	truth.r = m->r;
	ch_full_walk(&truth);
	for (int i = 0; i < CH_IDS; i++) {
		cr_assert_eq(m->present[i], truth.present[i], "id m-%d: mirror %d, registry %d", i,
			     m->present[i], truth.present[i]);
		if (truth.present[i])
			cr_assert_eq(m->transport[i], truth.transport[i], "id m-%d transport", i);
	}
}

static int ch_writer(void *arg)
{
	const char *name = arg;
	connreg_t *r;
	uint64_t s = (uint64_t)getpid() * 7919u;
	char id[16];

	if (connreg_open(name, &r) != 0)
		return 10;
	uint64_t end = t_now_ms() + 700;
	while (t_now_ms() < end) {
		int i = (int)(t_rand(&s) % CH_IDS);
		int len = snprintf(id, sizeof id, "m-%d", i);
		int rc;

		switch (t_rand(&s) % 4) {
		case 0:
			rc = connreg_unregister(r, id, (size_t)len);
			break;
		case 1:
			rc = connreg_update_transport(r, id, (size_t)len, t_rand(&s));
			rc = rc == -ENOENT ? 0 : rc;
			break;
		default:
			rc = connreg_register(r, id, (size_t)len, t_rand(&s));
			break;
		}
		if (rc != 0)
			return 11;
	}
	connreg_close(r);
	return 0;
}

Test(changes, each_change_marks_its_shard_once_until_drained)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(CH_IDS, 0, 8);
	struct ch_mirror m;

	memset(&m, 0, sizeof m);
	t_name(name, "ch-basic");
	cr_assert_eq(connreg_create(name, &cfg, &m.r), 0);
	cr_assert_gt(connreg_shards(m.r), 0);
	cr_assert_eq(connreg_shards(NULL), 0);
	cr_assert_eq(connreg_changes_drain(m.r, NULL, NULL), -EINVAL);
	cr_assert_eq(connreg_foreach_shard(m.r, connreg_shards(m.r), ch_put, &m), -EINVAL);

	ch_full_walk(&m);
	cr_assert_eq(connreg_changes_drain(m.r, ch_reread, &m), 0);
	cr_assert_eq(m.drained - connreg_shards(m.r), 0, "a new registry has no change");

	cr_assert_eq(connreg_register(m.r, "m-7", 3, 70), 0);
	m.drained = 0;
	cr_assert_eq(connreg_changes_drain(m.r, ch_reread, &m), 0);
	cr_assert_eq(m.drained, 1, "one register, one dirty shard");
	cr_assert(m.present[7] && m.transport[7] == 70);

	m.drained = 0;
	cr_assert_eq(connreg_changes_drain(m.r, ch_reread, &m), 0);
	cr_assert_eq(m.drained, 0, "drained shards stay clean");

	cr_assert_eq(connreg_update_transport(m.r, "m-7", 3, 71), 0);
	cr_assert_eq(connreg_changes_drain(m.r, ch_reread, &m), 0);
	cr_assert_eq(m.transport[7], 71);
	cr_assert_eq(connreg_unregister(m.r, "m-7", 3), 0);
	cr_assert_eq(connreg_changes_drain(m.r, ch_reread, &m), 0);
	cr_assert(!m.present[7], "the unregister reached the mirror");
	cr_assert_eq(connreg_unregister(m.r, "m-7", 3), 0);
	m.drained = 0;
	cr_assert_eq(connreg_changes_drain(m.r, ch_reread, &m), 0);
	cr_assert_eq(m.drained, 0, "unregistering an absent id changes nothing");
	connreg_close(m.r);
	connreg_unlink(name);
}

static int ch_stop_after_first(uint32_t shard, void *arg)
{
	uint32_t *seen = arg;

	*seen = shard;
	return 42;
}

Test(changes, a_stopped_drain_leaves_the_rest_marked)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(CH_IDS, 0, 8);
	struct ch_mirror m;
	char id[16];

	memset(&m, 0, sizeof m);
	t_name(name, "ch-stop");
	cr_assert_eq(connreg_create(name, &cfg, &m.r), 0);
	for (int i = 0; i < 50; i++) {
		int len = snprintf(id, sizeof id, "m-%d", i);
		cr_assert_eq(connreg_register(m.r, id, (size_t)len, (uint64_t)i), 0);
	}
	uint32_t first = UINT32_MAX;
	cr_assert_eq(connreg_changes_drain(m.r, ch_stop_after_first, &first), 42);
	cr_assert_lt(first, connreg_shards(m.r));
	/* Everything, the shard that stopped the drain included, is still there to drain. */
	cr_assert_eq(connreg_changes_drain(m.r, ch_reread, &m), 0);
	for (int i = 0; i < 50; i++)
		cr_assert(m.present[i] && m.transport[i] == (uint64_t)i, "id m-%d", i);
	connreg_close(m.r);
	connreg_unlink(name);
}

Test(changes, mirror_of_concurrent_writer_processes_ends_equal)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(CH_IDS, 0, 16);
	struct ch_mirror m;
	pid_t w[3];

	memset(&m, 0, sizeof m);
	t_name(name, "ch-mirror");
	cr_assert_eq(connreg_create(name, &cfg, &m.r), 0);
	for (int k = 0; k < 3; k++)
		w[k] = t_fork(ch_writer, name);
	/* A mirror that starts while the writers run: walk once, then drain. */
	t_sleep_ms(50);
	ch_full_walk(&m);
	bool running = true;
	while (running) {
		cr_assert_eq(connreg_changes_drain(m.r, ch_reread, &m), 0);
		running = false;
		for (int k = 0; k < 3; k++)
			running |= waitpid(w[k], NULL, WNOHANG) == 0;
	}
	for (int k = 0; k < 3; k++)
		t_wait(w[k], 10000);
	cr_assert_eq(connreg_changes_drain(m.r, ch_reread, &m), 0);
	ch_assert_equal(&m);
	cr_assert_eq(connreg_check(m.r, NULL, NULL), 0);
	connreg_close(m.r);
	connreg_unlink(name);
}

static int ch_ignore(uint32_t shard, void *arg)
{
	(void)shard;
	(void)arg;
	return 0;
}

static int ch_update_dying(void *arg)
{
	const char *name = arg;
	connreg_t *r;
	uint64_t v;

	if (connreg_open(name, &r) != 0)
		return 10;
	connreg_get_transport(r, "m-1", 3, &v);	/* claim the slot first */
	cr_fault_arm(-1);
	connreg_update_transport(r, "m-1", 3, 5);
	long n = cr_fault_passed();
	/* Take that update's mark ourselves, so only the dying update is left to mark. */
	connreg_changes_drain(r, ch_ignore, NULL);
	/* The last point follows the wake-up and the mark; die at the one before. */
	cr_fault_arm(n - 1);
	connreg_update_transport(r, "m-1", 3, 6);
	return 12;	/* not reached */
}

Test(changes, change_of_a_writer_killed_before_marking_it_is_marked_by_recovery)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(CH_IDS, 0, 8);
	struct ch_mirror m;

	memset(&m, 0, sizeof m);
	t_name(name, "ch-dead");
	cr_assert_eq(connreg_create(name, &cfg, &m.r), 0);
	cr_assert_eq(connreg_register(m.r, "m-1", 3, 1), 0);
	ch_full_walk(&m);
	cr_assert_eq(connreg_changes_drain(m.r, ch_reread, &m), 0);

	int st = t_wait(t_fork(ch_update_dying, name), 10000);
	cr_assert_eq(st, T_WAIT_SIGNALED + SIGKILL, "writer status %d", st);
	/* The dying update landed but was never marked... */
	m.drained = 0;
	cr_assert_eq(connreg_changes_drain(m.r, ch_reread, &m), 0);
	cr_assert_eq(m.drained, 0, "nothing marked before recovery");
	uint64_t v;
	cr_assert_eq(connreg_get_transport(m.r, "m-1", 3, &v), 0);
	cr_assert_eq(v, 6, "the dead writer's update landed");
	/* ...until someone recovers its slot (a daemon's periodic check does). */
	cr_assert_eq(connreg_check(m.r, NULL, NULL), 0);
	cr_assert_eq(connreg_changes_drain(m.r, ch_reread, &m), 0);
	cr_assert(m.present[1] && m.transport[1] == 6, "mirror has %llu",
		  (unsigned long long)m.transport[1]);
	connreg_close(m.r);
	connreg_unlink(name);
}
