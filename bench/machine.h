/*
 * machine.h: a description of the machine a run was measured on.
 */
#ifndef BENCH_MACHINE_H
#define BENCH_MACHINE_H

#include <stdbool.h>
#include <stdint.h>

struct machine {
	char cpu_model[128];
	unsigned cpus_online;
	unsigned cpus_allowed;
	char kernel[320];	/* uname -srvm */
	long page_size;
	uint64_t mem_total_kib;
	char cache_l1d[16], cache_l2[16], cache_l3[16];
	char clocksource[32];
	char thp_shmem[64];	/* /sys/kernel/mm/transparent_hugepage/shmem_enabled */
	bool hypervisor;
	char compiler[64];
	double tsc_hz;
	double timer_overhead_ns;
	double gettime_ns;
	double rdtsc_ns;
	double tsc_granularity_ns;
	char date[40];		/* UTC, ISO 8601 */
	double loadavg_start;	/* 1-minute load average when the run started */
};

void machine_describe(struct machine *m);

/* Aggregate CPU time from /proc/stat (all CPUs), in clock ticks. */
struct cpu_times {
	uint64_t busy;		/* user + nice + system + irq + softirq */
	uint64_t steal;		/* taken by the hypervisor for other guests */
	uint64_t total;
};

bool cpu_times_read(struct cpu_times *t);

/* Over the interval a..b: CPUs kept busy on average, and the steal share. */
void cpu_times_delta(const struct cpu_times *a, const struct cpu_times *b, unsigned cpus,
		     double *busy_cpus, double *steal_pct);

/* The 1-minute load average (/proc/loadavg), NaN when unknown. */
double loadavg1(void);

#endif /* BENCH_MACHINE_H */
