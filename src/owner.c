/*
 * owner.c: liveness of reader-slot owners (robust mutexes) and of
 * transport pids (/proc). See owner.h.
 */
#define _GNU_SOURCE	/* gettid */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "owner.h"

/* Try to take token k. 1: taken; 0: held by a live thread; -1: broken. */
static int cr_token_try(struct connreg_handle *reg, uint32_t k)
{
	pthread_mutex_t *mu = &reg->tokens[k].mu;
	int rc = pthread_mutex_trylock(mu);

	if (rc == EBUSY)
		return 0;
	if (rc == EOWNERDEAD) {
		/*
		 * The holder died; we hold it now and settle what it owned.
		 * ORD-15(r): the kernel marked it owner-dead after the holder's
		 * last store; taking it orders those stores before our reads.
		 */
		pthread_mutex_consistent(mu);
		rc = 0;
	}
	return rc == 0 ? 1 : -1;	/* ENOTRECOVERABLE, EINVAL: not ours to judge */
}

/* Does slot i's owner word name token k? (acquire: see the owner's stores) */
static bool cr_slot_names(struct connreg_handle *reg, uint32_t i, uint32_t k)
{
	/*
	 * ORD-11(r): acquire pairs with the release stores of owner (0) in
	 * thread.c and recover.c: a slot seen free was cleared before.
	 */
	uint64_t o = atomic_load_explicit(&reg->rslots[i].owner, memory_order_acquire);

	return o == cr_owner_ref(k);
}

enum cr_take cr_owner_take(struct connreg_handle *reg, uint32_t i, uint32_t *tok)
{
	/*
	 * ORD-11(r): acquire pairs with the release stores of 0 (a free slot's
	 * epoch is 0); a token value is judged through the token's mutex.
	 */
	uint64_t o = atomic_load_explicit(&reg->rslots[i].owner, memory_order_acquire);
	uint32_t k = cr_owner_token(o);

	if (o == 0)
		return CR_TAKE_FREE;
	if (o != cr_owner_ref(k) || k >= reg->n_tokens)
		return CR_TAKE_BROKEN;
	switch (cr_token_try(reg, k)) {
	case 0:
		return CR_TAKE_BUSY;
	case -1:
		return CR_TAKE_BROKEN;
	}
	if (cr_slot_names(reg, i, k)) {
		*tok = k;
		return CR_TAKE_DEAD;
	}
	/* Freed meanwhile; leave the token's binding for whoever settles it. */
	cr_token_release(reg, k);
	return CR_TAKE_FREE;
}

int cr_token_take_free(struct connreg_handle *reg, uint32_t *tok, uint32_t *dead_slot)
{
	/* Start where other threads are unlikely to: fewer trylocks on held tokens. */
	uint32_t start = (uint32_t)(((uint64_t)(uint32_t)gettid() * 0x9e3779b97f4a7c15ull) >> 32) %
			 reg->n_tokens;

	for (uint32_t n = 0; n < reg->n_tokens; n++) {
		uint32_t k = start + n < reg->n_tokens ? start + n : start + n - reg->n_tokens;

		if (cr_token_try(reg, k) == 1) {
			/* Relaxed: written only under the token's mutex, which we now hold. */
			uint32_t s = atomic_load_explicit(&reg->tokens[k].slot, memory_order_relaxed);

			*dead_slot = s < reg->n_rslots && cr_slot_names(reg, s, k) ? s : CR_IDX_NONE;
			*tok = k;
			return 0;
		}
	}
	return -EAGAIN;
}

void cr_token_bind(struct connreg_handle *reg, uint32_t tok, uint32_t slot)
{
	/*
	 * Relaxed: we hold the mutex; a later taker reads it after taking the
	 * mutex (after our death, or after our unlock).
	 */
	atomic_store_explicit(&reg->tokens[tok].slot, slot, memory_order_relaxed);
}

void cr_token_release(struct connreg_handle *reg, uint32_t tok)
{
	pthread_mutex_unlock(&reg->tokens[tok].mu);
}

void cr_token_give(struct connreg_handle *reg, uint32_t tok)
{
	/* Relaxed: the unlock releases it. */
	atomic_store_explicit(&reg->tokens[tok].slot, CR_IDX_NONE, memory_order_relaxed);
	cr_token_release(reg, tok);
}

bool cr_owner_alive(struct connreg_handle *reg, uint32_t i)
{
	uint32_t k;
	enum cr_take r = cr_owner_take(reg, i, &k);

	if (r == CR_TAKE_DEAD)
		/* A probe only: the slot still names the token, so the next taker recovers it. */
		cr_token_release(reg, k);
	return cr_take_alive(r);
}

int cr_tokens_init(struct cr_token *tokens, uint32_t n)
{
	pthread_mutexattr_t a;
	int rc = pthread_mutexattr_init(&a);

	if (rc)
		return -rc;
	rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (!rc)
		rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	/* PTHREAD_MUTEX_NORMAL: a trylock by the holder itself answers EBUSY. */
	for (uint32_t i = 0; !rc && i < n; i++) {
		rc = pthread_mutex_init(&tokens[i].mu, &a);
		atomic_init(&tokens[i].slot, CR_IDX_NONE);
	}
	pthread_mutexattr_destroy(&a);
	return -rc;
}

/* ------------------------------------------------------------------ */
/* Transport pids                                                      */
/* ------------------------------------------------------------------ */

static pid_t cr_pid_cached_for;		/* getpid() when cr_pid_ns was read */
static uint32_t cr_pid_ns;

/*
 * Start time of pid in clock ticks since boot (field 22 of /proc/PID/stat)
 * and its state letter (field 3: 'Z' zombie, 'X' dead, ...).
 */
static int cr_proc_stat(pid_t pid, uint64_t *start, char *state)
{
	char path[64], buf[1024];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: skip to the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -EIO;
	if (state)
		*state = p[2];
	/* After ") " come fields 3.. ; starttime is field 22, the 20th after it. */
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EIO;
	}
	*start = strtoull(p + 1, NULL, 10);
	return 0;
}

void cr_pid_process_init(void)
{
	pid_t pid = getpid();
	char link[32];
	struct stat st;
	ssize_t n;

	if (cr_pid_cached_for != pid) {
		cr_pid_ns = 0;
		/*
		 * /proc answers for the pid namespace it was mounted in; only
		 * when /proc/self names our own pid do its pids mean ours.
		 */
		n = readlink("/proc/self", link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			if (strtol(link, NULL, 10) == (long)pid && stat("/proc/self/ns/pid", &st) == 0)
				cr_pid_ns = (uint32_t)st.st_ino ? (uint32_t)st.st_ino : 1u;
		}
		cr_pid_cached_for = pid;
	}
}

uint32_t cr_pid_ns_self(void)
{
	return cr_pid_ns;
}

uint32_t cr_pid_start_lo(pid_t pid)
{
	uint64_t start;

	if (pid <= 0 || cr_pid_ns == 0)
		return 0;
	return cr_proc_stat(pid, &start, NULL) == 0 ? (uint32_t)(start & 0x7fffffff) : 0;
}

int cr_pid_dead(pid_t pid, uint32_t start_lo)
{
	uint64_t start;
	char state;

	if (pid <= 0 || cr_pid_ns == 0)
		return 0;
	if (kill(pid, 0) != 0 && errno == ESRCH)
		return 1;
	if (cr_proc_stat(pid, &start, &state) != 0)
		return 0;	/* cannot tell (hidepid): assume alive */
	/*
	 * A zombie never runs again. (A transport is a process, judged whole:
	 * a leader that called pthread_exit shows 'Z' only while its other
	 * threads live, and then start_lo still matches and kill succeeds, so
	 * check the thread group's liveness through its other tasks.)
	 */
	if (state == 'Z' || state == 'X') {
		char path[64];
		struct stat st;

		/* A live thread group keeps tasks besides the zombie leader. */
		snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
		if (stat(path, &st) == 0 && st.st_nlink > 3)
			return 0;
		return 1;
	}
	/* The pid exists; it is the same process only if it started at the same time. */
	return start_lo != 0 && (uint32_t)(start & 0x7fffffff) != start_lo;
}
