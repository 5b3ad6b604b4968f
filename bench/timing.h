/*
 * timing.h: clocks for the harness.
 *
 * Elapsed times and sampled per-operation latencies are read from the TSC
 * (invariant on every x86-64 this runs on; calibrated against
 * CLOCK_MONOTONIC once at start-up). A sampled operation is bracketed by
 * fenced reads, so it is timed alone; the cost of the bracket itself is
 * calibrated and subtracted.
 */
#ifndef BENCH_TIMING_H
#define BENCH_TIMING_H

#include <stdint.h>
#include <time.h>
#include <x86intrin.h>

struct bench_clock {
	double tsc_hz;		 /* TSC ticks per second */
	double ns_per_tick;
	uint64_t overhead_ticks; /* least cost of an empty tsc_begin/tsc_end pair */
	double overhead_ns;
	double gettime_ns;	 /* cost of one clock_gettime(CLOCK_MONOTONIC) */
	double rdtsc_ns;	 /* cost of one back-to-back rdtsc */
	double granularity_ns;	 /* smallest non-zero step between two TSC reads */
};

extern struct bench_clock bench_clock;

/* Calibrate for about calib_ms milliseconds. */
void timing_init(unsigned calib_ms);

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Plain TSC read: for elapsed times over many operations. */
static inline uint64_t tsc_now(void)
{
	return __rdtsc();
}

/* Start of a timed operation: earlier work retires first. */
static inline uint64_t tsc_begin(void)
{
	uint64_t t;

	_mm_lfence();
	t = __rdtsc();
	_mm_lfence();
	return t;
}

/* End of a timed operation: rdtscp waits for it to complete. */
static inline uint64_t tsc_end(void)
{
	unsigned int aux;
	uint64_t t = __rdtscp(&aux);

	_mm_lfence();
	return t;
}

static inline double ticks_to_ns(uint64_t ticks)
{
	return (double)ticks * bench_clock.ns_per_tick;
}

static inline void cpu_relax(void)
{
	_mm_pause();
}

/* Sleep for ns nanoseconds (restarting after signals). */
void sleep_ns(uint64_t ns);

#endif /* BENCH_TIMING_H */
