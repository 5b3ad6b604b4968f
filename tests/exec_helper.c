/*
 * exec_helper: the re-executing daemon of tests/test_exec.c (issue #9:
 * execve keeps the pid and the start time, so the reader slots of the
 * image it replaces must not look alive).
 *
 *     exec_helper NAME COUNT TOTAL PINNED
 *
 * While COUNT < TOTAL, an image opens the registry NAME, starts a thread
 * that loops lookups, makes a lookup in its main thread too (so both
 * threads hold a reader slot), interrupts the looping thread with a signal
 * whose handler waits until it sees (connreg_readers) that the thread was
 * caught inside a lookup, and then re-executes itself from the main thread
 * with COUNT + 1 (PINNED + 1 when the thread was caught inside a lookup).
 * A reader slot that is full (-EAGAIN) is no error here: the image then
 * execs at once.
 *
 * The image with COUNT == TOTAL opens the registry, looks up the probe id
 * (t_id(0x50, 1) of tests/common.h, which the test registered), prints
 *
 *     ready RC VALUE PINNED
 *
 * on stdout, and waits for end of file on stdin before it closes and exits
 * 0. Errors print "error ..." and exit non-zero.
 *
 * No Criterion here: this is a plain program that the test starts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "connreg.h"

#define EH_ID_LEN 13

/* The layout of t_id() in tests/common.h. */
static size_t eh_id(uint8_t *buf, uint32_t ns, uint64_t n)
{
	buf[0] = 'K';
	for (int i = 0; i < 4; i++)
		buf[1 + i] = (uint8_t)(ns >> (8 * i));
	for (int i = 0; i < 8; i++)
		buf[5 + i] = (uint8_t)(n >> (8 * i));
	return EH_ID_LEN;
}

static connreg_t *eh_reg;
static atomic_int eh_tid;           /* the looping thread's tid */
static atomic_ullong eh_lookups;    /* its successful lookups */
static atomic_int eh_noslot;        /* its lookups got -EAGAIN: no reader slot */
static atomic_int eh_hold;          /* the handler waits while this is set */
static atomic_int eh_in_handler;

static uint64_t eh_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void eh_nap_us(long us)
{
	struct timespec ts = { 0, us * 1000 };

	nanosleep(&ts, NULL);
}

/* SIGUSR1 on the looping thread: stay here (wherever it was) while held. */
static void eh_handler(int sig)
{
	(void)sig;
	atomic_store(&eh_in_handler, 1);
	while (atomic_load(&eh_hold))
		eh_nap_us(50);
	atomic_store(&eh_in_handler, 0);
}

static void *eh_loop(void *arg)
{
	uint8_t id[EH_ID_LEN], other[EH_ID_LEN];
	size_t n = eh_id(id, 0x50, 1), m = eh_id(other, 0x50, 2);
	uint64_t v;

	(void)arg;
	atomic_store(&eh_tid, (int)syscall(SYS_gettid));
	for (;;) {
		int rc = connreg_get_transport(eh_reg, id, n, &v);

		if (rc == -EAGAIN) {
			atomic_store(&eh_noslot, 1);
			eh_nap_us(200);
			continue;
		}
		connreg_get_transport(eh_reg, other, m, &v);
		atomic_fetch_add(&eh_lookups, 1);
	}
	return NULL;
}

struct eh_find {
	int32_t pid;
	uint32_t tid;
	int found;
	uint64_t epoch;
};

static int eh_find_fn(const connreg_reader_t *rd, void *arg)
{
	struct eh_find *f = arg;

	if (rd->pid == f->pid && rd->tid == f->tid) {
		f->found = 1;
		f->epoch = rd->epoch;
	}
	return 0;
}

/* Catch the looping thread inside a lookup; 1 when it stays there (held). */
static int eh_pin(pthread_t th)
{
	for (int tries = 0; tries < 5000; tries++) {
		struct eh_find f = { (int32_t)getpid(), (uint32_t)atomic_load(&eh_tid), 0, 0 };
		uint64_t deadline = eh_now_ms() + 2000;

		atomic_store(&eh_hold, 1);
		if (pthread_kill(th, SIGUSR1) != 0)
			return 0;
		while (!atomic_load(&eh_in_handler))
			if (eh_now_ms() > deadline)
				return 0;
		if (connreg_readers(eh_reg, eh_find_fn, &f) == 0 && f.found && f.epoch != 0)
			return 1; /* inside a lookup, and it stays there until the exec */
		atomic_store(&eh_hold, 0);
		while (atomic_load(&eh_in_handler))
			if (eh_now_ms() > deadline)
				return 0;
	}
	return 0;
}

int main(int argc, char **argv)
{
	uint8_t id[EH_ID_LEN];
	uint64_t v = 0;
	int rc;

	if (argc != 5) {
		printf("error usage: %s NAME COUNT TOTAL PINNED\n", argv[0]);
		return 2;
	}
	const char *name = argv[1];
	long count = strtol(argv[2], NULL, 10), total = strtol(argv[3], NULL, 10);
	long pinned = strtol(argv[4], NULL, 10);

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	rc = connreg_open(name, &eh_reg);
	if (rc != 0) {
		printf("error image %ld: connreg_open: %d (%s)\n", count, rc, connreg_strerror(rc));
		return 3;
	}
	if (count >= total) {
		/* The image that stays: use the registry like any process would. */
		rc = connreg_get_transport(eh_reg, id, eh_id(id, 0x50, 1), &v);
		printf("ready %d %" PRIu64 " %ld\n", rc, v, pinned);
		fflush(stdout);
		char buf[64];
		while (read(0, buf, sizeof buf) > 0)
			;
		connreg_close(eh_reg);
		return 0;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = eh_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);

	pthread_t th;
	if (pthread_create(&th, NULL, eh_loop, NULL) != 0) {
		printf("error image %ld: pthread_create\n", count);
		return 4;
	}
	/* The main thread holds a slot too (any -EAGAIN is the library's to fix). */
	connreg_get_transport(eh_reg, id, eh_id(id, 0x50, 1), &v);
	uint64_t deadline = eh_now_ms() + 2000;
	while (atomic_load(&eh_lookups) < 100 && !atomic_load(&eh_noslot) &&
	       eh_now_ms() < deadline)
		eh_nap_us(100);
	if (!atomic_load(&eh_noslot) && atomic_load(&eh_lookups) >= 100)
		pinned += eh_pin(th);

	char c_next[32], c_pinned[32];
	snprintf(c_next, sizeof c_next, "%ld", count + 1);
	snprintf(c_pinned, sizeof c_pinned, "%ld", pinned);
	fflush(stdout);
	/* No connreg_close: the image is replaced with its slots (and a lookup) in use. */
	execl("/proc/self/exe", argv[0], name, c_next, argv[3], c_pinned, (char *)NULL);
	printf("error image %ld: execl: %s\n", count, strerror(errno));
	return 5;
}
