/*
 * connreg_nif.c: the Erlang NIF over libconnreg (module 'Elixir.ConnReg.Nif').
 *
 * A registry handle is a NIF resource. Calls on it are short and run on
 * the calling (normal) scheduler, except open/create/close, wait (at most
 * 100 ms per call: the Elixir side loops), the walk (to_list) and check,
 * which run on dirty schedulers, and a bulk lookup of many ids, which
 * moves itself to a dirty CPU scheduler.
 *
 * Closing. connreg_close requires that no other thread is inside a call
 * on the handle. Each call announces itself in one of CRX_STRIPES
 * in-flight counters (picked per thread, so two schedulers do not share
 * a cache line) and then checks `closed`; close sets `closed` and waits
 * for every counter to drain before connreg_close. Both sides use
 * sequentially consistent operations, so either the call sees `closed`
 * (and returns {error, closed}) or close sees the call's count. The
 * resource destructor closes a handle that was never closed explicitly
 * (no call can be running then: every call holds a reference to the term).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <erl_nif.h>

#include <connreg.h>

#define CRX_STRIPES 64
#define CRX_CACHE_LINE 64
#define CRX_WAIT_SLICE_MS 100
#define CRX_BULK_CHUNK 256
#define CRX_BULK_DIRTY_MIN 4096 /* ids; more than this go to a dirty CPU scheduler */
#define CRX_NAME_BUF (CONNREG_NAME_MAX + 2)

struct crx_stripe {
	_Atomic long inflight;
	char pad[CRX_CACHE_LINE - sizeof(long)];
};

typedef struct {
	struct crx_stripe *stripes; /* CRX_STRIPES, cache-line aligned */
	connreg_t *reg;
	ErlNifMutex *close_mu;
	_Atomic int closed;	/* set once; calls entering afterwards get {error, closed} */
	int released;		/* connreg_close done (under close_mu) */
} crx_handle;

static ErlNifResourceType *crx_handle_type;

static ERL_NIF_TERM atom_ok, atom_error, atom_closed, atom_not_found, atom_true, atom_false,
	atom_mismatch, atom_etimedout;

/* Which in-flight counter this thread uses (threads are spread round-robin). */
static _Atomic unsigned crx_next_stripe;
static __thread int crx_my_stripe = -1;

static inline int crx_stripe_index(void)
{
	if (crx_my_stripe < 0)
		crx_my_stripe = (int)(atomic_fetch_add_explicit(&crx_next_stripe, 1,
							      memory_order_relaxed) %
				      CRX_STRIPES);
	return crx_my_stripe;
}

/* Enter a call on h: returns the counter to release, or NULL if h is closed. */
static struct crx_stripe *crx_enter(crx_handle *h)
{
	struct crx_stripe *s = &h->stripes[crx_stripe_index()];

	atomic_fetch_add_explicit(&s->inflight, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&h->closed, memory_order_seq_cst)) {
		atomic_fetch_sub_explicit(&s->inflight, 1, memory_order_release);
		return NULL;
	}
	return s;
}

static inline void crx_leave(struct crx_stripe *s)
{
	atomic_fetch_sub_explicit(&s->inflight, 1, memory_order_release);
}

static void crx_handle_dtor(ErlNifEnv *env, void *obj)
{
	crx_handle *h = obj;

	(void)env;
	if (h->reg && !h->released)
		connreg_close(h->reg);
	h->reg = NULL;
	free(h->stripes);
	if (h->close_mu)
		enif_mutex_destroy(h->close_mu);
}

/* ------------------------------------------------------------------------ */
/* Terms                                                                    */
/* ------------------------------------------------------------------------ */

/* An errno atom: -ENOSPC -> enospc (strerrorname_np, lower-cased). */
static ERL_NIF_TERM crx_errno_atom(ErlNifEnv *env, int rc)
{
	const char *name = strerrorname_np(-rc);
	char buf[32];
	size_t i;

	if (!name)
		return enif_make_tuple2(env, enif_make_atom(env, "errno"), enif_make_int(env, -rc));
	for (i = 0; name[i] && i < sizeof(buf) - 1; i++)
		buf[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] - 'A' + 'a' : name[i]);
	buf[i] = '\0';
	return enif_make_atom(env, buf);
}

static ERL_NIF_TERM crx_error(ErlNifEnv *env, ERL_NIF_TERM reason)
{
	return enif_make_tuple2(env, atom_error, reason);
}

/* {error, Reason} for an id operation: -ENOENT is not_found. */
static ERL_NIF_TERM crx_id_error(ErlNifEnv *env, int rc)
{
	if (rc == -ENOENT)
		return crx_error(env, atom_not_found);
	return crx_error(env, crx_errno_atom(env, rc));
}

static int crx_get_handle(ErlNifEnv *env, ERL_NIF_TERM t, crx_handle **out)
{
	return enif_get_resource(env, t, crx_handle_type, (void **)out);
}

/* A segment name: a binary of at most CONNREG_NAME_MAX + 1 bytes, NUL-terminated copy. */
static int crx_get_name(ErlNifEnv *env, ERL_NIF_TERM t, char buf[CRX_NAME_BUF])
{
	ErlNifBinary bin;

	if (!enif_inspect_binary(env, t, &bin) || bin.size == 0 || bin.size >= CRX_NAME_BUF)
		return 0;
	if (memchr(bin.data, '\0', bin.size))
		return 0;
	memcpy(buf, bin.data, bin.size);
	buf[bin.size] = '\0';
	return 1;
}

static int crx_get_u32(ErlNifEnv *env, ERL_NIF_TERM t, uint32_t *out)
{
	unsigned int v;

	if (!enif_get_uint(env, t, &v))
		return 0;
	*out = v;
	return 1;
}

static int crx_get_u64(ErlNifEnv *env, ERL_NIF_TERM t, uint64_t *out)
{
	ErlNifUInt64 v;

	if (!enif_get_uint64(env, t, &v))
		return 0;
	*out = v;
	return 1;
}

static ERL_NIF_TERM crx_make_u64(ErlNifEnv *env, uint64_t v)
{
	return enif_make_uint64(env, (ErlNifUInt64)v);
}

/* A new resource owning reg: 1 and *out, or 0 (reg closed) when out of memory. */
static int crx_wrap(ErlNifEnv *env, connreg_t *reg, ERL_NIF_TERM *out)
{
	crx_handle *h = enif_alloc_resource(crx_handle_type, sizeof(*h));
	void *stripes = NULL;

	if (!h) {
		connreg_close(reg);
		return 0;
	}
	memset(h, 0, sizeof(*h));
	if (posix_memalign(&stripes, CRX_CACHE_LINE, sizeof(struct crx_stripe) * CRX_STRIPES) != 0)
		stripes = NULL;
	h->stripes = stripes;
	h->close_mu = enif_mutex_create("connreg_close");
	if (!h->stripes || !h->close_mu) {
		enif_release_resource(h); /* the destructor frees what was made; reg is NULL */
		connreg_close(reg);
		return 0;
	}
	memset(h->stripes, 0, sizeof(struct crx_stripe) * CRX_STRIPES);
	h->reg = reg;
	*out = enif_make_resource(env, h);
	enif_release_resource(h);
	return 1;
}

/* {ok, Handle} or {ok, Handle, Created}, or an enomem exception. */
static ERL_NIF_TERM crx_opened(ErlNifEnv *env, connreg_t *reg, int with_created, int created)
{
	ERL_NIF_TERM h;

	if (!crx_wrap(env, reg, &h))
		return enif_raise_exception(env, enif_make_atom(env, "enomem"));
	if (with_created)
		return enif_make_tuple3(env, atom_ok, h, created ? atom_true : atom_false);
	return enif_make_tuple2(env, atom_ok, h);
}

/* ------------------------------------------------------------------------ */
/* Attach and detach (dirty I/O)                                            */
/* ------------------------------------------------------------------------ */

/* capacity, key_max, mode, max_threads, flags -> cfg */
static int crx_get_config(ErlNifEnv *env, const ERL_NIF_TERM argv[], connreg_config_t *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->size = sizeof(*cfg);
	return crx_get_u64(env, argv[0], &cfg->capacity) && crx_get_u32(env, argv[1], &cfg->key_max) &&
	       crx_get_u32(env, argv[2], &cfg->mode) && crx_get_u32(env, argv[3], &cfg->max_threads) &&
	       crx_get_u32(env, argv[4], &cfg->flags);
}

/* create(Name, Capacity, KeyMax, Mode, MaxThreads, Flags) */
static ERL_NIF_TERM nif_create(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
	char name[CRX_NAME_BUF];
	connreg_config_t cfg;
	connreg_t *reg = NULL;
	int rc;

	(void)argc;
	if (!crx_get_name(env, argv[0], name) || !crx_get_config(env, argv + 1, &cfg))
		return enif_make_badarg(env);
	rc = connreg_create(name, &cfg, &reg);
	if (rc != 0)
		return crx_error(env, crx_errno_atom(env, rc));
	return crx_opened(env, reg, 0, 0);
}

/* open_or_create(Name, Capacity, KeyMax, Mode, MaxThreads, Flags) */
static ERL_NIF_TERM nif_open_or_create(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
	char name[CRX_NAME_BUF];
	connreg_config_t cfg;
	connreg_t *reg = NULL;
	int rc, created = 0;

	(void)argc;
	if (!crx_get_name(env, argv[0], name) || !crx_get_config(env, argv + 1, &cfg))
		return enif_make_badarg(env);
	rc = connreg_open_or_create(name, &cfg, &reg, &created);
	if (rc != 0)
		return crx_error(env, crx_errno_atom(env, rc));
	return crx_opened(env, reg, 1, created);
}

/* open(Name) */
static ERL_NIF_TERM nif_open(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
	char name[CRX_NAME_BUF];
	connreg_t *reg = NULL;
	int rc;

	(void)argc;
	if (!crx_get_name(env, argv[0], name))
		return enif_make_badarg(env);
	rc = connreg_open(name, &reg);
	if (rc != 0)
		return crx_error(env, crx_errno_atom(env, rc));
	return crx_opened(env, reg, 0, 0);
}

/* unlink(Name) */
static ERL_NIF_TERM nif_unlink(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
	char name[CRX_NAME_BUF];
	int rc;

	(void)argc;
	if (!crx_get_name(env, argv[0], name))
		return enif_make_badarg(env);
	rc = connreg_unlink(name);
	return rc == 0 ? atom_ok : crx_error(env, crx_errno_atom(env, rc));
}

/* close(Handle): waits for calls in flight (a wait slice at most), then detaches. */
static ERL_NIF_TERM nif_close(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
	const struct timespec pause = {0, 50 * 1000};
	crx_handle *h;

	(void)argc;
	if (!crx_get_handle(env, argv[0], &h))
		return enif_make_badarg(env);
	enif_mutex_lock(h->close_mu);
	if (!h->released) {
		atomic_store_explicit(&h->closed, 1, memory_order_seq_cst);
		for (int i = 0; i < CRX_STRIPES; i++)
			while (atomic_load_explicit(&h->stripes[i].inflight, memory_order_seq_cst) != 0)
				nanosleep(&pause, NULL);
		connreg_close(h->reg);
		h->released = 1;
	}
	enif_mutex_unlock(h->close_mu);
	return atom_ok;
}

/* ------------------------------------------------------------------------ */
/* Id operations (normal schedulers)                                        */
/* ------------------------------------------------------------------------ */

/* Common prologue: handle, id binary; on failure *ret is the term to return. */
#define CRX_PROLOGUE(h, id)                                                                \
	do {                                                                                  \
		if (!crx_get_handle(env, argv[0], &(h)) || !enif_inspect_binary(env, argv[1], &(id))) \
			return enif_make_badarg(env);                                         \
	} while (0)

#define CRX_ENTER(h, s)                                                                       \
	do {                                                                                  \
		(s) = crx_enter(h);                                                           \
		if (!(s))                                                                     \
			return crx_error(env, atom_closed);                                   \
	} while (0)

/* register and update: (Handle, Id, Transport) -> ok | {error, Reason} */
static ERL_NIF_TERM crx_write(ErlNifEnv *env, const ERL_NIF_TERM argv[],
			      int (*write)(connreg_t *, const void *, size_t, uint64_t))
{
	struct crx_stripe *s;
	ErlNifBinary id;
	crx_handle *h;
	uint64_t t;
	int rc;

	CRX_PROLOGUE(h, id);
	if (!crx_get_u64(env, argv[2], &t))
		return enif_make_badarg(env);
	CRX_ENTER(h, s);
	rc = write(h->reg, id.data, id.size, t);
	crx_leave(s);
	return rc == 0 ? atom_ok : crx_id_error(env, rc);
}

/* register(Handle, Id, Transport) */
static ERL_NIF_TERM nif_register(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
	(void)argc;
	return crx_write(env, argv, connreg_register);
}

/* get(Handle, Id) */
static ERL_NIF_TERM nif_get(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
	struct crx_stripe *s;
	ErlNifBinary id;
	crx_handle *h;
	uint64_t t = 0;
	int rc;

	(void)argc;
	CRX_PROLOGUE(h, id);
	CRX_ENTER(h, s);
	rc = connreg_get_transport(h->reg, id.data, id.size, &t);
	crx_leave(s);
	return rc == 0 ? enif_make_tuple2(env, atom_ok, crx_make_u64(env, t)) : crx_id_error(env, rc);
}

/* update(Handle, Id, Transport) */
static ERL_NIF_TERM nif_update(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
	(void)argc;
	return crx_write(env, argv, connreg_update_transport);
}

/*
 * cas(Handle, Id, Expected, Desired): ok | {error, not_found} |
 * {error, {mismatch, Current}} | {error, eagain} (stalled reclamation) | ...
 */
static ERL_NIF_TERM nif_cas(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
	struct crx_stripe *s;
	ErlNifBinary id;
	crx_handle *h;
	uint64_t expected, desired, current;
	int rc;

	(void)argc;
	CRX_PROLOGUE(h, id);
	if (!crx_get_u64(env, argv[2], &expected) || !crx_get_u64(env, argv[3], &desired))
		return enif_make_badarg(env);
	current = expected;
	CRX_ENTER(h, s);
	rc = connreg_cas_transport(h->reg, id.data, id.size, expected, desired, &current);
	crx_leave(s);
	if (rc == 0)
		return atom_ok;
	if (rc == -EAGAIN && current != expected)
		return crx_error(env, enif_make_tuple2(env, atom_mismatch, crx_make_u64(env, current)));
	return crx_id_error(env, rc);
}

/* unregister(Handle, Id) */
static ERL_NIF_TERM nif_unregister(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
	struct crx_stripe *s;
	ErlNifBinary id;
	crx_handle *h;
	int rc;

	(void)argc;
	CRX_PROLOGUE(h, id);
	CRX_ENTER(h, s);
	rc = connreg_unregister(h->reg, id.data, id.size);
	crx_leave(s);
	return rc == 0 ? atom_ok : crx_id_error(env, rc);
}

/*
 * wait_slice(Handle, Id, Seen, TimeoutMs): dirty I/O, TimeoutMs clamped to
 * 0..100 so that the scheduler is freed soon when the caller is killed.
 * {ok, Transport} | {error, etimedout} | {error, Reason}
 */
static ERL_NIF_TERM nif_wait_slice(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
	struct crx_stripe *s;
	ErlNifBinary id;
	crx_handle *h;
	uint64_t seen, t = 0;
	int timeout, rc;

	(void)argc;
	CRX_PROLOGUE(h, id);
	if (!crx_get_u64(env, argv[2], &seen) || !enif_get_int(env, argv[3], &timeout))
		return enif_make_badarg(env);
	if (timeout < 0 || timeout > CRX_WAIT_SLICE_MS)
		timeout = CRX_WAIT_SLICE_MS;
	CRX_ENTER(h, s);
	rc = connreg_wait_transport(h->reg, id.data, id.size, seen, &t, timeout);
	crx_leave(s);
	if (rc == 0)
		return enif_make_tuple2(env, atom_ok, crx_make_u64(env, t));
	if (rc == -ETIMEDOUT)
		return crx_error(env, atom_etimedout);
	return crx_id_error(env, rc);
}

/*
 * get_bulk(Handle, [Id]): [{ok, T} | {error, Reason}] in the same order.
 * More than CRX_BULK_DIRTY_MIN ids: rescheduled on a dirty CPU scheduler.
 */
static ERL_NIF_TERM nif_get_bulk(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
	const void *ids[CRX_BULK_CHUNK];
	size_t lens[CRX_BULK_CHUNK];
	uint64_t ts[CRX_BULK_CHUNK];
	int rcs[CRX_BULK_CHUNK];
	ERL_NIF_TERM list, head, *out;
	struct crx_stripe *s;
	crx_handle *h;
	unsigned n, i, done;
	int rc = 0;

	if (!crx_get_handle(env, argv[0], &h) || !enif_get_list_length(env, argv[1], &n))
		return enif_make_badarg(env);
	if (n > CRX_BULK_DIRTY_MIN) {
		int tt = enif_thread_type();

		if (tt != ERL_NIF_THR_DIRTY_CPU_SCHEDULER && tt != ERL_NIF_THR_DIRTY_IO_SCHEDULER)
			return enif_schedule_nif(env, "get_bulk", ERL_NIF_DIRTY_JOB_CPU_BOUND,
						 nif_get_bulk, argc, argv);
	}
	out = enif_alloc(sizeof(*out) * (n ? n : 1));
	if (!out)
		return enif_raise_exception(env, enif_make_atom(env, "enomem"));
	s = crx_enter(h);
	if (!s) {
		enif_free(out);
		return crx_error(env, atom_closed);
	}
	list = argv[1];
	for (done = 0; done < n && rc == 0;) {
		unsigned m = n - done < CRX_BULK_CHUNK ? n - done : CRX_BULK_CHUNK;

		for (i = 0; i < m; i++) {
			ErlNifBinary bin;

			if (!enif_get_list_cell(env, list, &head, &list) ||
			    !enif_inspect_binary(env, head, &bin)) {
				crx_leave(s);
				enif_free(out);
				return enif_make_badarg(env);
			}
			ids[i] = bin.data;
			lens[i] = bin.size;
		}
		rc = connreg_get_transport_bulk(h->reg, m, ids, lens, ts, rcs);
		for (i = 0; rc == 0 && i < m; i++)
			out[done + i] = rcs[i] == 0 ?
				enif_make_tuple2(env, atom_ok, crx_make_u64(env, ts[i])) :
				crx_id_error(env, rcs[i]);
		done += m;
	}
	crx_leave(s);
	if (rc != 0) {
		enif_free(out);
		return crx_error(env, crx_errno_atom(env, rc));
	}
	list = enif_make_list_from_array(env, out, n);
	enif_free(out);
	return list;
}

/* ------------------------------------------------------------------------ */
/* Walks, stats, check                                                      */
/* ------------------------------------------------------------------------ */

struct crx_walk {
	ErlNifEnv *env;
	ERL_NIF_TERM acc;
};

static int crx_collect(const void *id, size_t id_len, uint64_t transport, void *arg)
{
	struct crx_walk *w = arg;
	ERL_NIF_TERM bin;
	unsigned char *p = enif_make_new_binary(w->env, id_len, &bin);

	if (!p)
		return -ENOMEM;
	memcpy(p, id, id_len);
	w->acc = enif_make_list_cell(w->env, enif_make_tuple2(w->env, bin, crx_make_u64(w->env, transport)),
				     w->acc);
	return 0;
}

/* to_list(Handle): dirty CPU; {ok, [{Id, Transport}]} from one connreg_foreach walk. */
static ERL_NIF_TERM nif_to_list(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
	struct crx_walk w = {env, 0};
	struct crx_stripe *s;
	crx_handle *h;
	int rc;

	(void)argc;
	if (!crx_get_handle(env, argv[0], &h))
		return enif_make_badarg(env);
	w.acc = enif_make_list(env, 0);
	CRX_ENTER(h, s);
	rc = connreg_foreach(h->reg, crx_collect, &w);
	crx_leave(s);
	if (rc != 0)
		return crx_error(env, crx_errno_atom(env, rc));
	return enif_make_tuple2(env, atom_ok, w.acc);
}

static void crx_report(const char *problem, void *arg)
{
	struct crx_walk *w = arg;
	size_t len = strlen(problem);
	ERL_NIF_TERM bin;
	unsigned char *p = enif_make_new_binary(w->env, len, &bin);

	if (!p)
		return;
	memcpy(p, problem, len);
	w->acc = enif_make_list_cell(w->env, bin, w->acc);
}

/* check(Handle): dirty CPU; ok | {error, {problems, [Line]}} | {error, Reason} */
static ERL_NIF_TERM nif_check(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
	struct crx_walk w = {env, 0};
	struct crx_stripe *s;
	ERL_NIF_TERM lines;
	crx_handle *h;
	int rc;

	(void)argc;
	if (!crx_get_handle(env, argv[0], &h))
		return enif_make_badarg(env);
	w.acc = enif_make_list(env, 0);
	CRX_ENTER(h, s);
	rc = connreg_check(h->reg, crx_report, &w);
	crx_leave(s);
	if (rc < 0)
		return crx_error(env, crx_errno_atom(env, rc));
	if (rc == 0)
		return atom_ok;
	enif_make_reverse_list(env, w.acc, &lines);
	return crx_error(env, enif_make_tuple2(env, enif_make_atom(env, "problems"), lines));
}

/* stats(Handle): {ok, #{...}} */
static ERL_NIF_TERM nif_stats(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
	struct crx_stripe *s;
	connreg_stats_t st;
	crx_handle *h;
	ERL_NIF_TERM keys[21], vals[21], map;
	int rc, n = 0;

	(void)argc;
	if (!crx_get_handle(env, argv[0], &h))
		return enif_make_badarg(env);
	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	CRX_ENTER(h, s);
	rc = connreg_stats(h->reg, &st);
	crx_leave(s);
	if (rc != 0)
		return crx_error(env, crx_errno_atom(env, rc));
#define CRX_STAT(field)                                                   \
	do {                                                              \
		keys[n] = enif_make_atom(env, #field);                    \
		vals[n] = crx_make_u64(env, (uint64_t)st.field);          \
		n++;                                                      \
	} while (0)
	CRX_STAT(layout_version);
	CRX_STAT(capacity);
	CRX_STAT(live);
	CRX_STAT(free);
	CRX_STAT(retired);
	CRX_STAT(tombstones);
	CRX_STAT(epoch);
	CRX_STAT(safe_epoch);
	CRX_STAT(readers);
	CRX_STAT(max_probe);
	CRX_STAT(entries);
	CRX_STAT(buckets);
	CRX_STAT(segment_size);
	CRX_STAT(key_max);
	CRX_STAT(max_threads);
	CRX_STAT(flags);
	CRX_STAT(writer_eagain);
	CRX_STAT(slots_recovered);
	CRX_STAT(grace_periods);
#undef CRX_STAT
	if (!enif_make_map_from_arrays(env, keys, vals, (size_t)n, &map))
		return enif_make_badarg(env);
	return enif_make_tuple2(env, atom_ok, map);
}

/* strerror(Rc): the library's text for a (negative) return value. */
static ERL_NIF_TERM nif_strerror(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
	const char *text;
	ERL_NIF_TERM bin;
	unsigned char *p;
	size_t len;
	int rc;

	(void)argc;
	if (!enif_get_int(env, argv[0], &rc))
		return enif_make_badarg(env);
	text = connreg_strerror(rc);
	len = strlen(text);
	p = enif_make_new_binary(env, len, &bin);
	memcpy(p, text, len);
	return bin;
}

/* ------------------------------------------------------------------------ */
/* Load                                                                     */
/* ------------------------------------------------------------------------ */

static int crx_load(ErlNifEnv *env, void **priv, ERL_NIF_TERM info)
{
	(void)priv;
	(void)info;
	crx_handle_type = enif_open_resource_type(env, NULL, "connreg_handle", crx_handle_dtor,
						  ERL_NIF_RT_CREATE, NULL);
	if (!crx_handle_type)
		return 1;
	atom_ok = enif_make_atom(env, "ok");
	atom_error = enif_make_atom(env, "error");
	atom_closed = enif_make_atom(env, "closed");
	atom_not_found = enif_make_atom(env, "not_found");
	atom_true = enif_make_atom(env, "true");
	atom_false = enif_make_atom(env, "false");
	atom_mismatch = enif_make_atom(env, "mismatch");
	atom_etimedout = enif_make_atom(env, "etimedout");
	return 0;
}

static ErlNifFunc crx_funcs[] = {
	{"create", 6, nif_create, ERL_NIF_DIRTY_JOB_IO_BOUND},
	{"open_or_create", 6, nif_open_or_create, ERL_NIF_DIRTY_JOB_IO_BOUND},
	{"open", 1, nif_open, ERL_NIF_DIRTY_JOB_IO_BOUND},
	{"close", 1, nif_close, ERL_NIF_DIRTY_JOB_IO_BOUND},
	{"unlink", 1, nif_unlink, 0},
	{"register", 3, nif_register, 0},
	{"get", 2, nif_get, 0},
	{"update", 3, nif_update, 0},
	{"cas", 4, nif_cas, 0},
	{"unregister", 2, nif_unregister, 0},
	{"wait_slice", 4, nif_wait_slice, ERL_NIF_DIRTY_JOB_IO_BOUND},
	{"get_bulk", 2, nif_get_bulk, 0},
	{"to_list", 1, nif_to_list, ERL_NIF_DIRTY_JOB_CPU_BOUND},
	{"check", 1, nif_check, ERL_NIF_DIRTY_JOB_CPU_BOUND},
	{"stats", 1, nif_stats, 0},
	{"strerror", 1, nif_strerror, 0},
};

ERL_NIF_INIT(Elixir.ConnReg.Nif, crx_funcs, crx_load, NULL, NULL, NULL)
