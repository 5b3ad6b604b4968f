/*
 * Hostile and corrupt input (issue 3, section 3).
 *
 * connreg_open must refuse, with -EPROTO, every segment that is not a sound
 * registry: empty, short, foreign bytes (random, text, an ELF image), and a
 * real registry with any one header field changed. Each open runs in a
 * forked child, so a crash or a hang shows up as a failed case with its
 * name instead of a dead runner, and each case checks
 *   - the return value,
 *   - the time it took (a foreign nonzero magic fails at once; a zeroed or
 *     unfinished segment fails after the CONNREG_OPEN_WAIT_MS ready wait),
 *   - that the segment's bytes and size are exactly what they were before
 *     ("bad input changes nothing").
 * Cases that wait for the ready marker (2 s each) run all at once in
 * parallel children, so the whole file takes a few seconds.
 *
 * The second half feeds every public function bad arguments (NULL, zero
 * and SIZE_MAX lengths, every byte value in ids and names) and checks the
 * documented error and that a registry's content did not change.
 */
#include "common.h"

#include "layout.h"

#include <elf.h>

static void h_cleanup(void);

TestSuite(hostile, .fini = h_cleanup, .timeout = 60);

/* A foreign magic must be refused well before the ready wait ends. */
#define H_FAST_MS (CONNREG_OPEN_WAIT_MS / 2)
/* A zeroed / unfinished segment: the ready wait, plus scheduling slack. */
#define H_SLOW_MS (CONNREG_OPEN_WAIT_MS + 1500)
/* A child still running this long after its bound is hung: kill it. */
#define H_HANG_SLACK_MS 5000

/* ------------------------------------------------------------------ */
/* segment names (more than common.h's 64), unlinked at .fini          */
/* ------------------------------------------------------------------ */

#define H_NAME_LEN 64
#define H_MAX_NAMES 512
static char h_names[H_MAX_NAMES][H_NAME_LEN];
static unsigned h_names_n;

static const char *h_name(char *buf, const char *tag)
{
	static unsigned counter;

	snprintf(buf, H_NAME_LEN, "/crt-h%s-%ld-%u", tag, (long)getpid(), counter++);
	shm_unlink(buf);
	if (h_names_n < H_MAX_NAMES)
		memcpy(h_names[h_names_n++], buf, H_NAME_LEN);
	return buf;
}

static void h_cleanup(void)
{
	for (unsigned i = 0; i < h_names_n; i++)
		shm_unlink(h_names[i]);
	h_names_n = 0;
	t_cleanup_names();
}

/* ------------------------------------------------------------------ */
/* failure collection: every failing case is listed, not just the first */
/* ------------------------------------------------------------------ */

typedef struct h_fails {
	int n;
	size_t used;
	char text[6000];
} h_fails_t;

__attribute__((format(printf, 2, 3))) static void h_fail(h_fails_t *f, const char *fmt, ...)
{
	va_list ap;

	f->n++;
	if (f->used + 2 >= sizeof f->text)
		return;
	va_start(ap, fmt);
	int k = vsnprintf(f->text + f->used, sizeof f->text - f->used - 1, fmt, ap);
	va_end(ap);
	if (k < 0)
		return;
	f->used += (size_t)k;
	if (f->used > sizeof f->text - 2)
		f->used = sizeof f->text - 2;
	f->text[f->used++] = '\n';
	f->text[f->used] = '\0';
}

#define H_ASSERT_NO_FAILS(f, n_cases)                                                       \
	cr_assert_eq((f)->n, 0, "%d problem(s) in %zu case(s):\n%s", (f)->n, (size_t)(n_cases), \
		     (f)->text)

/* ------------------------------------------------------------------ */
/* raw segments                                                        */
/* ------------------------------------------------------------------ */

/* Create `name` of `size` bytes holding bytes[0..len). 0 or -errno. */
static int h_make_raw(const char *name, const void *bytes, size_t len, size_t size)
{
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) != 0)
		rc = -errno;
	if (!rc && len && pwrite(fd, bytes, len, 0) != (ssize_t)len)
		rc = -EIO;
	close(fd);
	return rc;
}

/* The whole segment's bytes (malloc'd, *len set); NULL when unreadable. */
static uint8_t *h_read_seg(const char *name, size_t *len)
{
	int fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
	struct stat st;
	uint8_t *buf = NULL;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0) {
		buf = malloc((size_t)st.st_size + 1);
		if (buf && st.st_size && pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)st.st_size;
	}
	close(fd);
	return buf;
}

/* The small valid registry every header case starts from. */
static const connreg_config_t *h_valid_cfg(void)
{
	/* The pid flag gives it side entries, so that every geometry field means something. */
	static connreg_config_t c = { .capacity = 4,
				      .key_max = 8,
				      .max_threads = 1,
				      .flags = CONNREG_TRANSPORT_IS_PID };
	return &c;
}

/* connreg_create + two ids + connreg_close (the segment stays). 0 or rc. */
static int h_make_valid(const char *name)
{
	connreg_t *r = NULL;
	int rc = connreg_create(name, h_valid_cfg(), &r);

	if (rc)
		return rc;
	rc = connreg_register(r, "conn-1", 6, 0x1111);
	if (!rc)
		rc = connreg_register(r, "c2", 2, UINT64_MAX);
	connreg_close(r);
	return rc;
}

/* ------------------------------------------------------------------ */
/* header patches                                                      */
/* ------------------------------------------------------------------ */

enum h_op { H_SET, H_ADD, H_XOR, H_RESIZE };

struct h_edit {
	size_t off;	/* into the segment (a struct cr_header field) */
	unsigned width;	/* 4 or 8 bytes; 0 for H_RESIZE */
	enum h_op op;
	uint64_t val;	/* H_RESIZE: signed byte delta of the segment's size */
};

#define H_FIELD(m) offsetof(struct cr_header, m), sizeof(((struct cr_header *)0)->m)
#define E(m, op, v) { H_FIELD(m), op, (uint64_t)(v) }
#define E_RESIZE(delta) { 0, 0, H_RESIZE, (uint64_t)(int64_t)(delta) }

struct h_patch {
	const char *what;
	int expect;		/* -EPROTO, or 0 for an accepted (control) change */
	unsigned n;
	struct h_edit e[20];
};

static uint64_t h_width_mask(unsigned width)
{
	return width == 8 ? UINT64_MAX : ((1ull << (8 * width)) - 1);
}

/* Apply the edits to the segment. 0 or -errno. */
static int h_apply(const char *name, const struct h_edit *e, unsigned n)
{
	int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
	int rc = 0;

	if (fd < 0)
		return -errno;
	for (unsigned i = 0; i < n && !rc; i++) {
		struct stat st;

		if (fstat(fd, &st) != 0) {
			rc = -errno;
			break;
		}
		if (e[i].op == H_RESIZE) {
			if (ftruncate(fd, st.st_size + (off_t)(int64_t)e[i].val) != 0)
				rc = -errno;
			continue;
		}
		if ((size_t)st.st_size < e[i].off + e[i].width) {
			rc = -ERANGE;
			break;
		}
		uint8_t *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			rc = -errno;
			break;
		}
		uint64_t v = 0, m = h_width_mask(e[i].width);
		memcpy(&v, p + e[i].off, e[i].width);
		switch (e[i].op) {
		case H_SET:
			v = e[i].val;
			break;
		case H_ADD:
			v += e[i].val;
			break;
		case H_XOR:
			v ^= e[i].val;
			break;
		case H_RESIZE:
			break;
		}
		v &= m;
		memcpy(p + e[i].off, &v, e[i].width);
		munmap(p, (size_t)st.st_size);
	}
	close(fd);
	return rc;
}

/* ------------------------------------------------------------------ */
/* the open-case runner                                                */
/* ------------------------------------------------------------------ */

struct h_case {
	char name[H_NAME_LEN];
	char what[128];
	int expect;
	unsigned max_ms;
	uint8_t *snap;
	size_t snap_len;
};

struct h_result {
	int rc;
	int done;
	uint64_t us;
};

struct h_child_arg {
	const char *name;
	struct h_result *res;
};

static int h_open_child(void *argp)
{
	struct h_child_arg *a = argp;
	connreg_t *r = NULL;
	uint64_t t0 = t_now_ns();
	int rc = connreg_open(a->name, &r);

	a->res->us = (t_now_ns() - t0) / 1000;
	a->res->rc = rc;
	if (rc == 0) {
		if (r == NULL)
			return 3;
		connreg_close(r);
	}
	a->res->done = 1;
	return 0;
}

/*
 * Open every case's segment in its own child, `par` children at a time,
 * and record into f every case whose child crashed, hung, returned the
 * wrong value, took too long, or changed the segment. Unlinks the cases.
 */
static void h_run(struct h_case *c, size_t n, size_t par, h_fails_t *f)
{
	struct h_result *res = t_shared(n * sizeof *res);
	struct h_child_arg *args = calloc(n, sizeof *args);
	pid_t *pids = calloc(n, sizeof *pids);

	cr_assert(res && args && pids);
	for (size_t i = 0; i < n; i++) {
		c[i].snap = h_read_seg(c[i].name, &c[i].snap_len);
		cr_assert_not_null(c[i].snap, "case '%s': cannot read its segment", c[i].what);
	}
	for (size_t i = 0; i < n; i += par) {
		size_t end = i + par < n ? i + par : n;

		for (size_t j = i; j < end; j++) {
			args[j].name = c[j].name;
			args[j].res = &res[j];
			pids[j] = t_fork(h_open_child, &args[j]);
			cr_assert_gt(pids[j], 0, "fork: %s", strerror(errno));
		}
		for (size_t j = i; j < end; j++) {
			int st = t_wait(pids[j], c[j].max_ms + H_HANG_SLACK_MS);

			if (st == T_WAIT_TIMEOUT)
				h_fail(f, "%s: HUNG (open still running after %u ms, killed)", c[j].what,
				       c[j].max_ms + H_HANG_SLACK_MS);
			else if (st >= T_WAIT_SIGNALED && st < T_WAIT_TIMEOUT)
				h_fail(f, "%s: CRASHED in connreg_open (signal %d)", c[j].what,
				       st - T_WAIT_SIGNALED);
			else if (st != 0 || !res[j].done)
				h_fail(f, "%s: child exit status %d (sanitizer report above?)", c[j].what,
				       st);
			else {
				if (res[j].rc != c[j].expect)
					h_fail(f, "%s: connreg_open = %d (%s), want %d (%s)", c[j].what,
					       res[j].rc, connreg_strerror(res[j].rc), c[j].expect,
					       connreg_strerror(c[j].expect));
				if (res[j].us > (uint64_t)c[j].max_ms * 1000)
					h_fail(f, "%s: connreg_open took %" PRIu64 " ms, bound %u ms",
					       c[j].what, res[j].us / 1000, c[j].max_ms);
			}
			size_t len = 0;
			uint8_t *now = h_read_seg(c[j].name, &len);

			if (!now)
				h_fail(f, "%s: segment gone after the open", c[j].what);
			else if (len != c[j].snap_len)
				h_fail(f, "%s: segment size changed %zu -> %zu", c[j].what, c[j].snap_len,
				       len);
			else if (memcmp(now, c[j].snap, len) != 0) {
				size_t k = 0;
				while (k < len && now[k] == c[j].snap[k])
					k++;
				h_fail(f, "%s: segment bytes changed by the failed open (first at offset %zu)",
				       c[j].what, k);
			}
			free(now);
		}
	}
	for (size_t i = 0; i < n; i++) {
		shm_unlink(c[i].name);
		free(c[i].snap);
		c[i].snap = NULL;
	}
	munmap(res, n * sizeof *res);
	free(args);
	free(pids);
}

/* One case per patch, each on its own freshly created valid registry. */
static void h_run_patches(const char *tag, const struct h_patch *p, size_t n)
{
	struct h_case *c = calloc(n, sizeof *c);
	h_fails_t f = { 0 };

	cr_assert_not_null(c);
	for (size_t i = 0; i < n; i++) {
		size_t before_len = 0, after_len = 0;

		h_name(c[i].name, tag);
		snprintf(c[i].what, sizeof c[i].what, "%s", p[i].what);
		c[i].expect = p[i].expect;
		c[i].max_ms = H_FAST_MS;
		int rc = h_make_valid(c[i].name);
		cr_assert_eq(rc, 0, "connreg_create for case '%s' = %d", p[i].what, rc);
		uint8_t *before = h_read_seg(c[i].name, &before_len);
		rc = h_apply(c[i].name, p[i].e, p[i].n);
		cr_assert_eq(rc, 0, "patching case '%s': %d", p[i].what, rc);
		uint8_t *after = h_read_seg(c[i].name, &after_len);
		cr_assert(before && after);
		/* A patch that changes nothing would test nothing. */
		cr_assert(p[i].n == 0 || before_len != after_len || memcmp(before, after, before_len),
			  "case '%s': the patch did not change the segment", p[i].what);
		free(before);
		free(after);
	}
	h_run(c, n, 8, &f);
	free(c);
	H_ASSERT_NO_FAILS(&f, n);
}

/* ------------------------------------------------------------------ */
/* a valid registry, as the control for everything below               */
/* ------------------------------------------------------------------ */

Test(hostile, valid_registry_and_harmless_changes_open)
{
	/* Every value here is one a real creator could have written. */
	const struct h_patch p[] = {
		/* two ids registered: live_hint 2, rslot_hwm = n_rslots = 1 */
		{ "unmodified registry", 0, 0, { { 0 } } },
		{ "pad0 bytes changed (padding is not checked)", 0, 1,
		  { { offsetof(struct cr_header, pad0), 4, H_XOR, 0xa5a5a5a5 } } },
		{ "secret changed (any secret is valid)", 0, 1,
		  { { offsetof(struct cr_header, secret), 8, H_XOR, 0xdeadbeef } } },
		/* key_max 8 and 9 give the same 64-byte entry stride: the same geometry. */
		{ "key_max 8 -> 9 (same entry stride)", 0, 1, { E(params.key_max, H_SET, 9) } },
		{ "epoch = safe_epoch = 1000", 0, 2,
		  { E(epoch, H_SET, 1000), E(safe_epoch, H_SET, 1000) } },
		{ "live_hint = capacity", 0, 1, { E(live_hint, H_SET, 4) } },
	};
	h_run_patches("ok", p, sizeof p / sizeof p[0]);
}

/* ------------------------------------------------------------------ */
/* identity: magic, layout version, signature, flags                   */
/* ------------------------------------------------------------------ */

Test(hostile, changed_identity_fields_give_EPROTO_fast)
{
	const struct h_patch p[] = {
		{ "magic + 1", -EPROTO, 1, { E(magic, H_ADD, 1) } },
		{ "magic 'CONNREG2'", -EPROTO, 1, { E(magic, H_ADD, 1ull << 56) } },
		{ "magic inverted", -EPROTO, 1, { E(magic, H_XOR, UINT64_MAX) } },
		{ "magic byte-swapped", -EPROTO, 1, { E(magic, H_SET, __builtin_bswap64(CR_MAGIC)) } },
		{ "magic all ones", -EPROTO, 1, { E(magic, H_SET, UINT64_MAX) } },
		/* ready is still set, so the zero magic is checked, not waited on */
		{ "magic 0 (ready set)", -EPROTO, 1, { E(magic, H_SET, 0) } },
		{ "layout_version + 1", -EPROTO, 1, { E(layout_version, H_ADD, 1) } },
		{ "layout_version 0", -EPROTO, 1, { E(layout_version, H_SET, 0) } },
		{ "layout_version 0xffffffff", -EPROTO, 1, { E(layout_version, H_SET, 0xffffffffu) } },
		{ "layout_sig + 1", -EPROTO, 1, { E(layout_sig, H_ADD, 1) } },
		{ "layout_sig 0", -EPROTO, 1, { E(layout_sig, H_SET, 0) } },
		{ "layout_sig inverted", -EPROTO, 1, { E(layout_sig, H_XOR, 0xffffffffu) } },
		{ "layout_sig top bit", -EPROTO, 1, { E(layout_sig, H_XOR, 0x80000000u) } },
		{ "flags unknown bit 0x2", -EPROTO, 1, { E(flags, H_SET, 0x2) } },
		/* Short ids without the pid flag have no side entries: another geometry. */
		{ "flags 0 (IS_PID cleared)", -EPROTO, 1, { E(flags, H_SET, 0) } },
		{ "flags IS_PID | 0x4", -EPROTO, 1, { E(flags, H_SET, CONNREG_TRANSPORT_IS_PID | 0x4) } },
		{ "flags 0x80000000", -EPROTO, 1, { E(flags, H_SET, 0x80000000u) } },
		{ "flags 0xffffffff", -EPROTO, 1, { E(flags, H_SET, 0xffffffffu) } },
	};
	_Static_assert(CR_MAGIC + (1ull << 56) == 0x324745524e4e4f43ull, "'CONNREG2'");
	h_run_patches("id", p, sizeof p / sizeof p[0]);
}

/* ------------------------------------------------------------------ */
/* parameters: capacity, key_max, n_rslots                             */
/* ------------------------------------------------------------------ */

Test(hostile, changed_parameters_give_EPROTO)
{
	const struct h_patch p[] = {
		{ "capacity 0", -EPROTO, 1, { E(params.capacity, H_SET, 0) } },
		{ "capacity + 1", -EPROTO, 1, { E(params.capacity, H_ADD, 1) } },
		{ "capacity - 1", -EPROTO, 1, { E(params.capacity, H_ADD, -1) } },
		{ "capacity = limit (valid value, other geometry)", -EPROTO, 1,
		  { E(params.capacity, H_SET, CONNREG_CAPACITY_LIMIT) } },
		{ "capacity = limit + 1", -EPROTO, 1,
		  { E(params.capacity, H_SET, CONNREG_CAPACITY_LIMIT + 1) } },
		{ "capacity 2^63", -EPROTO, 1, { E(params.capacity, H_SET, 1ull << 63) } },
		{ "capacity UINT64_MAX", -EPROTO, 1, { E(params.capacity, H_SET, UINT64_MAX) } },
		{ "key_max 0", -EPROTO, 1, { E(params.key_max, H_SET, 0) } },
		{ "key_max 49 (next entry stride)", -EPROTO, 1,
		  { E(params.key_max, H_SET, 49) } },
		{ "key_max = limit", -EPROTO, 1, { E(params.key_max, H_SET, CONNREG_KEY_MAX_LIMIT) } },
		{ "key_max = limit + 1", -EPROTO, 1,
		  { E(params.key_max, H_SET, CONNREG_KEY_MAX_LIMIT + 1) } },
		{ "key_max 0xffffffff", -EPROTO, 1, { E(params.key_max, H_SET, 0xffffffffu) } },
		{ "n_rslots 0", -EPROTO, 1, { E(params.n_rslots, H_SET, 0) } },
		{ "n_rslots + 1", -EPROTO, 1, { E(params.n_rslots, H_ADD, 1) } },
		{ "n_rslots = max", -EPROTO, 1, { E(params.n_rslots, H_SET, CR_MAX_RSLOTS) } },
		{ "n_rslots = max + 1", -EPROTO, 1, { E(params.n_rslots, H_SET, CR_MAX_RSLOTS + 1) } },
		{ "n_rslots 0xffffffff", -EPROTO, 1, { E(params.n_rslots, H_SET, 0xffffffffu) } },
		/* parameters and geometry changed together, consistently: the size still differs */
		{ "capacity + 1000 (geometry not updated)", -EPROTO, 1,
		  { E(params.capacity, H_ADD, 1000) } },
	};
	h_run_patches("par", p, sizeof p / sizeof p[0]);
}

/*
 * The parameters AND the geometry rewritten together, consistently, for
 * another configuration. Open checks consistency, not history: a header
 * that describes a registry fitting the segment's real size exactly is
 * accepted (and is memory-safe to use: every region lies inside the
 * segment); one whose size differs is -EPROTO.
 */
Test(hostile, consistent_header_of_another_configuration_opens_only_if_sizes_agree)
{
	static const struct cr_params alt[] = {
		{ 5, 8, 1 },	{ 4, 8, 2 },	{ 4, 9, 1 },	  { 4, 48, 1 },
		{ 64, 8, 1 },	{ 1000, 8, 1 }, { 4, 4096, 1 },	  { 4, 8, 512 },
		{ CONNREG_CAPACITY_LIMIT, 8, 1 },
	};
	enum { N = sizeof alt / sizeof alt[0] };
	static struct h_patch p[N];
	static char what[N][96];
	size_t accepted = 0, refused = 0;
	char name[H_NAME_LEN];
	size_t real = 0;

	h_name(name, "cfgsz");
	cr_assert_eq(h_make_valid(name), 0);
	free(h_read_seg(name, &real));
	shm_unlink(name);
	for (size_t i = 0; i < N; i++) {
		struct cr_geometry g;
		struct h_patch *q = &p[i];
		unsigned k = 0;

		cr_assert_eq(cr_geometry_compute(&alt[i], h_valid_cfg()->flags, &g), 0);
		q->expect = g.segment_size == real ? 0 : -EPROTO;
		accepted += q->expect == 0;
		refused += q->expect != 0;
		snprintf(what[i], sizeof what[0],
			 "consistent header for capacity %" PRIu64 " key_max %u n_rslots %u (%s)",
			 alt[i].capacity, alt[i].key_max, alt[i].n_rslots,
			 q->expect ? "other size" : "same size");
		q->what = what[i];
#define SETF(m, v) q->e[k++] = (struct h_edit){ H_FIELD(m), H_SET, (uint64_t)(v) }
		SETF(params.capacity, alt[i].capacity);
		SETF(params.key_max, alt[i].key_max);
		SETF(params.n_rslots, alt[i].n_rslots);
		SETF(geo.segment_size, g.segment_size);
		SETF(geo.off_index, g.off_index);
		SETF(geo.off_rslots, g.off_rslots);
		SETF(geo.off_tokens, g.off_tokens);
		SETF(geo.off_stripes, g.off_stripes);
		SETF(geo.off_states, g.off_states);
		SETF(geo.off_entries, g.off_entries);
		SETF(geo.n_buckets, g.n_buckets);
		SETF(geo.n_entries, g.n_entries);
		SETF(geo.n_stripes, g.n_stripes);
		SETF(geo.entry_stride, g.entry_stride);
		SETF(geo.n_tokens, g.n_tokens);
		SETF(geo.off_changes, g.off_changes);
		SETF(geo.n_change_words, g.n_change_words);
#undef SETF
		q->n = k;
	}
	/* both outcomes must be exercised, or the configurations above are wrong */
	cr_assert_geq(accepted, 2);
	cr_assert_geq(refused, 2);
	h_run_patches("cfg", p, N);
	cr_log_info("consistent rewrites: %zu of the same size (opened), %zu refused", accepted,
		    refused);
}

/* ------------------------------------------------------------------ */
/* geometry: every field +1 / -1 / 0 / huge / top bit / one page        */
/* ------------------------------------------------------------------ */

Test(hostile, changed_geometry_fields_give_EPROTO)
{
	static const struct {
		const char *name;
		size_t off;
		unsigned width;
	} fields[] = {
#define G(m) { #m, H_FIELD(m) }
		G(geo.segment_size), G(geo.off_index), G(geo.off_rslots), G(geo.off_stripes),
		G(geo.off_states),   G(geo.off_entries), G(geo.n_buckets), G(geo.n_entries),
		G(geo.n_stripes),    G(geo.entry_stride),
#undef G
	};
	static const struct {
		const char *name;
		enum h_op op;
		uint64_t val;	/* H_SET UINT64_MAX is masked to the width: "huge" */
	} muts[] = {
		{ "+1", H_ADD, 1 },		{ "-1", H_ADD, UINT64_MAX },
		{ "= 0", H_SET, 0 },		{ "= huge (all ones)", H_SET, UINT64_MAX },
		{ "^ top bit", H_XOR, 1ull << 63 }, { "+ one page", H_ADD, 4096 },
	};
	enum { NF = sizeof fields / sizeof fields[0], NM = sizeof muts / sizeof muts[0] };
	static struct h_patch p[NF * NM];
	static char what[NF * NM][96];

	for (size_t i = 0; i < NF; i++) {
		for (size_t j = 0; j < NM; j++) {
			struct h_patch *q = &p[i * NM + j];
			uint64_t v = muts[j].val;

			if (muts[j].op == H_XOR && v == 1ull << 63)
				v = 1ull << (8 * fields[i].width - 1);
			snprintf(what[i * NM + j], sizeof what[0], "%s %s", fields[i].name, muts[j].name);
			q->what = what[i * NM + j];
			q->expect = -EPROTO;
			q->n = 1;
			q->e[0] = (struct h_edit){ fields[i].off, fields[i].width, muts[j].op, v };
		}
	}
	h_run_patches("geo", p, NF * NM);
}

/* ------------------------------------------------------------------ */
/* the segment's real size against the header                          */
/* ------------------------------------------------------------------ */

Test(hostile, segment_size_mismatch_gives_EPROTO)
{
	const struct h_patch p[] = {
		{ "truncated by one page", -EPROTO, 1, { E_RESIZE(-4096) } },
		{ "truncated by one byte", -EPROTO, 1, { E_RESIZE(-1) } },
		{ "extended by one page", -EPROTO, 1, { E_RESIZE(4096) } },
		{ "extended by one byte", -EPROTO, 1, { E_RESIZE(1) } },
		{ "extended by 1 MiB", -EPROTO, 1, { E_RESIZE(1 << 20) } },
		{ "truncated by one page, header segment_size matching", -EPROTO, 2,
		  { E_RESIZE(-4096), E(geo.segment_size, H_ADD, -4096) } },
		{ "extended by one page, header segment_size matching", -EPROTO, 2,
		  { E_RESIZE(4096), E(geo.segment_size, H_ADD, 4096) } },
		{ "truncated to the header's first page only", -EPROTO, 1,
		  { E_RESIZE(-(int64_t)(36 * 1024 - 4096)) } },
	};
	/* The last case assumes the small registry's size: check it. */
	char name[H_NAME_LEN];
	size_t len = 0;
	h_name(name, "sz");
	cr_assert_eq(h_make_valid(name), 0);
	free(h_read_seg(name, &len));
	shm_unlink(name);
	cr_assert_eq(len, 36 * 1024, "the capacity-4 registry is %zu bytes", len);
	h_run_patches("sz", p, sizeof p / sizeof p[0]);
}

/* ------------------------------------------------------------------ */
/* dynamic words                                                       */
/* ------------------------------------------------------------------ */

Test(hostile, out_of_range_dynamic_words_give_EPROTO)
{
	const struct h_patch p[] = {
		{ "epoch 0", -EPROTO, 1, { E(epoch, H_SET, 0) } },
		{ "safe_epoch 0", -EPROTO, 1, { E(safe_epoch, H_SET, 0) } },
		{ "safe_epoch > epoch", -EPROTO, 2, { E(epoch, H_SET, 5), E(safe_epoch, H_SET, 6) } },
		{ "safe_epoch UINT64_MAX", -EPROTO, 1, { E(safe_epoch, H_SET, UINT64_MAX) } },
		{ "live_hint = capacity + 1", -EPROTO, 1, { E(live_hint, H_SET, 5) } },
		{ "live_hint UINT64_MAX", -EPROTO, 1, { E(live_hint, H_SET, UINT64_MAX) } },
		{ "rslot_hwm = n_rslots + 1", -EPROTO, 1, { E(rslot_hwm, H_SET, 2) } },
		{ "rslot_hwm 0xffffffff", -EPROTO, 1, { E(rslot_hwm, H_SET, 0xffffffffu) } },
	};
	h_run_patches("dyn", p, sizeof p / sizeof p[0]);
}

/* ------------------------------------------------------------------ */
/* not a registry at all                                               */
/* ------------------------------------------------------------------ */

static void h_fill_random(uint8_t *b, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(t_rand(&seed) >> 56);
}

/* The first `n` bytes of this test binary: a real ELF file. */
static uint8_t *h_self_elf(size_t n, size_t *got)
{
	uint8_t *b = calloc(1, n);
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	ssize_t k = fd >= 0 && b ? pread(fd, b, n, 0) : -1;

	if (fd >= 0)
		close(fd);
	*got = k > 0 ? (size_t)k : 0;
	return b;
}

static const char h_text[] =
	"GET /index.html HTTP/1.1\r\nHost: example.org\r\nUser-Agent: connreg-test\r\n"
	"Accept: */*\r\n\r\n"
	"# /etc/fstab: static file system information.\n"
	"proc  /proc  proc  defaults  0  0\n"
	"{\"id\": \"conn-42\", \"transport\": 12345, \"tags\": [\"a\", \"b\"]}\n"
	"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n";

/* A case backed by raw bytes; bytes are copied, size may exceed len (zero-filled). */
static void h_raw_case(struct h_case *c, const char *what, const void *bytes, size_t len,
		       size_t size, unsigned max_ms)
{
	h_name(c->name, "raw");
	snprintf(c->what, sizeof c->what, "%s", what);
	c->expect = -EPROTO;
	c->max_ms = max_ms;
	int rc = h_make_raw(c->name, bytes, len, size);
	cr_assert_eq(rc, 0, "creating raw case '%s': %d", what, rc);
}

/* A real registry's first `n` bytes (header included). */
static uint8_t *h_valid_image(size_t *len)
{
	char name[H_NAME_LEN];

	h_name(name, "img");
	cr_assert_eq(h_make_valid(name), 0);
	uint8_t *img = h_read_seg(name, len);
	cr_assert_not_null(img);
	shm_unlink(name);
	return img;
}

/*
 * Segments that look like a creator that has not finished: empty, shorter
 * than the header, or a header with a zero magic / no ready marker. Open
 * waits CONNREG_OPEN_WAIT_MS for each, then -EPROTO; all run at once.
 */
Test(hostile, unfinished_or_short_segments_give_EPROTO_after_the_ready_wait)
{
	size_t img_len = 0, elf_len = 0;
	uint8_t *img = h_valid_image(&img_len);
	uint8_t *elf = h_self_elf(sizeof(Elf64_Ehdr), &elf_len);
	uint8_t rnd[100], zeros[4096] = { 0 };
	struct h_case c[12];
	size_t n = 0;
	uint64_t magic = CR_MAGIC;
	const size_t H = sizeof(struct cr_header);

	cr_assert_eq(elf_len, sizeof(Elf64_Ehdr));
	h_fill_random(rnd, sizeof rnd, 1);
	memset(c, 0, sizeof c);
	h_raw_case(&c[n++], "empty segment (size 0)", NULL, 0, 0, H_SLOW_MS);
	h_raw_case(&c[n++], "one byte", "C", 1, 1, H_SLOW_MS);
	h_raw_case(&c[n++], "just the magic (8 bytes)", &magic, 8, 8, H_SLOW_MS);
	h_raw_case(&c[n++], "a valid header minus its last byte", img, H - 1, H - 1, H_SLOW_MS);
	h_raw_case(&c[n++], "100 random bytes", rnd, sizeof rnd, sizeof rnd, H_SLOW_MS);
	h_raw_case(&c[n++], "a 64-byte ELF header", elf, elf_len, elf_len, H_SLOW_MS);
	h_raw_case(&c[n++], "exactly the header size, all zero", NULL, 0, H, H_SLOW_MS);
	h_raw_case(&c[n++], "one zero page", zeros, sizeof zeros, sizeof zeros, H_SLOW_MS);

	/* A valid registry image whose ready marker was never stored (creator died). */
	struct cr_header *hdr = (struct cr_header *)img;
	atomic_store(&hdr->ready, 0);
	h_raw_case(&c[n++], "valid registry, ready marker 0", img, img_len, img_len, H_SLOW_MS);
	atomic_store(&hdr->ready, CR_READY ^ 0x01000000u);
	h_raw_case(&c[n++], "valid registry, ready marker wrong", img, img_len, img_len, H_SLOW_MS);
	hdr->magic = 0;
	atomic_store(&hdr->ready, 0);
	h_raw_case(&c[n++], "valid registry, magic and ready 0", img, img_len, img_len, H_SLOW_MS);
	memset(img, 0, H);
	h_raw_case(&c[n++], "valid registry, header zeroed", img, img_len, img_len, H_SLOW_MS);
	cr_assert_eq(n, sizeof c / sizeof c[0]);

	h_fails_t f = { 0 };
	uint64_t t0 = t_now_ms();
	h_run(c, n, n, &f);
	uint64_t ms = t_now_ms() - t0;
	free(img);
	free(elf);
	H_ASSERT_NO_FAILS(&f, n);
	cr_log_info("%zu ready-wait cases in parallel: %" PRIu64 " ms", n, ms);
}

/* Foreign data with a nonzero magic: refused at once, whatever the size. */
Test(hostile, foreign_data_gives_EPROTO_fast)
{
	size_t img_len = 0, elf_len = 0;
	uint8_t *img = h_valid_image(&img_len);
	uint8_t *elf = h_self_elf(64 * 1024, &elf_len);
	const size_t H = sizeof(struct cr_header);
	const size_t sizes[] = { H, 1000, 4096, 65536, img_len, 1 << 20 };
	struct h_case c[32];
	char what[32][96];
	size_t n = 0;

	cr_assert_geq(elf_len, 4096);
	memset(c, 0, sizeof c);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		uint8_t *b = malloc(sizes[i]);
		cr_assert_not_null(b);
		h_fill_random(b, sizes[i], 100 + i);
		uint64_t m;
		memcpy(&m, b, 8);
		cr_assert(m != 0 && m != CR_MAGIC);
		snprintf(what[n], sizeof what[0], "%zu random bytes", sizes[i]);
		h_raw_case(&c[n], what[n], b, sizes[i], sizes[i], H_FAST_MS);
		n++;

		/* The real magic and ready marker in front of random bytes. */
		struct cr_header *hh = (struct cr_header *)b;
		hh->magic = CR_MAGIC;
		atomic_store(&hh->ready, CR_READY);
		snprintf(what[n], sizeof what[0], "%zu random bytes behind magic + ready", sizes[i]);
		h_raw_case(&c[n], what[n], b, sizes[i], sizes[i], H_FAST_MS);
		n++;

		/* ... and the real version and signature too: only params/geometry are random. */
		hh->layout_version = CR_LAYOUT_VERSION;
		hh->layout_sig = cr_layout_signature();
		snprintf(what[n], sizeof what[0], "%zu random bytes behind a valid identity",
			 sizes[i]);
		h_raw_case(&c[n], what[n], b, sizes[i], sizes[i], H_FAST_MS);
		n++;
		free(b);
	}

	/* Text: an HTTP request, a config file, JSON, prose, repeated over 8 KiB. */
	uint8_t text[8192];
	for (size_t i = 0; i < sizeof text; i++)
		text[i] = (uint8_t)h_text[i % (sizeof h_text - 1)];
	h_raw_case(&c[n++], "8 KiB of text", text, sizeof text, sizeof text, H_FAST_MS);
	h_raw_case(&c[n++], "8 KiB of text in a registry-sized segment", text, sizeof text, img_len,
		   H_FAST_MS);
	h_raw_case(&c[n++], "64 KiB of an ELF executable", elf, elf_len, elf_len, H_FAST_MS);
	h_raw_case(&c[n++], "an ELF executable's start in a registry-sized segment", elf, 4096,
		   img_len, H_FAST_MS);

	uint8_t ones[4096];
	memset(ones, 0xff, sizeof ones);
	h_raw_case(&c[n++], "one page of 0xff", ones, sizeof ones, sizeof ones, H_FAST_MS);
	/* A real registry's header alone, without the rest of the segment. */
	h_raw_case(&c[n++], "a valid header, nothing else", img, H, H, H_FAST_MS);
	h_raw_case(&c[n++], "a valid header's first page only", img, 4096, 4096, H_FAST_MS);
	cr_assert_leq(n, sizeof c / sizeof c[0]);

	h_fails_t f = { 0 };
	h_run(c, n, 8, &f);
	free(img);
	free(elf);
	H_ASSERT_NO_FAILS(&f, n);
}

/* ------------------------------------------------------------------ */
/* API arguments                                                       */
/* ------------------------------------------------------------------ */

#define H_KEY_MAX 16u

struct h_item {
	uint8_t id[H_KEY_MAX];
	size_t len;
	uint64_t transport;
};

static int h_item_cmp(const void *a, const void *b)
{
	const struct h_item *x = a, *y = b;

	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return memcmp(x->id, y->id, x->len);
}

struct h_list {
	struct h_item *v;
	size_t n, cap;
	int bad;
};

static int h_collect(const void *id, size_t len, uint64_t transport, void *arg)
{
	struct h_list *l = arg;

	if (len == 0 || len > H_KEY_MAX || l->n == l->cap) {
		l->bad++;
		return 0;
	}
	memcpy(l->v[l->n].id, id, len);
	l->v[l->n].len = len;
	l->v[l->n].transport = transport;
	l->n++;
	return 0;
}

/* Everything observable about a registry: stats, foreach (sorted), raw bytes. */
struct h_state {
	connreg_stats_t st;
	struct h_list list;
	uint8_t *bytes;
	size_t len;
};

static void h_state_take(connreg_t *r, const char *name, struct h_state *s, size_t cap)
{
	memset(s, 0, sizeof *s);
	s->bytes = h_read_seg(name, &s->len);
	cr_assert_not_null(s->bytes);
	s->list.v = calloc(cap, sizeof *s->list.v);
	s->list.cap = cap;
	cr_assert_eq(connreg_foreach(r, h_collect, &s->list), 0);
	cr_assert_eq(s->list.bad, 0);
	qsort(s->list.v, s->list.n, sizeof *s->list.v, h_item_cmp);
	cr_assert_eq(connreg_stats(r, &s->st), 0);
}

static void h_state_assert_same(const struct h_state *a, const struct h_state *b)
{
#define SAME(f) cr_assert_eq(a->st.f, b->st.f, "stats." #f " changed: %" PRIu64 " -> %" PRIu64, \
			     (uint64_t)a->st.f, (uint64_t)b->st.f)
	SAME(capacity); SAME(live); SAME(free); SAME(retired); SAME(tombstones); SAME(epoch);
	SAME(readers); SAME(max_probe); SAME(entries); SAME(buckets); SAME(segment_size);
	SAME(key_max); SAME(max_threads); SAME(flags); SAME(safe_epoch);
#undef SAME
	cr_assert_eq(a->list.n, b->list.n, "foreach: %zu ids before, %zu after", a->list.n,
		     b->list.n);
	for (size_t i = 0; i < a->list.n; i++) {
		cr_assert_eq(h_item_cmp(&a->list.v[i], &b->list.v[i]), 0, "foreach: id %zu differs", i);
		cr_assert_eq(a->list.v[i].transport, b->list.v[i].transport,
			     "foreach: transport of id %zu differs", i);
	}
	cr_assert_eq(a->len, b->len, "segment size changed");
	size_t k = 0;
	while (k < a->len && a->bytes[k] == b->bytes[k])
		k++;
	cr_assert_eq(k, a->len, "segment bytes changed (first at offset %zu)", k);
}

static void h_state_free(struct h_state *s)
{
	free(s->bytes);
	free(s->list.v);
}

static int h_never(const void *id, size_t len, uint64_t t, void *arg)
{
	(void)id, (void)len, (void)t, (void)arg;
	return 1;
}

static int h_never_reader(const connreg_reader_t *r, void *arg)
{
	(void)r, (void)arg;
	return 1;
}

/* No object of that name exists (for names the kernel can hold). */
static bool h_no_object(const char *name)
{
	int fd = shm_open(name, O_RDONLY, 0);

	if (fd >= 0) {
		close(fd);
		return false;
	}
	return true;
}

/*
 * A registry holding ids with every byte value (one-byte ids 0..255,
 * key_max-byte ids of each value, and ids spelling out 0..255), then every
 * function with every bad argument: each gets its documented error, and
 * stats, a full foreach and the segment's bytes are unchanged afterwards.
 */
Test(hostile, bad_api_arguments_give_clear_errors_and_change_nothing)
{
	char name[T_NAME_BUF], other[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(1024, H_KEY_MAX, 4);
	connreg_t *r = NULL, *r2 = (connreg_t *)0x1;
	struct h_item *items = calloc(600, sizeof *items);
	size_t n = 0;
	uint64_t v;

	t_name(name, "hapi");
	t_name(other, "hapi-none");
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	for (unsigned b = 0; b < 256; b++) {
		items[n] = (struct h_item){ { (uint8_t)b }, 1, b };
		n++;
		memset(items[n].id, (int)b, H_KEY_MAX);
		items[n].len = H_KEY_MAX;
		items[n].transport = b == 255 ? UINT64_MAX : 0x1000 + b;
		n++;
	}
	for (unsigned k = 0; k < 256 / H_KEY_MAX; k++) {
		for (unsigned j = 0; j < H_KEY_MAX; j++)
			items[n].id[j] = (uint8_t)(k * H_KEY_MAX + j);
		items[n].len = H_KEY_MAX;
		items[n].transport = 0x2000 + k;
		n++;
	}
	items[n] = (struct h_item){ { 0, 0, 0 }, 3, 0x3000 };	/* NULs only */
	n++;
	items[n] = (struct h_item){ { 'a', 0, 'b' }, 3, 0x3001 };	/* embedded NUL */
	n++;
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(connreg_register(r, items[i].id, items[i].len, items[i].transport), 0,
			     "register item %zu", i);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(connreg_get_transport(r, items[i].id, items[i].len, &v), 0, "get %zu", i);
		cr_assert_eq(v, items[i].transport, "item %zu", i);
	}
	/* A prefix or an extension of a registered id is another id. */
	cr_assert_eq(connreg_get_transport(r, "a", 1, &v), 0);
	cr_assert_eq(v, 'a');
	cr_assert_eq(connreg_get_transport(r, "a\0", 2, &v), -ENOENT);
	cr_assert_eq(connreg_get_transport(r, "\0\0", 2, &v), -ENOENT);

	struct h_state before, after;
	h_state_take(r, name, &before, 700);
	cr_assert_eq(before.list.n, n);
	qsort(items, n, sizeof *items, h_item_cmp);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(h_item_cmp(&items[i], &before.list.v[i]), 0, "foreach item %zu", i);

	/* ---- lifecycle functions ---- */
	connreg_config_t bad;
	cr_assert_eq(connreg_create(NULL, &cfg, &r2), -EINVAL);
	cr_assert_eq(connreg_create(other, NULL, &r2), -EINVAL);
	cr_assert_eq(connreg_create(other, &cfg, NULL), -EINVAL);
	cr_assert_eq(connreg_create(name, &cfg, &r2), -EEXIST, "create on a taken name");
	bad = cfg, bad.capacity = 0;
	cr_assert_eq(connreg_create(other, &bad, &r2), -EINVAL);
	bad = cfg, bad.capacity = CONNREG_CAPACITY_LIMIT + 1;
	cr_assert_eq(connreg_create(other, &bad, &r2), -EINVAL);
	bad = cfg, bad.capacity = UINT64_MAX;
	cr_assert_eq(connreg_create(other, &bad, &r2), -EINVAL);
	bad = cfg, bad.key_max = CONNREG_KEY_MAX_LIMIT + 1;
	cr_assert_eq(connreg_create(other, &bad, &r2), -EINVAL);
	bad = cfg, bad.key_max = UINT32_MAX;
	cr_assert_eq(connreg_create(other, &bad, &r2), -EINVAL);
	bad = cfg, bad.max_threads = CR_MAX_RSLOTS + 1;
	cr_assert_eq(connreg_create(other, &bad, &r2), -EINVAL);
	bad = cfg, bad.max_threads = UINT32_MAX;
	cr_assert_eq(connreg_create(other, &bad, &r2), -EINVAL);
	bad = cfg, bad.mode = 01777;
	cr_assert_eq(connreg_create(other, &bad, &r2), -EINVAL);
	bad = cfg, bad.mode = UINT32_MAX;
	cr_assert_eq(connreg_create(other, &bad, &r2), -EINVAL);
	bad = cfg, bad.flags = 0x2;
	cr_assert_eq(connreg_create(other, &bad, &r2), -EINVAL);
	bad = cfg, bad.flags = UINT32_MAX;
	cr_assert_eq(connreg_create(other, &bad, &r2), -EINVAL);
	bad = cfg, bad.capacity = 0;
	cr_assert_eq(connreg_open_or_create(other, &bad, &r2, NULL), -EINVAL);
	cr_assert_eq(connreg_open_or_create(other, NULL, &r2, NULL), -EINVAL);
	cr_assert_eq(connreg_open_or_create(NULL, &cfg, &r2, NULL), -EINVAL);
	cr_assert_eq(connreg_open_or_create(other, &cfg, NULL, NULL), -EINVAL);
	cr_assert(h_no_object(other), "a rejected create left a segment behind");
	cr_assert_eq(r2, (connreg_t *)0x1, "a failed call wrote *out");
	cr_assert_eq(connreg_open(NULL, &r2), -EINVAL);
	cr_assert_eq(connreg_open(name, NULL), -EINVAL);
	cr_assert_eq(connreg_open(other, &r2), -ENOENT);
	cr_assert_eq(connreg_unlink(NULL), -EINVAL);
	cr_assert_eq(connreg_unlink(other), -ENOENT);
	connreg_close(NULL);

	/* ---- per-id functions ---- */
	const uint8_t one[1] = { 'a' };
	uint8_t longid[H_KEY_MAX + 1];
	memset(longid, 'a', sizeof longid);
	struct {
		const void *id;
		size_t len;
		int want;
	} ids[] = {
		{ NULL, 1, -EINVAL },
		{ NULL, 0, -EINVAL },
		{ NULL, SIZE_MAX, -EINVAL },
		{ one, 0, -EINVAL },
		{ longid, H_KEY_MAX + 1, -ENAMETOOLONG },
		/* SIZE_MAX on a 1-byte buffer: refused before a byte past it is read (ASan) */
		{ one, SIZE_MAX, -ENAMETOOLONG },
		{ one, SIZE_MAX / 2 + 1, -ENAMETOOLONG },
		{ one, (size_t)UINT32_MAX + 2, -ENAMETOOLONG },	/* 1 when truncated to 32 bits */
	};
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
		const void *id = ids[i].id;
		size_t len = ids[i].len;
		int w = ids[i].want;
		uint64_t cur = 7;

		cr_assert_eq(connreg_register(r, id, len, 1), w, "register case %zu", i);
		cr_assert_eq(connreg_register(NULL, id, len, 1), -EINVAL, "register NULL reg %zu", i);
		cr_assert_eq(connreg_get_transport(r, id, len, &v), w, "get case %zu", i);
		cr_assert_eq(connreg_get_transport(NULL, id, len, &v), -EINVAL);
		cr_assert_eq(connreg_update_transport(r, id, len, 1), w, "update case %zu", i);
		cr_assert_eq(connreg_update_transport(NULL, id, len, 1), -EINVAL);
		cr_assert_eq(connreg_unregister(r, id, len), w, "unregister case %zu", i);
		cr_assert_eq(connreg_unregister(NULL, id, len), -EINVAL);
		cr_assert_eq(connreg_cas_transport(r, id, len, 'a', 1, &cur), w, "cas case %zu", i);
		cr_assert_eq(connreg_cas_transport(r, id, len, 'a', 1, NULL), w, "cas case %zu", i);
		cr_assert_eq(connreg_cas_transport(NULL, id, len, 'a', 1, &cur), -EINVAL);
		cr_assert_eq(cur, 7, "cas wrote *current on a bad argument");
		/* bad arguments return at once, even with an infinite timeout */
		cr_assert_eq(connreg_wait_transport(r, id, len, 0, &v, -1), w, "wait case %zu", i);
		cr_assert_eq(connreg_wait_transport(r, id, len, 0, &v, 0), w, "wait case %zu", i);
		cr_assert_eq(connreg_wait_transport(NULL, id, len, 0, &v, -1), -EINVAL);
	}
	/* valid id, NULL output or bad timeout */
	cr_assert_eq(connreg_get_transport(r, one, 1, NULL), -EINVAL);
	cr_assert_eq(connreg_wait_transport(r, one, 1, 0, NULL, 0), -EINVAL);
	cr_assert_eq(connreg_wait_transport(r, one, 1, 'a', &v, -2), -EINVAL);
	cr_assert_eq(connreg_wait_transport(r, one, 1, 'a', &v, INT_MIN), -EINVAL);

	/* ---- bulk ---- */
	const void *bids[] = { one, NULL, one, longid, one, items[5].id };
	size_t blens[] = { 1, 1, 0, H_KEY_MAX + 1, SIZE_MAX, items[5].len };
	int want_rc[] = { 0, -EINVAL, -EINVAL, -ENAMETOOLONG, -ENAMETOOLONG, 0 };
	uint64_t btr[6] = { 0 };
	int brc[6];
	cr_assert_eq(connreg_get_transport_bulk(NULL, 6, bids, blens, btr, brc), -EINVAL);
	cr_assert_eq(connreg_get_transport_bulk(r, 6, NULL, blens, btr, brc), -EINVAL);
	cr_assert_eq(connreg_get_transport_bulk(r, 6, bids, NULL, btr, brc), -EINVAL);
	cr_assert_eq(connreg_get_transport_bulk(r, 6, bids, blens, NULL, brc), -EINVAL);
	cr_assert_eq(connreg_get_transport_bulk(r, 6, bids, blens, btr, NULL), -EINVAL);
	cr_assert_eq(connreg_get_transport_bulk(r, SIZE_MAX, NULL, NULL, NULL, NULL), -EINVAL);
	/* "-EINVAL when an array or reg is NULL" (connreg.h), whatever n is */
	cr_assert_eq(connreg_get_transport_bulk(r, 0, NULL, NULL, NULL, NULL), -EINVAL);
	cr_assert_eq(connreg_get_transport_bulk(r, 0, bids, blens, btr, brc), 0);
	cr_assert_eq(connreg_get_transport_bulk(r, 6, bids, blens, btr, brc), 0);
	for (int i = 0; i < 6; i++)
		cr_assert_eq(brc[i], want_rc[i], "bulk rc[%d] = %d, want %d", i, brc[i], want_rc[i]);
	cr_assert_eq(btr[0], 'a');
	cr_assert_eq(btr[5], items[5].transport);

	/* ---- whole-registry functions ---- */
	connreg_stats_t st = { .size = sizeof(st) };
	uint64_t removed = 99;
	cr_assert_eq(connreg_foreach(NULL, h_never, NULL), -EINVAL);
	cr_assert_eq(connreg_foreach(r, NULL, NULL), -EINVAL);
	cr_assert_eq(connreg_foreach(r, h_never, NULL), 1, "foreach stops at fn's return");
	cr_assert_eq(connreg_stats(NULL, &st), -EINVAL);
	cr_assert_eq(connreg_stats(r, NULL), -EINVAL);
	cr_assert_eq(connreg_reap(NULL, &removed), -EINVAL);
	cr_assert_eq(connreg_reap(r, &removed), -EOPNOTSUPP);
	cr_assert_eq(connreg_reap(r, NULL), -EOPNOTSUPP);
	cr_assert_eq(connreg_readers(NULL, h_never_reader, NULL), -EINVAL);
	cr_assert_eq(connreg_readers(r, NULL, NULL), -EINVAL);
	cr_assert_eq(connreg_readers(r, h_never_reader, NULL), 1);
	cr_assert_eq(connreg_check(NULL, NULL, NULL), -EINVAL);
	const int errs[] = { 0, 1, -1, -EINVAL, -EPROTO, -4095, -4096, INT_MIN, INT_MAX, 12345 };
	for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
		const char *s = connreg_strerror(errs[i]);
		cr_assert(s && *s, "connreg_strerror(%d)", errs[i]);
	}

	h_state_take(r, name, &after, 700);
	h_state_assert_same(&before, &after);
	cr_assert_eq(connreg_check(r, NULL, NULL), 0, "check after the bad calls");
	h_state_free(&before);
	h_state_free(&after);
	free(items);
	connreg_close(r);
}

/* ------------------------------------------------------------------ */
/* names                                                               */
/* ------------------------------------------------------------------ */

static bool h_name_char_ok(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

/* Expect name to be accepted (create, open, unlink) or refused with -EINVAL by all four. */
static void h_check_name(const char *name, bool valid, const char *label)
{
	connreg_config_t cfg = t_cfg(1, 0, 2);	/* two handles in this thread: two slots */
	connreg_t *r = NULL, *r2 = NULL;
	int created = -1;

	if (valid) {
		shm_unlink(name);
		cr_assert_eq(connreg_create(name, &cfg, &r), 0, "%s: create", label);
		cr_assert_eq(connreg_open(name, &r2), 0, "%s: open", label);
		cr_assert_eq(connreg_register(r, "x", 1, 5), 0);
		uint64_t v = 0;
		cr_assert_eq(connreg_get_transport(r2, "x", 1, &v), 0);
		cr_assert_eq(v, 5);
		connreg_close(r2);
		connreg_close(r);
		cr_assert_eq(connreg_open_or_create(name, &cfg, &r, &created), 0, "%s", label);
		cr_assert_eq(created, 0);
		connreg_close(r);
		cr_assert_eq(connreg_unlink(name), 0, "%s: unlink", label);
		cr_assert_eq(connreg_open(name, &r), -ENOENT, "%s", label);
		return;
	}
	cr_assert_eq(connreg_create(name, &cfg, &r), -EINVAL, "%s: create", label);
	cr_assert_eq(connreg_open(name, &r), -EINVAL, "%s: open", label);
	cr_assert_eq(connreg_open_or_create(name, &cfg, &r, &created), -EINVAL, "%s", label);
	cr_assert_eq(connreg_unlink(name), -EINVAL, "%s: unlink", label);
	cr_assert_null(r, "%s: *out written", label);
}

Test(hostile, names_with_every_byte_value_and_shape)
{
	char name[512], label[600];
	size_t len;

	/* "/" + one byte + a unique tail: only [A-Za-z0-9._-] is accepted. */
	for (int c = 0; c < 256; c++) {
		int k = snprintf(name, sizeof name, "/%cq-hn-%ld", c ? c : 'X', (long)getpid());
		cr_assert_gt(k, 0);
		if (c == 0)
			name[1] = '\0';	/* "/" alone */
		snprintf(label, sizeof label, "name byte 0x%02x", c);
		h_check_name(name, c != 0 && h_name_char_ok(c), label);
		/* a refused name created nothing (names the kernel itself refuses cannot exist) */
		if (c != 0 && c != '/' && !h_name_char_ok(c))
			cr_assert(h_no_object(name), "%s: a segment was created", label);
	}
	/* the same byte at the end of an otherwise valid name */
	for (int c = 1; c < 256; c++) {
		snprintf(name, sizeof name, "/crt-hn-%ld-%c", (long)getpid(), c);
		snprintf(label, sizeof label, "trailing byte 0x%02x", c);
		h_check_name(name, h_name_char_ok(c), label);
	}

	const struct {
		const char *n;
		bool ok;
	} shapes[] = {
		{ "", false },	    { "/", false },	{ "a", false },	    { "abc", false },
		{ "//", false },    { "//abc", false }, { "/abc/", false }, { "/ab/c", false },
		{ "/.", false },    { "/..", false },	{ "/./a", false },  { "/../a", false },
		{ "/ a", false },   { "/a b", false },	{ "/a\tb", false }, { "/a\nb", false },
		{ "/\xc3\xa9", false }, { "/a%2f", false }, { "/a*", false }, { "\\a", false },
		/* all dots is refused only for "." and ".." (directories under /dev/shm) */
		{ "/...", true },   { "/.hidden-hn", true }, { "/-hn", true },   { "/_hn", true },
	};
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		const char *n = shapes[i].n;

		/* accepted names other than "/..." get a per-process tail */
		if (shapes[i].ok && strcmp(n, "/...") != 0) {
			snprintf(name, sizeof name, "%s-%ld", n, (long)getpid());
			n = name;
		}
		snprintf(label, sizeof label, "shape \"%s\"", n);
		h_check_name(n, shapes[i].ok, label);
	}

	/* Lengths after the '/': 1, 199, 200 accepted; 201, 255, 256, 4096 refused. */
	const size_t lens[] = { 1, 199, 200, 201, 255, 256, 4096 };
	char *big = malloc(4100);
	cr_assert_not_null(big);
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		char prefix[32];
		size_t plen = (size_t)snprintf(prefix, sizeof prefix, "hn%ld-", (long)getpid());

		len = lens[i];
		big[0] = '/';
		memset(big + 1, 'q', len);
		big[1 + len] = '\0';
		if (len > plen)	/* unique per process */
			memcpy(big + 1, prefix, plen);
		else
			big[1] = 'Q';	/* "/Q" */
		snprintf(label, sizeof label, "name of %zu characters", len);
		h_check_name(big, len <= CONNREG_NAME_MAX, label);
	}
	free(big);
}

/* ------------------------------------------------------------------ */
/* a LIVE meta word corrupted after open                               */
/* ------------------------------------------------------------------ */

static int h_len_within(const void *id, size_t len, uint64_t transport, void *arg)
{
	size_t *worst = arg;

	(void)id;
	(void)transport;
	if (len > *worst)
		*worst = len;
	return 0;
}

/*
 * Map registry `name` read-write (as a process that scribbles on the
 * segment would), call patch on each LIVE record of its index, unmap.
 * Returns how many records were patched.
 */
typedef void h_rec_patch_fn(const struct cr_header *h, struct cr_bucket *bk, unsigned i);

static int h_patch_live_records(const char *name, h_rec_patch_fn *patch)
{
	struct stat sb;
	int patched = 0;
	int fd = shm_open(name, O_RDWR, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &sb), 0);
	uint8_t *base = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	cr_assert_neq(base, MAP_FAILED);
	const struct cr_header *h = (const struct cr_header *)base;
	struct cr_bucket *bk = (struct cr_bucket *)(base + h->geo.off_index);

	for (uint32_t b = 0; b < h->geo.n_buckets; b++)
		for (unsigned i = 0; i < CR_BUCKET_SLOTS; i++)
			if (cr_meta_is_live(atomic_load(&bk[b].meta[i]))) {
				patch(h, &bk[b], i);
				patched++;
			}
	munmap(base, (size_t)sb.st_size);
	return patched;
}

static void h_lenc_16(const struct cr_header *h, struct cr_bucket *bk, unsigned i)
{
	(void)h;
	atomic_store(&bk->meta[i], cr_meta_live(16, atomic_load(&bk->meta[i])));
}

/*
 * A meta word whose length code exceeds key_max (found by fuzz_open: the
 * walk copied 16 bytes into a key_max buffer) is a corrupt record: walks
 * and checks skip or report it and never hand out an id longer than
 * key_max.
 */
Test(hostile, live_record_with_a_length_past_key_max_is_skipped)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(4, 3, 4);
	connreg_t *r;
	size_t worst = 0;

	t_name(name, "h-lenc");
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	cr_assert_eq(connreg_register(r, "abc", 3, 7), 0);
	cr_assert_eq(h_patch_live_records(name, h_lenc_16), 1);
	cr_assert_eq(connreg_foreach(r, h_len_within, &worst), 0);
	cr_assert_leq(worst, 3u, "foreach handed out an id of %zu bytes (key_max 3)", worst);
	cr_assert_gt(connreg_check(r, NULL, NULL), 0, "check did not report the corrupt record");
	connreg_close(r);
	connreg_unlink(name);
}

/*
 * A registry of short ids without the pid flag has no side entries (its
 * region is empty, at the segment's end). A corrupt meta word that claims
 * a long id there must not make a walk read a side entry: there is none
 * (the handle's pointer is NULL, so such a read faults). Walks skip it,
 * check reports it.
 */
static void h_lenc_long(const struct cr_header *h, struct cr_bucket *bk, unsigned i)
{
	cr_assert_eq(h->geo.entry_stride, 0, "short ids, no pid flag: no side entries");
	cr_assert_eq(h->geo.off_entries, h->geo.segment_size, "the empty region ends the segment");
	atomic_store(&bk->meta[i], cr_meta_live(CR_META_LENC_LONG, atomic_load(&bk->meta[i])));
}

Test(hostile, long_length_code_without_side_entries_is_skipped)
{
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(4, 16, 4);
	connreg_t *r;
	size_t worst = 0;

	t_name(name, "h-long");
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	cr_assert_eq(connreg_register(r, "abc", 3, 7), 0);
	cr_assert_eq(h_patch_live_records(name, h_lenc_long), 1);
	cr_assert_eq(connreg_foreach(r, h_len_within, &worst), 0);
	cr_assert_leq(worst, 16u, "foreach handed out an id of %zu bytes (key_max 16)", worst);
	cr_assert_gt(connreg_check(r, NULL, NULL), 0, "check did not report the corrupt record");
	connreg_close(r);
	connreg_unlink(name);
}

/*
 * Layout 4 stores a short id's inline key zero-padded, and lookups compare
 * all 16 bytes. A record whose padding is not zero (a corrupt segment) is
 * unreachable: a lookup of its id misses (never another id's transport),
 * and connreg_check names the record. Ids of each length class are
 * patched: 3 (bytes), 5 (two 4-byte loads), 12 (two 8-byte loads).
 */
static void h_pad_nonzero(const struct cr_header *h, struct cr_bucket *bk, unsigned i)
{
	(void)h;
	bk->rec[i].key[15] = 0x5a;
}

Test(hostile, short_key_with_nonzero_padding_is_missed_and_reported)
{
	static const struct {
		const char *id;
		size_t len;
	} ids[] = { { "abc", 3 }, { "abcde", 5 }, { "abcdefghijkl", 12 } };
	char name[T_NAME_BUF];
	connreg_config_t cfg = t_cfg(8, 16, 4);
	connreg_t *r;
	uint64_t v;

	t_name(name, "h-pad");
	cr_assert_eq(connreg_create(name, &cfg, &r), 0);
	for (unsigned k = 0; k < 3; k++) {
		cr_assert_eq(connreg_register(r, ids[k].id, ids[k].len, 100 + k), 0);
		cr_assert_eq(connreg_get_transport(r, ids[k].id, ids[k].len, &v), 0);
	}
	T_ASSERT_CHECK_CLEAN(r);
	cr_assert_eq(h_patch_live_records(name, h_pad_nonzero), 3);
	for (unsigned k = 0; k < 3; k++) {
		v = 0;
		cr_assert_eq(connreg_get_transport(r, ids[k].id, ids[k].len, &v), -ENOENT,
			     "id of %zu bytes with corrupt padding was found", ids[k].len);
		cr_assert_eq(v, 0);
	}
	cr_assert_geq(connreg_check(r, NULL, NULL), 3, "check did not report every padded record");
	connreg_close(r);
	connreg_unlink(name);
}
