/*
 * connreg: a cross-process registry mapping connection ids to transports.
 *
 * A registry lives in one POSIX shared-memory segment. Every process on the
 * host that opens it by name sees the same mapping
 *
 *     connection id (1..key_max bytes, any values)  ->  transport (uint64_t)
 *
 * Lookups are wait-free: no lock, no retry loop, no system call, never slowed
 * or blocked by a writer, even one that is stopped or was killed. Writers
 * copy and update (RCU): a new entry is filled privately and published with
 * one compare-and-swap; the old one is reclaimed after a grace period that
 * spans every process attached to the segment.
 *
 * Conventions
 * - Every function that can fail returns 0 or a negative errno value (below).
 * - Each registry call is linearizable per id across every thread and
 *   process attached to the segment.
 * - A connreg_t handle is thread-safe: any number of threads may use one
 *   handle at once. Each thread takes a reader slot in the segment on its
 *   first call and gives it back when it exits (or at connreg_close).
 * - After fork() the child must not use its parent's handles (calls return
 *   -ECHILD); it opens its own with connreg_open.
 * - Every 64-bit transport value is valid, 0 and UINT64_MAX included.
 *
 * Error codes (connreg_strerror describes each)
 *   -EINVAL        NULL argument, id_len 0, bad name, bad configuration
 *   -E2BIG         a config whose `size` is larger than this library's and
 *                  whose unknown tail is not zero (a newer header's feature)
 *   -ENAMETOOLONG  id longer than the registry's key_max
 *   -ENOENT        no such id (lookups, updates) or no such segment (open)
 *   -EEXIST        connreg_create: the name is taken
 *   -ENOSPC        register of a new id while `capacity` ids are live;
 *                  connreg_create: the segment directory's filesystem
 *                  cannot hold the whole segment (nothing is left behind;
 *                  connreg_segment_size and connreg_shm_space give the
 *                  numbers)
 *   -EPROTO        connreg_open: the segment is not a valid registry (wrong
 *                  magic, layout version or signature, truncated, a header
 *                  field inconsistent with the segment's size, or its creator
 *                  never finished initialising it within the open timeout);
 *                  a writer: an id's stripe lock in the segment is
 *                  unrecoverable (the segment was corrupted after open)
 *   -EAGAIN        an insert found no reusable record position and no grace
 *                  period could complete within CONNREG_RECLAIM_WAIT_MS (a
 *                  reader is stopped inside a lookup), or a writer waited that
 *                  long for an id's stripe lock held by a stopped process, or
 *                  (a thread's first call
 *                  through a handle) every reader slot or liveness token is
 *                  taken
 *   -ECHILD        the handle was opened by the parent of a fork()
 *   -ENOMEM        process-local allocation failed; CONNREG_OPEN_MLOCK over
 *                  RLIMIT_MEMLOCK
 *   -EPERM         CONNREG_OPEN_MLOCK with RLIMIT_MEMLOCK 0 and no
 *                  CAP_IPC_LOCK
 *   -ETIMEDOUT     connreg_wait_transport: no change before the timeout
 *   -EOPNOTSUPP    connreg_reap on a registry created without
 *                  CONNREG_TRANSPORT_IS_PID
 *   -EACCES, -EMFILE, ... : system errors from shm_open/ftruncate/mmap, as is
 *
 * Where segments live: POSIX shared memory (shm_open, /dev/shm) unless the
 * environment variable CONNREG_SHM_DIR names an absolute directory; then
 * the segment "/name" is the file "$CONNREG_SHM_DIR/name" (a tmpfs with
 * more room, one mounted huge=always for 2 MiB pages, or hugetlbfs). Every
 * call that takes a name (create, open, open_or_create, unlink) reads it,
 * so every process of one registry must see the same value. Names,
 * permissions, the reservation at create and the checks at open are the
 * same in any directory. On hugetlbfs the file is rounded up to whole huge
 * pages. Set-uid programs ignore it (secure_getenv).
 *
 * Every call that uses the calling thread's reader slot (all but create,
 * open, close, unlink, stats, readers and strerror) claims one on the
 * thread's first call through a handle, and so may also return -EAGAIN (no
 * free slot or token) or -ENOMEM there; the lists below include them.
 *
 * Threads and liveness: a thread that calls through a handle holds one of
 * the segment's liveness tokens (robust mutexes) until it exits or closes
 * the handle, and the kernel tells the others when it is gone: at thread
 * exit, process death by any signal, and exec, in any pid namespace. A
 * thread whose handle another thread closed keeps its token until its next
 * first call through any handle or its exit; the segment has 2 tokens per
 * reader slot for that.
 */
#ifndef CONNREG_H
#define CONNREG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CONNREG_API __attribute__((visibility("default")))
#else
#define CONNREG_API
#endif

#define CONNREG_VERSION_MAJOR 1
#define CONNREG_VERSION_MINOR 0

/* Longest connection id a registry can be configured for (key_max). */
#define CONNREG_KEY_MAX_LIMIT 4096u
/* Largest capacity a registry can be configured for. */
#define CONNREG_CAPACITY_LIMIT 1000000000ull
/* Longest segment name after the leading '/'. */
#define CONNREG_NAME_MAX 200u
/* How long connreg_open waits for a creator to publish its ready marker. */
#define CONNREG_OPEN_WAIT_MS 2000
/* How long a writer waits for a grace period before -EAGAIN. */
#define CONNREG_RECLAIM_WAIT_MS 1000

/*
 * Config flag: the low 32 bits of every transport are an OS pid. Each
 * registration records that process's start time, so connreg_reap can tell
 * a dead transport from a new process that reused its pid.
 */
#define CONNREG_TRANSPORT_IS_PID 0x1u

/* Process-local handle to an attached segment. */
typedef struct connreg_handle connreg_t;

/*
 * Sized structs. connreg_config_t and connreg_stats_t open with a `size`
 * field, like perf_event_attr: the caller sets it to sizeof the struct its
 * header declares, or leaves it 0, which means CONNREG_*_SIZE_VER0 (the
 * struct of this header's major version; so a zeroed struct always
 * works). A library older than the caller's header reads only the prefix
 * it knows and refuses a config whose unknown tail is not all zero
 * (-E2BIG); a newer library fills only the caller's `size` bytes of stats.
 * Fields are only ever appended.
 */
#define CONNREG_CONFIG_SIZE_VER0 32u
#define CONNREG_STATS_SIZE_VER0 136u

typedef struct connreg_config {
	uint32_t size;        /* sizeof(connreg_config_t), or 0 for CONNREG_CONFIG_SIZE_VER0 */
	uint32_t key_max;     /* longest connection id in bytes; 0 selects 64 */
	uint64_t capacity;    /* live connection ids the segment must hold; > 0 */
	uint32_t mode;        /* permission bits of a new segment; 0 selects 0600.
	                       * Every attached process, readers too, holds a
	                       * reader slot in the segment: a uid needs read and
	                       * write. */
	uint32_t max_threads; /* reader slots: threads attached at once; 0 selects 512 */
	uint32_t flags;       /* CONNREG_TRANSPORT_IS_PID or 0; unknown bits: -EINVAL */
	uint32_t reserved0;   /* must be 0 */
	/* more fields may follow; a zeroed field always selects its default */
} connreg_config_t;

/*
 * Create a new registry segment called `name` ("/" then 1..200 characters of
 * [A-Za-z0-9._-]) and attach to it. Exactly one of several concurrent
 * creators of one name succeeds (O_EXCL); the others get -EEXIST.
 * Returns 0 and *out, -EINVAL, -EEXIST, -ENOSPC, or a system error.
 *
 * The whole segment (connreg_segment_size bytes) is allocated in its
 * filesystem (fallocate) before it gets its size and before it is
 * published, so no process attached to it can later meet a page the
 * filesystem cannot supply (SIGBUS on a full tmpfs). When it does not fit
 * the call returns -ENOSPC and the name is removed again. The environment
 * variables CONNREG_PREFAULT and CONNREG_MLOCK apply to the creator's
 * mapping as to connreg_open's (see connreg_open_ex).
 */
CONNREG_API int connreg_create(const char *name, const connreg_config_t *cfg, connreg_t **out);

/*
 * Attach to an existing registry. Waits up to CONNREG_OPEN_WAIT_MS for a
 * creator that is still initialising. Every header field is checked against
 * the segment's size before anything else is read.
 * Returns 0 and *out, -EINVAL, -ENOENT, -EPROTO, or a system error.
 */
CONNREG_API int connreg_open(const char *name, connreg_t **out);

/*
 * Create the registry if it does not exist, else open it. *created (if not
 * NULL) is set to 1 when this call created it. A configuration that differs
 * from an existing registry's is not an error: the existing one is opened.
 */
CONNREG_API int connreg_open_or_create(const char *name, const connreg_config_t *cfg,
				       connreg_t **out, int *created);

/*
 * Options of connreg_open_ex, a sized struct (see "Sized structs"): set
 * `size` to sizeof(connreg_open_opts_t) or leave it 0.
 */
#define CONNREG_OPEN_OPTS_SIZE_VER0 8u

/*
 * Open flag: fill this process's page tables for the whole segment at
 * open (madvise MADV_POPULATE_WRITE; on kernels before 5.14 by reading
 * every page), so that lookups, and the reader slot each thread writes,
 * take no page fault afterwards. Costs time at open in proportion to the
 * segment's size, and the page tables (2 MiB per GiB of 4 KiB pages). A
 * page the filesystem cannot supply (a segment created sparse by an older
 * connreg on a full tmpfs) makes the open fail with -ENOSPC instead of a
 * later SIGBUS.
 */
#define CONNREG_OPEN_PREFAULT 0x1u
/*
 * Open flag: PREFAULT, then mlock(2) the mapping so the kernel never
 * reclaims its pages from under the page tables (swap of tmpfs pages).
 * Counts the whole segment against the process's RLIMIT_MEMLOCK: when
 * that is too low the open fails with -ENOMEM (-EPERM when the limit is 0
 * and the process lacks CAP_IPC_LOCK) rather than silently running
 * unlocked. Raise it with `ulimit -l`, LimitMEMLOCK= (systemd) or
 * `docker run --ulimit memlock=-1`.
 */
#define CONNREG_OPEN_MLOCK 0x2u

typedef struct connreg_open_opts {
	uint32_t size;  /* sizeof(connreg_open_opts_t), or 0 for CONNREG_OPEN_OPTS_SIZE_VER0 */
	uint32_t flags; /* CONNREG_OPEN_PREFAULT | CONNREG_OPEN_MLOCK; unknown bits: -EINVAL */
	/* more fields may follow; a zeroed field always selects its default */
} connreg_open_opts_t;

/*
 * connreg_open with options. opts NULL is connreg_open itself, which takes
 * its flags from the environment: CONNREG_PREFAULT=1 (PREFAULT) and
 * CONNREG_MLOCK=1 (MLOCK), for programs that cannot be changed; a non-NULL
 * opts is used as given and the environment is not read.
 * Returns 0 and *out, the errors of connreg_open, -E2BIG (an unknown
 * non-zero tail of opts), -ENOSPC, -ENOMEM or -EPERM (above).
 */
CONNREG_API int connreg_open_ex(const char *name, const connreg_open_opts_t *opts,
				connreg_t **out);

/*
 * The bytes connreg_create reserves for cfg in the segment directory: the
 * segment's size, rounded up to whole huge pages on hugetlbfs. Nothing is
 * created. Returns 0 and *bytes, -EINVAL (NULL, a bad configuration or
 * CONNREG_SHM_DIR), -E2BIG.
 */
CONNREG_API int connreg_segment_size(const connreg_config_t *cfg, uint64_t *bytes);

/*
 * Free and total bytes of the filesystem segments are created in
 * (/dev/shm, or CONNREG_SHM_DIR), as statvfs(3) gives them to an
 * unprivileged process (f_bavail, f_blocks; hugetlbfs: its huge pages).
 * Either pointer may be NULL. A tmpfs mounted without a size limit
 * reports 0 for both. Returns 0, -EINVAL, or a system error (-ENOENT: no
 * such directory).
 */
CONNREG_API int connreg_shm_space(uint64_t *avail, uint64_t *total);

/*
 * Detach. Gives back the reader slots of every thread that used this handle.
 * No other thread may be inside a call on this handle, or use it afterwards.
 * NULL is ignored.
 */
CONNREG_API void connreg_close(connreg_t *reg);

/*
 * Remove the name. Processes attached keep working; new opens get -ENOENT.
 * Returns 0, -EINVAL, -ENOENT, or a system error.
 */
CONNREG_API int connreg_unlink(const char *name);

/*
 * Insert or update: after it returns 0, lookups of `id` return `transport`.
 * A new id while `capacity` ids are live gets -ENOSPC (never before: an id
 * whose unregister has completed frees its place). Writers of an id take
 * its striped robust mutex, which no reader ever touches: an update of a
 * live id is then one atomic store of its transport in place; an insert
 * fills a free record and publishes it with one store. A stripe holder
 * that is stopped makes writers of its ids return -EAGAIN after
 * CONNREG_RECLAIM_WAIT_MS; one that died is recovered.
 * Returns 0, -EINVAL, -ENAMETOOLONG, -ENOSPC, -EAGAIN, -ECHILD, -ENOMEM,
 * -EPROTO.
 */
CONNREG_API int connreg_register(connreg_t *reg, const void *id, size_t id_len,
				 uint64_t transport);

/*
 * Wait-free lookup. Returns 0 and *transport, -ENOENT, -EINVAL,
 * -ENAMETOOLONG, -ECHILD; on a thread's first call -EAGAIN or -ENOMEM.
 *
 * Async-signal-safe once the calling thread has made one call on reg
 * (the first claims a reader slot: it allocates and locks), as is
 * connreg_get_transport_bulk: a signal handler may look up ids even when
 * it interrupted a lookup of the same thread on the same handle. Writers,
 * walks and the open/close calls are not async-signal-safe. A lookup left
 * other than by its return (siglongjmp out of a handler that interrupted
 * it) leaves the thread inside its read section: grace periods then wait
 * for that thread until it exits or closes the handle.
 */
CONNREG_API int connreg_get_transport(connreg_t *reg, const void *id, size_t id_len,
				      uint64_t *transport);

/*
 * Remove the id if present. Lock-free. Returns 0 whether or not the id was
 * registered; -EINVAL, -ENAMETOOLONG, -ECHILD on bad arguments; on a
 * thread's first call -EAGAIN or -ENOMEM.
 */
CONNREG_API int connreg_unregister(connreg_t *reg, const void *id, size_t id_len);

/*
 * Re-point a registered id: one atomic store in place, under the id's
 * stripe lock (see connreg_register). Returns 0, -ENOENT when the id is not
 * registered, -EINVAL, -ENAMETOOLONG, -EAGAIN (a stopped stripe holder),
 * -ECHILD, -ENOMEM, -EPROTO.
 */
CONNREG_API int connreg_update_transport(connreg_t *reg, const void *id, size_t id_len,
					 uint64_t transport);

/*
 * Replace the transport only if it is still `expected`, under the id's
 * stripe lock as connreg_update_transport. Returns 0; -ENOENT when absent;
 * -EAGAIN when the current transport differs (and *current, if non-NULL,
 * receives it); the errors of connreg_update_transport otherwise. A stopped
 * stripe holder also yields -EAGAIN, with *current set to `expected`.
 */
CONNREG_API int connreg_cas_transport(connreg_t *reg, const void *id, size_t id_len,
				      uint64_t expected, uint64_t desired, uint64_t *current);

/*
 * Block until the id is registered with a transport other than `seen`, or
 * timeout_ms passes (-1: forever; 0: just check). Returns 0 and *transport,
 * -ETIMEDOUT, or the argument errors of connreg_get_transport. Waiters
 * sleep on a futex word of the id's home bucket (Concurrency Kit event
 * count, process-shared), so a change made in any process wakes them, and
 * only waiters whose ids share that bucket wake. Readers pay nothing.
 */
CONNREG_API int connreg_wait_transport(connreg_t *reg, const void *id, size_t id_len,
				       uint64_t seen, uint64_t *transport, int timeout_ms);

/*
 * Look up n ids at once, overlapping their cache misses. rc[i] is 0 (and
 * transports[i] set), -ENOENT, or -EINVAL / -ENAMETOOLONG for a bad id.
 * Each lookup is linearizable on its own. Returns 0, or -EINVAL when an
 * array or reg is NULL, -ECHILD, and -EAGAIN / -ENOMEM as connreg_get_transport.
 */
CONNREG_API int connreg_get_transport_bulk(connreg_t *reg, size_t n, const void *const ids[],
					   const size_t id_lens[], uint64_t transports[], int rc[]);

/*
 * Visit every live id once, with a consistent (never torn) view of its
 * entry, while writers run: an id that stays registered through the walk
 * is visited exactly once (with its old or its new transport if it is
 * updated meanwhile); an id absent through the whole walk is never
 * visited; an id removed or added during the walk may or may not be.
 * fn runs outside any read-side section, so it may call connreg
 * functions. A non-zero return from fn stops the walk and is returned.
 * Otherwise returns 0, -EINVAL, -ECHILD, -ENOMEM; on a thread's first call
 * -EAGAIN.
 */
CONNREG_API int connreg_foreach(connreg_t *reg,
				int (*fn)(const void *id, size_t id_len, uint64_t transport,
					  void *arg),
				void *arg);

typedef struct connreg_stats {
	uint32_t size;         /* in: sizeof(connreg_stats_t), or 0 for CONNREG_STATS_SIZE_VER0;
	                        * out: the bytes the library filled */
	uint32_t layout_version;
	uint64_t capacity;     /* configured live-id limit */
	uint64_t live;         /* live ids */
	uint64_t free;         /* record positions never used, or given back unused */
	uint64_t retired;      /* positions removed, waiting for (or past) a grace period */
	uint64_t tombstones;   /* records tombed by unregister (or passed over by an insert) */
	uint64_t epoch;        /* current grace-period epoch */
	uint64_t safe_epoch;   /* positions retired before this epoch are reusable */
	uint32_t readers;      /* reader slots claimed by threads */
	uint32_t max_probe;    /* most buckets any lookup may visit */
	uint64_t entries;      /* record positions: 2 * capacity (two per bucket line) */
	uint64_t buckets;      /* index buckets (two records each) */
	uint64_t segment_size; /* bytes */
	uint32_t key_max;
	uint32_t max_threads;  /* reader slots */
	uint32_t flags;        /* creation flags */
	uint32_t reserved0;
	/* Counters since the registry was created, summed over every process: */
	uint64_t writer_eagain;   /* writer calls that returned -EAGAIN (stalled
	                           * reclamation, stopped lock holder, no slot) */
	uint64_t slots_recovered; /* reader slots of dead threads taken back */
	uint64_t grace_periods;   /* grace periods completed */
	/* more may follow */
} connreg_stats_t;

/*
 * A snapshot of the counters (each read on its own, while writers run).
 * Set st->size first (see "Sized structs"); returns 0, -EINVAL (NULL, or
 * a non-zero size below CONNREG_STATS_SIZE_VER0), -ECHILD.
 */
CONNREG_API int connreg_stats(connreg_t *reg, connreg_stats_t *st);

/*
 * For a registry created with CONNREG_TRANSPORT_IS_PID: unregister every
 * id whose transport process no longer exists (a reused pid does not fool
 * it: the start time recorded at registration must match). A transport
 * whose low 32 bits are 0 or above INT32_MAX names no process and is never
 * reaped. Safe from any process at any time, concurrently with everything
 * else; an id re-registered meanwhile is not removed. *removed (if
 * non-NULL) receives the count.
 * Returns 0, -EOPNOTSUPP, -EINVAL, -ECHILD; on a thread's first call
 * -EAGAIN or -ENOMEM.
 *
 * A pid means something only in a pid namespace: each registration records
 * the registering process's namespace (and whether its /proc shows that
 * namespace), and reap judges only transports registered from its own
 * namespace; others are never removed by it. Run reap (or connregd) in
 * each namespace whose processes register pids.
 */
CONNREG_API int connreg_reap(connreg_t *reg, uint64_t *removed);

/* A reader slot in use (connreg_readers). */
typedef struct connreg_reader {
	uint32_t slot;   /* reader slot index */
	int32_t pid;     /* process that owns it, as its own pid namespace numbers it */
	uint32_t tid;    /* thread that claimed it (informational) */
	uint32_t alive;  /* 0: the owning thread is gone (seen by its liveness
	                  * token); the slot was recovered by this listing */
	uint64_t epoch;  /* 0: not inside a lookup; else the epoch it entered at */
} connreg_reader_t;

/*
 * Call fn for each claimed reader slot. A non-zero return from fn stops
 * the walk and is returned. Returns 0, -EINVAL, -ECHILD.
 */
CONNREG_API int connreg_readers(connreg_t *reg,
				int (*fn)(const connreg_reader_t *r, void *arg), void *arg);

/*
 * Verify the segment's invariants: every live slot points at a sound,
 * published entry with the right fingerprint, within its home's probe
 * bound; no id is live twice; no entry is reachable twice; the live count
 * agrees with the index; no entry is lost (published but unreachable, or
 * owned by a thread that no longer exists); reader slots are sound.
 * report (if non-NULL) gets one line per problem. Returns the number of
 * problems (0: sound), or -EINVAL / -ECHILD / -ENOMEM / -EAGAIN (first
 * call of the thread). Slots of dead threads are recovered first (the
 * normal work any writer does). Exact when no
 * writer runs meanwhile; concurrent writers can make counts disagree for
 * an instant, so a tool should re-check before declaring a problem.
 */
CONNREG_API int connreg_check(connreg_t *reg, void (*report)(const char *problem, void *arg),
			      void *arg);

/*
 * Change feed: for one process that mirrors the registry elsewhere
 * (connregd --cluster). The registry is split into connreg_shards()
 * shards (its index buckets; an id's shard never changes). Every change of
 * an id (register, update, cas, unregister, reap, and a dead writer's
 * change settled by recovery) marks its shard dirty after it lands, with
 * one load when the shard is already dirty and never a wait. A mirror
 * walks everything once (connreg_foreach), then repeatedly drains the
 * dirty shards and re-reads each whole with connreg_foreach_shard: a
 * change that lands after a shard was drained marks it again, so none is
 * lost, whatever the mirror does or however long it is away. One drainer
 * per registry: two would each see part of the changes.
 */
CONNREG_API uint32_t connreg_shards(connreg_t *reg);

/*
 * Clear the dirty marks and call fn(shard, arg) for each shard that had
 * one, in increasing order. A non-zero return from fn stops the drain, is
 * returned, and leaves that shard and the ones not yet reported marked.
 * Returns 0, -EINVAL, -ECHILD.
 */
CONNREG_API int connreg_changes_drain(connreg_t *reg, int (*fn)(uint32_t shard, void *arg),
				      void *arg);

/*
 * Visit every live id of one shard, as connreg_foreach does (fn outside
 * any read-side section; a non-zero return stops and is returned).
 * Returns 0, -EINVAL (NULL, or shard >= connreg_shards), -ECHILD, -ENOMEM;
 * on a thread's first call -EAGAIN.
 */
CONNREG_API int connreg_foreach_shard(connreg_t *reg, uint32_t shard,
				      int (*fn)(const void *id, size_t id_len, uint64_t transport,
						void *arg),
				      void *arg);

/* Text for a value returned by any connreg function ("ENOSPC: ..."). */
CONNREG_API const char *connreg_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* CONNREG_H */
