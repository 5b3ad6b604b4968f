/*
 * wait_latency.c: how long a change made in one process takes to wake a
 * connreg_wait_transport waiter in another (issue 5's wake-up latency).
 *
 * The writer stores its CLOCK_MONOTONIC time as the new transport; the
 * waiter, asleep in the futex, takes the difference when it wakes. Two
 * placements: writer and waiter on different CPUs, and on the same CPU.
 * Output: a table and one RESULT line per placement (median, p99, max).
 *
 * Usage: connreg-bench-wait [rounds]   (default 300 per placement)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "connreg.h"

struct shared {
	atomic_uint ready;
	atomic_uint done;
	uint64_t lat_ns[4096];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int waiter(const char *name, struct shared *sh, int rounds, int cpu)
{
	connreg_t *r;
	uint64_t seen = 0, v;

	pin(cpu);
	if (connreg_open(name, &r) != 0)
		return 1;
	atomic_store(&sh->ready, 1);
	for (int i = 0; i < rounds; i++) {
		if (connreg_wait_transport(r, "conn", 4, seen, &v, 5000) != 0)
			return 2;
		sh->lat_ns[i] = now_ns() - v;
		seen = v;
		atomic_store(&sh->done, (unsigned)i + 1);
	}
	connreg_close(r);
	return 0;
}

static int run(const char *label, int wcpu, int rcpu, int rounds)
{
	char name[64];
	connreg_config_t cfg = { .capacity = 16 };
	connreg_t *r;
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int st;

	if (sh == MAP_FAILED)
		return 1;
	snprintf(name, sizeof(name), "/connreg-bench-wait-%d", (int)getpid());
	connreg_unlink(name);
	if (connreg_create(name, &cfg, &r) != 0 || connreg_register(r, "conn", 4, 0) != 0)
		return 1;
	pid_t pid = fork();
	if (pid == 0)
		_exit(waiter(name, sh, rounds, rcpu));
	pin(wcpu);
	while (!atomic_load(&sh->ready))
		usleep(100);
	for (int i = 0; i < rounds; i++) {
		/* Give the waiter time to fall asleep in the futex. */
		usleep(2000);
		connreg_update_transport(r, "conn", 4, now_ns());
		while (atomic_load(&sh->done) < (unsigned)i + 1 && waitpid(pid, &st, WNOHANG) == 0)
			sched_yield();
	}
	waitpid(pid, &st, 0);
	connreg_close(r);
	connreg_unlink(name);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "wait_latency: waiter failed (%d)\n", st);
		return 1;
	}
	qsort(sh->lat_ns, (size_t)rounds, sizeof(uint64_t), cmp_u64);
	double p50 = sh->lat_ns[rounds / 2] / 1e3, p99 = sh->lat_ns[rounds * 99 / 100] / 1e3;
	double mx = sh->lat_ns[rounds - 1] / 1e3;
	printf("%-22s %10.1f %10.1f %10.1f\n", label, p50, p99, mx);
	printf("RESULT scenario=wait_wakeup contender=connreg placement=%s rounds=%d "
	       "p50_us=%.1f p99_us=%.1f max_us=%.1f\n", label, rounds, p50, p99, mx);
	munmap(sh, sizeof(*sh));
	return 0;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 300;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (rounds < 10 || rounds > 4096) {
		fprintf(stderr, "usage: %s [rounds 10..4096]\n", argv[0]);
		return 2;
	}
	printf("connreg_wait_transport wake-up latency (writer change -> waiter returns), us\n");
	printf("%-22s %10s %10s %10s\n", "placement", "p50", "p99", "max");
	if (cpus >= 2 && run("cross-cpu", 0, 1, rounds))
		return 1;
	if (run("same-cpu", 0, 0, rounds))
		return 1;
	return 0;
}
