/*
 * libFuzzer harness for connreg_open and the read paths behind it
 * (issue 3, section 3). Built and run by tests/fuzz_open.sh:
 *
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *       src/*.c tests/fuzz_open.c -lck -lpthread -o build-fuzz/fuzz_open
 *
 * A valid registry image is far too large to be a useful fuzz input (the
 * smallest, capacity 4 / key_max 8 / one reader slot, is 100 KiB), so the
 * input is a list of PATCHES applied to such an image:
 *
 *   the template   connreg_create(capacity 4, key_max 8, max_threads 1) once
 *                  per process, its secret replaced by a fixed pattern (so a
 *                  crashing input reproduces in any process), holding a few
 *                  ids, one of them updated and one unregistered (a retired
 *                  entry and a tombstone), closed, copied out, unlinked.
 *   per input      copy the template, apply the records below, write it to a
 *                  fresh POSIX shm segment ("/crfuzz-<pid>-<n>"), then
 *                  connreg_open; on success connreg_check, connreg_stats,
 *                  lookups (single and bulk), connreg_foreach,
 *                  connreg_readers, connreg_close; on -EPROTO, check that
 *                  the segment's bytes did not change; always unlink.
 *
 * Records (any byte string parses; a record cut short by the end of the
 * input uses what is there):
 *
 *   op % 8 in 0..4  WRITE into region op % 8 (0 header, 1 index, 2 reader
 *                   slots, 3 entry states, 4 entries):
 *                   off: u16 LE (modulo the region's size), len: 1 byte
 *                   (len % 32 + 1), then len data bytes (clipped at the
 *                   region's end).
 *   op % 8 == 5     RESIZE the segment: i16 LE d; size += d * 64 (clamped to
 *                   0 .. 2 * template size).
 *   op % 8 == 6     LOOKUP: len: 1 byte (len % 16 + 1), then len bytes: an id
 *                   to look up besides the template's ids (at most 8).
 *   op % 8 == 7     FILL: region: 1 byte (% 5), off: u16 LE, count: u16 LE,
 *                   value: 1 byte: memset within the region.
 *
 * connreg_open waits up to CONNREG_OPEN_WAIT_MS (2 s) for a segment shorter
 * than the header or one whose ready marker is unset while its magic is 0
 * or the real one (a creator still initialising): that is documented
 * behaviour, not a bug, and would throttle the fuzzer, so such inputs are
 * not opened. Every other open must return in well under a second; one
 * that does not is reported as a crash (a hang in disguise).
 *
 * Running the binary on files reproduces: build-fuzz/fuzz_open crash-<sha>.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "connreg.h"
#include "layout.h"

#define FZ_SLOW_OPEN_MS 1500u
#define FZ_MAX_IDS 8u

enum { FZ_HEADER, FZ_INDEX, FZ_RSLOTS, FZ_STATES, FZ_ENTRIES, FZ_NREGIONS };

/*
 * Two templates: 0, ids of up to 8 bytes and no pid flag (no side
 * entries: an empty region, a NULL pointer in the handle); 1, key_max 20
 * with the pid flag (side entries, a long id). An input's size parity
 * picks one (fz_use), so both are fuzzed without spending an input byte.
 */
static struct fz_template {
	uint8_t *img;
	size_t size;
	struct { size_t off, len; } region[FZ_NREGIONS];
} fz_tpls[2];
static uint8_t *fz_tpl;		/* the template of the current input */
static size_t fz_tpl_size;
static struct { size_t off, len; } fz_region[FZ_NREGIONS];

static void fz_use(unsigned which)
{
	fz_tpl = fz_tpls[which].img;
	fz_tpl_size = fz_tpls[which].size;
	memcpy(fz_region, fz_tpls[which].region, sizeof(fz_region));
}

static const struct {
	const char *id;
	size_t len;
} fz_ids[] = {
	{ "a", 1 }, { "conn-1", 6 }, { "c2", 2 }, { "12345678", 8 }, { "\0\0\0", 3 },
	{ "absent", 6 }, { "123456789", 9 }, /* longer than key_max: -ENAMETOOLONG */
};

static void fz_die(const char *what, int rc)
{
	fprintf(stderr, "fuzz_open: setup failed: %s: %d (%s)\n", what, rc, connreg_strerror(rc));
	abort();
}

static uint64_t fz_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Map a whole segment read-write. */
static uint8_t *fz_map(const char *name, size_t *size)
{
	int fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
	struct stat st;
	uint8_t *p;

	if (fd < 0 || fstat(fd, &st) != 0)
		fz_die("shm_open/fstat template", -errno);
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		fz_die("mmap template", -errno);
	*size = (size_t)st.st_size;
	return p;
}

static void fz_make_template(unsigned which)
{
	connreg_config_t cfg = { .capacity = 4, .key_max = 8, .max_threads = 1 };
	struct fz_template *t = &fz_tpls[which];

	if (which == 1) {
		cfg.key_max = 20;
		cfg.flags = CONNREG_TRANSPORT_IS_PID;
	}
	char name[64];
	connreg_t *r = NULL;
	size_t size;
	uint8_t *p;
	int rc;

	snprintf(name, sizeof name, "/crfuzz-%ld-tpl", (long)getpid());
	shm_unlink(name);
	rc = connreg_create(name, &cfg, &r);
	if (rc)
		fz_die("connreg_create", rc);
	connreg_close(r);

	/* A fixed secret: hashes, homes and fingerprints are the same in every run. */
	p = fz_map(name, &size);
	struct cr_header *h = (struct cr_header *)p;
	for (unsigned i = 0; i < CR_SECRET_SIZE; i++)
		h->secret[i] = (uint8_t)(i * 37u + 11u);
	munmap(p, size);

	rc = connreg_open(name, &r);
	if (rc)
		fz_die("connreg_open template", rc);
	if ((rc = connreg_register(r, "a", 1, 1)) || (rc = connreg_register(r, "conn-1", 6, 0x1111)) ||
	    (rc = connreg_register(r, "c2", 2, UINT64_MAX)) ||
	    (rc = connreg_register(r, "12345678", 8, 0)) ||
	    (rc = connreg_update_transport(r, "conn-1", 6, 0x2222)) ||
	    (rc = connreg_unregister(r, "a", 1)) ||
	    (which == 1 && (rc = connreg_register(r, "conn-long-0123456789", 20, 0x3333))))
		fz_die("filling the template", rc);
	rc = connreg_check(r, NULL, NULL);
	if (rc != 0)
		fz_die("connreg_check of the template", rc);
	connreg_close(r);

	p = fz_map(name, &size);
	t->img = malloc(size);
	if (!t->img)
		fz_die("malloc", -ENOMEM);
	memcpy(t->img, p, size);
	t->size = size;
	munmap(p, size);
	shm_unlink(name);

	h = (struct cr_header *)t->img;
	t->region[FZ_HEADER].off = 0;
	t->region[FZ_HEADER].len = sizeof(struct cr_header);
	t->region[FZ_INDEX].off = h->geo.off_index;
	t->region[FZ_INDEX].len = (size_t)h->geo.n_buckets * sizeof(struct cr_bucket);
	t->region[FZ_RSLOTS].off = h->geo.off_rslots;
	t->region[FZ_RSLOTS].len = (size_t)h->params.n_rslots * sizeof(struct cr_rslot);
	t->region[FZ_STATES].off = h->geo.off_states;
	t->region[FZ_STATES].len = (size_t)h->geo.n_entries * sizeof(uint64_t);
	t->region[FZ_ENTRIES].off = h->geo.off_entries;
	t->region[FZ_ENTRIES].len = (size_t)h->geo.n_entries * h->geo.entry_stride;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_make_template(0);
	fz_make_template(1);
	return 0;
}

struct fz_input {
	const uint8_t *p;
	size_t n;
};

static unsigned fz_byte(struct fz_input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static unsigned fz_u16(struct fz_input *in)
{
	unsigned lo = fz_byte(in);
	return lo | fz_byte(in) << 8;
}

/* Write up to len bytes of data into region r at off (mod its size), clipped to it. */
static void fz_write(uint8_t *img, size_t img_size, unsigned r, size_t off, const uint8_t *src,
		     size_t len, int fill, uint8_t value)
{
	if (fz_region[r].len == 0)
		return;	/* an empty region (no side entries: key_max <= 16, no pid flag) */
	size_t start = fz_region[r].off + off % fz_region[r].len;
	size_t end = fz_region[r].off + fz_region[r].len;

	if (end > img_size)
		end = img_size;
	if (start >= end)
		return;
	if (len > end - start)
		len = end - start;
	if (fill)
		memset(img + start, value, len);
	else
		memcpy(img + start, src, len);
}

static int fz_count(const void *id, size_t len, uint64_t t, void *arg)
{
	(void)id;
	(void)t;
	/* Touch every byte the library hands out: ASan checks they are in bounds. */
	volatile uint8_t sink = 0;
	for (size_t i = 0; i < len; i++)
		sink ^= ((const uint8_t *)id)[i];
	(void)sink;
	(*(size_t *)arg)++;
	return 0;
}

static int fz_reader(const connreg_reader_t *r, void *arg)
{
	(void)r;
	(*(size_t *)arg)++;
	return 0;
}

static void fz_report(const char *problem, void *arg)
{
	(void)problem;
	(*(size_t *)arg)++;
}

/* Everything a process does with a registry it opened without writing to it. */
static void fz_exercise(connreg_t *r, const uint8_t (*ids)[16], const size_t *lens, size_t n_ids)
{
	const void *bids[FZ_MAX_IDS + sizeof fz_ids / sizeof fz_ids[0]];
	size_t blens[FZ_MAX_IDS + sizeof fz_ids / sizeof fz_ids[0]];
	uint64_t btr[FZ_MAX_IDS + sizeof fz_ids / sizeof fz_ids[0]];
	int brc[FZ_MAX_IDS + sizeof fz_ids / sizeof fz_ids[0]];
	size_t nb = 0, count = 0;
	connreg_stats_t st = { .size = sizeof(st) };
	uint64_t v;

	(void)connreg_check(r, fz_report, &count);
	(void)connreg_stats(r, &st);
	for (size_t i = 0; i < sizeof fz_ids / sizeof fz_ids[0]; i++) {
		(void)connreg_get_transport(r, fz_ids[i].id, fz_ids[i].len, &v);
		bids[nb] = fz_ids[i].id;
		blens[nb++] = fz_ids[i].len;
	}
	for (size_t i = 0; i < n_ids; i++) {
		(void)connreg_get_transport(r, ids[i], lens[i], &v);
		(void)connreg_wait_transport(r, ids[i], lens[i], 0, &v, 0);
		bids[nb] = ids[i];
		blens[nb++] = lens[i];
	}
	(void)connreg_get_transport_bulk(r, nb, bids, blens, btr, brc);
	(void)connreg_foreach(r, fz_count, &count);
	(void)connreg_readers(r, fz_reader, &count);
	/* A second check: after the first one's recovery of dead slots, if any. */
	(void)connreg_check(r, NULL, NULL);
}

/* A refused open must leave the segment exactly as it was. */
static void fz_assert_unchanged(const char *name, const uint8_t *img, size_t img_size)
{
	int fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
	uint8_t *now = malloc(img_size + 1);
	struct stat st;

	if (fd < 0 || !now || fstat(fd, &st) != 0)
		fz_die("re-reading the segment", -errno);
	if ((size_t)st.st_size != img_size ||
	    (img_size && pread(fd, now, img_size, 0) != (ssize_t)img_size) ||
	    memcmp(now, img, img_size) != 0) {
		fprintf(stderr, "fuzz_open: a connreg_open that returned -EPROTO changed the segment\n");
		abort();
	}
	close(fd);
	free(now);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned serial;
	struct fz_input in = { data, size };
	uint8_t ids[FZ_MAX_IDS][16];
	size_t lens[FZ_MAX_IDS], n_ids = 0;

	fz_use(size & 1);

	size_t img_size = fz_tpl_size;
	uint8_t *img = malloc(2 * fz_tpl_size);
	char name[64];

	if (!img)
		return 0;
	memcpy(img, fz_tpl, fz_tpl_size);
	memset(img + fz_tpl_size, 0, fz_tpl_size);

	while (in.n) {
		unsigned op = fz_byte(&in) % 8;

		if (op < FZ_NREGIONS) {
			size_t off = fz_u16(&in);
			size_t len = fz_byte(&in) % 32 + 1;

			if (len > in.n)
				len = in.n;
			fz_write(img, img_size, op, off, in.p, len, 0, 0);
			in.p += len;
			in.n -= len;
		} else if (op == 5) {
			int64_t d = (int16_t)fz_u16(&in);
			int64_t s = (int64_t)img_size + d * 64;

			if (s < 0)
				s = 0;
			if (s > (int64_t)(2 * fz_tpl_size))
				s = (int64_t)(2 * fz_tpl_size);
			img_size = (size_t)s;
		} else if (op == 6) {
			size_t len = fz_byte(&in) % 16 + 1;

			if (len > in.n)
				len = in.n;
			if (len && n_ids < FZ_MAX_IDS) {
				memcpy(ids[n_ids], in.p, len);
				lens[n_ids++] = len;
			}
			in.p += len;
			in.n -= len;
		} else {
			unsigned r = fz_byte(&in) % FZ_NREGIONS;
			size_t off = fz_u16(&in), cnt = fz_u16(&in);
			uint8_t val = (uint8_t)fz_byte(&in);

			fz_write(img, img_size, r, off, NULL, cnt, 1, val);
		}
	}

	snprintf(name, sizeof name, "/crfuzz-%ld-%u", (long)getpid(), serial++ % 4);
	shm_unlink(name);
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		fz_die("shm_open", -errno);
	if (ftruncate(fd, (off_t)img_size) != 0 ||
	    (img_size && pwrite(fd, img, img_size, 0) != (ssize_t)img_size))
		fz_die("writing the segment", -errno);
	close(fd);

	/* Skip what connreg_open would wait 2 s for (a creator still initialising). */
	const struct cr_header *h = (const struct cr_header *)img;
	int waits = img_size < sizeof(struct cr_header) ||
		    (atomic_load_explicit(&h->ready, memory_order_relaxed) != CR_READY &&
		     (h->magic == 0 || h->magic == CR_MAGIC));
	if (!waits) {
		connreg_t *r = NULL;
		uint64_t t0 = fz_now_ms();
		int rc = connreg_open(name, &r);
		uint64_t ms = fz_now_ms() - t0;

		if (ms > FZ_SLOW_OPEN_MS) {
			fprintf(stderr, "fuzz_open: connreg_open took %llu ms (rc %d) on a segment "
					"with a nonzero foreign magic or a ready marker\n",
				(unsigned long long)ms, rc);
			abort();
		}
		if (rc == 0) {
			fz_exercise(r, (const uint8_t(*)[16])ids, lens, n_ids);
			connreg_close(r);
		} else if (rc != -EPROTO) {
			fprintf(stderr, "fuzz_open: connreg_open = %d (%s), want 0 or -EPROTO\n", rc,
				connreg_strerror(rc));
			abort();
		} else {
			fz_assert_unchanged(name, img, img_size);
		}
	}
	shm_unlink(name);
	free(img);
	return 0;
}
