/*
 * stress_threads.c: threads-only stress, the test that ThreadSanitizer can
 * run (Criterion cannot start under TSan). Writers own disjoint ids and
 * write (id, seq) values with seq rising per id; readers on two handles
 * check every value was written for its id and that no id's seq goes
 * backwards (INV-2, INV-3); a walker runs foreach, bulk lookups and stats
 * meanwhile. At the end the registry must check sound and hold each
 * writer's last write.
 *
 * Usage: stress_threads [seconds]. Exit 0 when every check held.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "connreg.h"

#define WRITERS 2
#define READERS 3
#define IDS_PER_WRITER 96
#define IDS (WRITERS * IDS_PER_WRITER)

static connreg_t *reg_a, *reg_b;
static atomic_int stop;
static atomic_int failures;
/* Last value each writer left for each id; UINT64_MAX: absent. Writer-private until join. */
static uint64_t last[IDS];

#define FAIL(...)                                                              \
	do {                                                                   \
		fprintf(stderr, "stress_threads: " __VA_ARGS__);               \
		fputc('\n', stderr);                                           \
		atomic_fetch_add(&failures, 1);                                \
	} while (0)

static size_t make_id(char *buf, uint32_t i)
{
	return (size_t)snprintf(buf, 32, "stress-%u", i);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *writer(void *arg)
{
	uint32_t w = (uint32_t)(uintptr_t)arg;
	uint32_t seq[IDS_PER_WRITER] = { 0 };
	uint64_t s = 0x9e3779b97f4a7c15ull * (w + 1), cur;
	char id[32];

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint32_t k = (uint32_t)(rnd(&s) % IDS_PER_WRITER), i = w * IDS_PER_WRITER + k;
		size_t n = make_id(id, i);
		uint64_t v = ((uint64_t)i << 32) | ++seq[k];
		int rc;

		switch (rnd(&s) % 4) {
		case 0:
			rc = connreg_register(reg_a, id, n, v);
			if (rc == 0)
				last[i] = v;
			else if (rc != -EAGAIN)
				FAIL("register %u: %s", i, connreg_strerror(rc));
			break;
		case 1:
			rc = connreg_update_transport(reg_a, id, n, v);
			if (rc == 0)
				last[i] = v;
			else if (rc != -ENOENT && rc != -EAGAIN)
				FAIL("update %u: %s", i, connreg_strerror(rc));
			else if (rc == -ENOENT && last[i] != UINT64_MAX)
				FAIL("update %u: ENOENT but the owner registered it", i);
			break;
		case 2:
			rc = connreg_get_transport(reg_a, id, n, &cur);
			if (rc == 0 && cur != last[i])
				FAIL("owner of %u reads %#llx, wrote %#llx", i, (unsigned long long)cur,
				     (unsigned long long)last[i]);
			if (rc == 0) {
				rc = connreg_cas_transport(reg_a, id, n, cur, v, NULL);
				if (rc == 0)
					last[i] = v;
				else if (rc != -EAGAIN)
					FAIL("cas %u: %s", i, connreg_strerror(rc));
			}
			break;
		default:
			if (connreg_unregister(reg_a, id, n) != 0)
				FAIL("unregister %u", i);
			last[i] = UINT64_MAX;
			break;
		}
	}
	return NULL;
}

static void *reader(void *arg)
{
	connreg_t *r = (uintptr_t)arg & 1 ? reg_b : reg_a;
	uint32_t seen[IDS] = { 0 };
	uint64_t s = 0x2545f4914f6cdd1dull + (uintptr_t)arg, v;
	char id[32];

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint32_t i = (uint32_t)(rnd(&s) % IDS);
		int rc = connreg_get_transport(r, id, make_id(id, i), &v);

		if (rc == -ENOENT)
			continue;
		if (rc != 0) {
			FAIL("get %u: %s", i, connreg_strerror(rc));
			continue;
		}
		if ((uint32_t)(v >> 32) != i)
			FAIL("id %u read a value written for id %u", i, (uint32_t)(v >> 32));
		if ((uint32_t)v < seen[i])
			FAIL("id %u went back from seq %u to %u", i, seen[i], (uint32_t)v);
		seen[i] = (uint32_t)v;
	}
	return NULL;
}

static int count_one(const void *id, size_t len, uint64_t tr, void *arg)
{
	char buf[64];

	if (len >= sizeof(buf) || len < 8) {
		FAIL("foreach: odd id length %zu", len);
		return 0;
	}
	memcpy(buf, id, len);
	buf[len] = '\0';
	if ((uint32_t)(tr >> 32) != (uint32_t)strtoul(buf + 7, NULL, 10))
		FAIL("foreach: %s has a value written for id %u", buf, (uint32_t)(tr >> 32));
	++*(unsigned *)arg;
	return 0;
}

static void *walker(void *arg)
{
	char ids[IDS][32];
	const void *ptrs[IDS];
	size_t lens[IDS];
	uint64_t out[IDS];
	int rc[IDS];

	(void)arg;
	for (uint32_t i = 0; i < IDS; i++) {
		lens[i] = make_id(ids[i], i);
		ptrs[i] = ids[i];
	}
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		unsigned n = 0;
		connreg_stats_t st = { .size = sizeof(st) };

		if (connreg_foreach(reg_b, count_one, &n) != 0 || n > IDS)
			FAIL("foreach visited %u ids", n);
		if (connreg_get_transport_bulk(reg_b, IDS, ptrs, lens, out, rc) != 0)
			FAIL("bulk failed");
		for (uint32_t i = 0; i < IDS; i++)
			if (rc[i] == 0 && (uint32_t)(out[i] >> 32) != i)
				FAIL("bulk: id %u got a value written for id %u", i,
				     (uint32_t)(out[i] >> 32));
		if (connreg_stats(reg_b, &st) != 0 || st.live > IDS)
			FAIL("stats");
	}
	return NULL;
}

static void report(const char *problem, void *arg)
{
	(void)arg;
	FAIL("check: %s", problem);
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 2.0;
	pthread_t w[WRITERS], r[READERS], walk;
	connreg_config_t cfg = { .capacity = IDS, .max_threads = 32 };
	char name[64];
	struct timespec nap = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
	int rc;

	snprintf(name, sizeof(name), "/crs-stress-%d", (int)getpid());
	connreg_unlink(name);
	rc = connreg_create(name, &cfg, &reg_a);
	if (!rc)
		rc = connreg_open(name, &reg_b);
	if (rc) {
		fprintf(stderr, "stress_threads: %s\n", connreg_strerror(rc));
		return 1;
	}
	for (int i = 0; i < IDS; i++)
		last[i] = UINT64_MAX;
	for (uintptr_t i = 0; i < WRITERS; i++)
		pthread_create(&w[i], NULL, writer, (void *)i);
	for (uintptr_t i = 0; i < READERS; i++)
		pthread_create(&r[i], NULL, reader, (void *)i);
	pthread_create(&walk, NULL, walker, NULL);
	nanosleep(&nap, NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(w[i], NULL);
	for (int i = 0; i < READERS; i++)
		pthread_join(r[i], NULL);
	pthread_join(walk, NULL);

	/* Final state: each id holds its owner's last write, or is absent. */
	for (uint32_t i = 0; i < IDS; i++) {
		char id[32];
		uint64_t v;
		int g = connreg_get_transport(reg_b, id, make_id(id, i), &v);

		if (last[i] == UINT64_MAX ? g != -ENOENT : (g != 0 || v != last[i]))
			FAIL("final: id %u is %d/%#llx, owner wrote %#llx", i, g,
			     (unsigned long long)v, (unsigned long long)last[i]);
	}
	if (connreg_check(reg_a, report, NULL) != 0)
		FAIL("registry unsound at the end");
	connreg_close(reg_b);
	connreg_close(reg_a);
	connreg_unlink(name);
	printf("stress_threads: %d failures\n", atomic_load(&failures));
	return atomic_load(&failures) ? 1 : 0;
}
