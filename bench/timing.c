/*
 * timing.c: TSC calibration against CLOCK_MONOTONIC, and the cost of the
 * timer itself.
 */
#include <errno.h>
#include <string.h>

#include "timing.h"

struct bench_clock bench_clock;

void sleep_ns(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / 1000000000ull),
		.tv_nsec = (long)(ns % 1000000000ull),
	};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static uint64_t timer_overhead(void)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < 200000; i++) {
		uint64_t a = tsc_begin();
		uint64_t b = tsc_end();

		if (b - a < best)
			best = b - a;
	}
	return best;
}

/*
 * Some hypervisors make the TSC advance in coarse steps (26 ticks = 10 ns
 * on the KVM guest this was written on): report the smallest step that
 * shows up in at least 1% of back-to-back reads.
 */
static void tsc_step(uint64_t *step, uint64_t *cost)
{
	enum { READS = 100000, BINS = 4096 };
	static uint32_t hist[BINS];
	uint64_t t0 = tsc_now(), prev = t0, t = t0, nonzero = 0;

	memset(hist, 0, sizeof(hist));
	for (int i = 0; i < READS; i++) {
		t = tsc_now();
		if (t != prev && t - prev < BINS) {
			hist[t - prev]++;
			nonzero++;
		}
		prev = t;
	}
	*step = 1;
	for (unsigned d = 1; d < BINS; d++) {
		if (hist[d] * 100ull >= nonzero) {
			*step = d;
			break;
		}
	}
	*cost = (t - t0) / READS;
}

void timing_init(unsigned calib_ms)
{
	uint64_t n0, n1, t0, t1, g0, g1, step, cost;

	if (calib_ms == 0)
		calib_ms = 50;
	n0 = now_ns();
	t0 = tsc_now();
	do
		n1 = now_ns();
	while (n1 - n0 < (uint64_t)calib_ms * 1000000ull);
	t1 = tsc_now();

	bench_clock.tsc_hz = (double)(t1 - t0) * 1e9 / (double)(n1 - n0);
	bench_clock.ns_per_tick = 1e9 / bench_clock.tsc_hz;
	bench_clock.overhead_ticks = timer_overhead();
	bench_clock.overhead_ns = ticks_to_ns(bench_clock.overhead_ticks);

	tsc_step(&step, &cost);
	bench_clock.granularity_ns = ticks_to_ns(step);
	bench_clock.rdtsc_ns = ticks_to_ns(cost);

	g0 = now_ns();
	for (int i = 0; i < 100000; i++)
		(void)now_ns();
	g1 = now_ns();
	bench_clock.gettime_ns = (double)(g1 - g0) / 100000.0;
}
