/*
 * memory_latency.c: what a reader pays for the segment's memory (issue
 * #15): the first lookups after open with and without
 * CONNREG_OPEN_PREFAULT, and steady-state random hits, on whatever pages
 * the segment directory gives (4 KiB in /dev/shm; 2 MiB with
 * CONNREG_SHM_DIR on a tmpfs mounted huge=always or on hugetlbfs).
 *
 * A child process creates and fills a registry of N ids (16-byte keys).
 * Then, for each mode, REPS fresh processes each open it and time:
 *   open        connreg_open_ex, including the prefault;
 *   first       the thread's first lookup (claims a reader slot);
 *   next 1000   the next 1000 lookups of random ids, each timed: mean, p99,
 *               max, and the page faults they took (getrusage);
 *   steady      after one pass over every id: random hits, ns per lookup.
 * Each figure is the median over the REPS processes.
 *
 * Usage: connreg-bench-memory [N] [REPS]   (defaults 1000000, 5)
 *        CONNREG_SHM_DIR=/mnt/huge connreg-bench-memory ...  (2 MiB pages)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "connreg.h"

#define KEY_LEN 16
#define COLD 1000
#define MAX_REPS 15

struct sample {
	double open_ms, first_us, cold_mean_ns, cold_p99_ns, cold_max_ns, steady_ns;
	long cold_faults, open_faults;
	int ok;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void key(uint8_t *k, uint64_t i)
{
	memset(k, 'k', KEY_LEN);
	memcpy(k, &i, sizeof(i));
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static long minflt(void)
{
	struct rusage r;

	getrusage(RUSAGE_THREAD, &r);
	return r.ru_minflt + r.ru_majflt;
}

static int fill(const char *name, uint64_t n)
{
	connreg_config_t cfg = { .capacity = n, .key_max = KEY_LEN, .max_threads = 64 };
	uint8_t k[KEY_LEN];
	connreg_t *reg;
	int rc = connreg_create(name, &cfg, &reg);

	if (rc) {
		fprintf(stderr, "create %s: %s\n", name, connreg_strerror(rc));
		return 1;
	}
	for (uint64_t i = 0; i < n; i++) {
		key(k, i);
		rc = connreg_register(reg, k, KEY_LEN, i + 1);
		if (rc) {
			fprintf(stderr, "register: %s\n", connreg_strerror(rc));
			return 1;
		}
	}
	connreg_close(reg);
	return 0;
}

/* One fresh process's measurements. */
static void measure(const char *name, uint64_t n, uint32_t flags, uint64_t seed,
		    struct sample *out)
{
	connreg_open_opts_t o = { .size = sizeof(o), .flags = flags };
	uint64_t lat[COLD], t0, v, s = seed | 1, sink = 0;
	uint8_t k[KEY_LEN];
	connreg_t *reg;
	long f0;

	memset(lat, 0, sizeof(lat)); /* its stack pages: not the registry's faults */
	f0 = minflt();
	t0 = now_ns();
	if (connreg_open_ex(name, &o, &reg) != 0)
		return;
	out->open_ms = (double)(now_ns() - t0) / 1e6;
	out->open_faults = minflt() - f0;

	key(k, rnd(&s) % n);
	t0 = now_ns();
	connreg_get_transport(reg, k, KEY_LEN, &v);
	out->first_us = (double)(now_ns() - t0) / 1e3;

	f0 = minflt();
	for (int i = 0; i < COLD; i++) {
		key(k, rnd(&s) % n);
		t0 = now_ns();
		connreg_get_transport(reg, k, KEY_LEN, &v);
		lat[i] = now_ns() - t0;
		sink += v;
	}
	out->cold_faults = minflt() - f0;
	double sum = 0;
	for (int i = 0; i < COLD; i++)
		sum += (double)lat[i];
	qsort(lat, COLD, sizeof(lat[0]), cmp_u64);
	out->cold_mean_ns = sum / COLD;
	out->cold_p99_ns = (double)lat[COLD * 99 / 100];
	out->cold_max_ns = (double)lat[COLD - 1];

	/* Touch everything once, then random hits. */
	for (uint64_t i = 0; i < n; i++) {
		key(k, i);
		connreg_get_transport(reg, k, KEY_LEN, &v);
		sink += v;
	}
	uint64_t m = n < 2000000 ? 2000000 : n;
	t0 = now_ns();
	for (uint64_t i = 0; i < m; i++) {
		key(k, rnd(&s) % n);
		connreg_get_transport(reg, k, KEY_LEN, &v);
		sink += v;
	}
	out->steady_ns = (double)(now_ns() - t0) / (double)m;
	out->ok = sink != 0;
	connreg_close(reg);
}

static double median(double *x, int n)
{
	qsort(x, (size_t)n, sizeof(*x), cmp_d);
	return n % 2 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 1000000;
	int reps = argc > 2 ? atoi(argv[2]) : 5;
	const char *dir = getenv("CONNREG_SHM_DIR");
	char name[64];
	int st;

	if (n == 0 || reps < 1 || reps > MAX_REPS) {
		fprintf(stderr, "usage: connreg-bench-memory [N] [REPS (1..%d)]\n", MAX_REPS);
		return 2;
	}
	snprintf(name, sizeof(name), "/crbench-mem-%ld", (long)getpid());
	connreg_unlink(name);
	pid_t pid = fork();
	if (pid == 0)
		_exit(fill(name, n));
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return 1;

	struct sample *sh = mmap(NULL, sizeof(*sh) * MAX_REPS, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	printf("N=%llu ids (16-byte keys), %d fresh processes per mode, directory %s\n",
	       (unsigned long long)n, reps, dir && *dir ? dir : "/dev/shm");
	printf("%-9s %9s %9s %9s %9s %9s %9s %7s %7s\n", "mode", "open ms", "first us",
	       "1k mean", "1k p99", "1k max", "steady", "flt/1k", "flt@open");
	for (int mode = 0; mode < 2; mode++) {
		uint32_t flags = mode ? CONNREG_OPEN_PREFAULT : 0;
		double a[8][MAX_REPS];

		memset(sh, 0, sizeof(*sh) * MAX_REPS);
		for (int r = 0; r < reps; r++) {
			pid = fork();
			if (pid == 0) {
				measure(name, n, flags, 0x9E3779B97F4A7C15ull * (uint64_t)(r + 1),
					&sh[r]);
				_exit(0);
			}
			waitpid(pid, &st, 0);
			if (!sh[r].ok) {
				fprintf(stderr, "measuring process %d failed\n", r);
				connreg_unlink(name);
				return 1;
			}
			a[0][r] = sh[r].open_ms;
			a[1][r] = sh[r].first_us;
			a[2][r] = sh[r].cold_mean_ns;
			a[3][r] = sh[r].cold_p99_ns;
			a[4][r] = sh[r].cold_max_ns;
			a[5][r] = sh[r].steady_ns;
			a[6][r] = (double)sh[r].cold_faults;
			a[7][r] = (double)sh[r].open_faults;
		}
		printf("%-9s %9.1f %9.1f %9.0f %9.0f %9.0f %9.1f %7.0f %7.0f\n",
		       mode ? "prefault" : "plain", median(a[0], reps), median(a[1], reps),
		       median(a[2], reps), median(a[3], reps), median(a[4], reps),
		       median(a[5], reps), median(a[6], reps), median(a[7], reps));
	}
	printf("(times: medians over the processes; 1k = the 1000 random hits right after the "
	       "first; steady = ns per random hit after a full pass)\n");
	connreg_unlink(name);
	return 0;
}
