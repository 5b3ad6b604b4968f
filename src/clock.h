/*
 * clock.h: the few time helpers the library needs (bounded waits only;
 * nothing on the lookup path reads a clock).
 */
#ifndef CONNREG_CLOCK_H
#define CONNREG_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in milliseconds. */
static inline uint64_t cr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Absolute deadline `ms` from now on `clock` (pthread and futex timeouts). */
static inline void cr_deadline_after(struct timespec *d, clockid_t clock, unsigned ms)
{
	clock_gettime(clock, d);
	d->tv_sec += ms / 1000;
	d->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (d->tv_nsec >= 1000000000L) {
		d->tv_sec++;
		d->tv_nsec -= 1000000000L;
	}
}

#endif /* CONNREG_CLOCK_H */
