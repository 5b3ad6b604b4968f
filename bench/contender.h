/*
 * contender.h: what every contender implements, and the instance a
 * contender is measured on.
 *
 * The parent creates and populates an instance (ids [0, n) of the keyset,
 * id i -> key_transport(i)). Each worker (a forked process for
 * cross-process contenders, a thread for in-process ones) attaches to it,
 * runs its role through the contender's `run` (usually BENCH_RUN from
 * loops.h, which inlines the contender's lookup into the timed loop), and
 * detaches.
 */
#ifndef BENCH_CONTENDER_H
#define BENCH_CONTENDER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "keys.h"

struct worker;
struct instance;

struct contender {
	const char *name;	/* as printed: connreg, shm_rwlock, ... */
	const char *what;	/* one line: what exactly is measured */
	bool processes;		/* workers are processes (fork, then attach by name) */
	const char *bulk_how;	/* how bulk_lookup is served */
	const char *write_how;	/* how an update / churn is done */

	/* Parent: create the structure and register ids [0, n). */
	int (*create)(struct instance *in);
	void (*destroy)(struct instance *in);
	/* Worker (child process or thread): attach and detach. */
	int (*attach)(struct instance *in, void **handle);
	void (*detach)(struct instance *in, void *handle);
	/* Worker: run w->role for w->reps repetitions (see loops.h). */
	int (*run)(struct instance *in, void *handle, struct worker *w);
	/* Optional, parent: a grace-period counter (connreg: the epoch). */
	bool (*epoch)(struct instance *in, uint64_t *epoch);
	/* Optional: why this contender cannot run here (NULL: it can). */
	const char *(*unavailable)(void);
};

/* Writer progress, kept across scenarios in memory shared with children. */
struct inst_shared {
	_Atomic uint64_t update_k;	/* next update op */
	_Atomic uint64_t storm_s;	/* next storm */
	_Atomic uint64_t churn_k;	/* next churn op */
};

struct instance {
	const struct contender *c;
	const struct keyset *ks;
	uint64_t n;
	uint64_t capacity;	/* live ids a capacity-bound contender is sized for (connreg) */
	uint64_t seed;
	void *priv;		/* the contender's own state */
	struct inst_shared *sh;
	char tag[64];		/* unique per instance: names shm segments, dirs */
	double populate_s;	/* wall time of create() */
};

/* Every contender this binary knows, built or not. */
struct contender_entry {
	const char *name;
	const struct contender *c;	/* NULL: not built */
	const char *missing;		/* why not, and how to get it */
};

extern const struct contender_entry contender_table[];
extern const unsigned contender_table_len;

#endif /* BENCH_CONTENDER_H */
