/*
 * segment.c: create, open, close and unlink a registry segment; name and
 * configuration checks; the validation that refuses any segment that is
 * not a sound registry before anything in it is trusted.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "handle.h"
#include "index.h"
#include "owner.h"
#include "rcu.h"
#include "shm.h"

static _Atomic uint64_t cr_handle_gen_counter;

static int cr_name_valid(const char *name)
{
	size_t n = 0;
	int all_dots = 1;

	if (!name || name[0] != '/')
		return 0;
	for (const char *p = name + 1; *p; p++, n++) {
		char c = *p;

		if (n >= CONNREG_NAME_MAX)
			return 0;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
		if (c != '.')
			all_dots = 0;
	}
	/* "/." and "/.." name directories under /dev/shm, not segments. */
	return n > 0 && !(all_dots && n <= 2);
}

static void cr_nap_ms(unsigned ms)
{
	struct timespec ts = { 0, (long)ms * 1000000L };

	nanosleep(&ts, NULL);
}

#define CR_KNOWN_FLAGS CONNREG_TRANSPORT_IS_PID

_Static_assert(sizeof(connreg_config_t) == CONNREG_CONFIG_SIZE_VER0,
	       "connreg_config_t grew: add CONNREG_CONFIG_SIZE_VER1, keep VER0");

/*
 * Copy the caller's config (of the size it declares) into a zeroed struct
 * of ours: a shorter one leaves our newer fields at their defaults; a
 * longer one may only carry zeros past what we know.
 */
static int cr_config_normalize(const connreg_config_t *in, connreg_config_t *out)
{
	size_t n = in->size ? in->size : CONNREG_CONFIG_SIZE_VER0;

	if (n < CONNREG_CONFIG_SIZE_VER0)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	memcpy(out, in, n < sizeof(*out) ? n : sizeof(*out));
	for (size_t i = sizeof(*out); i < n; i++)
		if (((const uint8_t *)in)[i] != 0)
			return -E2BIG;
	return out->reserved0 ? -EINVAL : 0;
}

static int cr_params_from_config(const connreg_config_t *user, struct cr_params *p,
				 uint32_t *mode, uint32_t *flags)
{
	connreg_config_t c, *cfg = &c;
	int rc = cr_config_normalize(user, &c);

	if (rc)
		return rc;
	if (cfg->capacity == 0 || cfg->capacity > CONNREG_CAPACITY_LIMIT)
		return -EINVAL;
	if (cfg->key_max > CONNREG_KEY_MAX_LIMIT || cfg->max_threads > CR_MAX_RSLOTS ||
	    (cfg->mode & ~0777u) || (cfg->flags & ~CR_KNOWN_FLAGS))
		return -EINVAL;
	p->capacity = cfg->capacity;
	p->key_max = cfg->key_max ? cfg->key_max : CR_DEFAULT_KEY_MAX;
	p->n_rslots = cfg->max_threads ? cfg->max_threads : CR_DEFAULT_RSLOTS;
	*mode = cfg->mode ? cfg->mode : CR_DEFAULT_MODE;
	*flags = cfg->flags;
	return 0;
}

static int cr_params_valid(const struct cr_params *p)
{
	return p->capacity > 0 && p->capacity <= CONNREG_CAPACITY_LIMIT && p->key_max > 0 &&
	       p->key_max <= CONNREG_KEY_MAX_LIMIT && p->n_rslots > 0 &&
	       p->n_rslots <= CR_MAX_RSLOTS;
}

/* Build the process-local handle over a mapped, validated segment. */
static int cr_handle_new(uint8_t *base, const struct cr_params *p, const struct cr_geometry *g,
			 bool light, struct connreg_handle **out)
{
	struct connreg_handle *reg = calloc(1, sizeof(*reg));
	int rc;

	if (!reg)
		return -ENOMEM;
	reg->base = base;
	reg->size = g->segment_size;
	reg->hdr = (struct cr_header *)base;
	reg->index = (struct cr_bucket *)(base + g->off_index);
	reg->rslots = (struct cr_rslot *)(base + g->off_rslots);
	reg->tokens = (struct cr_token *)(base + g->off_tokens);
	reg->changes = (_Atomic uint64_t *)(base + g->off_changes);
	reg->n_change_words = g->n_change_words;
	reg->stripes = (struct cr_stripe *)(base + g->off_stripes);
	reg->states = (_Atomic uint64_t *)(base + g->off_states);
	/* No side entries (stride 0): NULL, so that a stray read faults at once, not past the map. */
	reg->entries = g->entry_stride ? base + g->off_entries : NULL;
	reg->secret = reg->hdr->secret;
	cr_hash_keys_init(&reg->hkeys, reg->secret);
	reg->n_buckets = g->n_buckets;
	reg->entry_stride = g->entry_stride;
	reg->n_entries = g->n_entries;
	reg->n_rslots = p->n_rslots;
	reg->n_tokens = g->n_tokens;
	reg->n_stripes = g->n_stripes;
	reg->key_max = p->key_max;
	reg->capacity = p->capacity;
	reg->light = light;
	/* 0 without membarrier: the fast lookup's fence-free announce needs it. */
	reg->fast_len_max = !light ? 0 : p->key_max < CR_KEY_INLINE ? p->key_max : CR_KEY_INLINE;
	reg->flags = ((struct cr_header *)base)->flags;
	/* Relaxed (here and below): process-local counters; uniqueness only. */
	reg->handle_gen = atomic_fetch_add_explicit(&cr_handle_gen_counter, 1,
						    memory_order_relaxed) + 1;
	reg->fork_gen = atomic_load_explicit(&cr_fork_gen, memory_order_relaxed);
	/* The user's reference; each thread record adds one (thread.c). */
	atomic_init(&reg->refs, 1);
	rc = -pthread_mutex_init(&reg->threads_mu, NULL);
	if (rc) {
		free(reg);
		return rc;
	}
	*out = reg;
	return 0;
}

void cr_handle_put(struct connreg_handle *reg)
{
	/* ORD-14(rw): acq_rel: the last dropper sees every holder's last touch of the mapping. */
	if (atomic_fetch_sub_explicit(&reg->refs, 1, memory_order_acq_rel) != 1)
		return;
	pthread_mutex_destroy(&reg->threads_mu);
	munmap(reg->base, reg->size);
	free(reg);
}

static int cr_stripes_init(struct cr_stripe *stripes, uint32_t n)
{
	pthread_mutexattr_t a;
	int rc;

	rc = pthread_mutexattr_init(&a);
	if (rc)
		return -rc;
	rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (!rc)
		rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	for (uint32_t i = 0; !rc && i < n; i++)
		rc = pthread_mutex_init(&stripes[i].mu, &a);
	pthread_mutexattr_destroy(&a);
	return -rc;
}

static int cr_fill_secret(uint8_t *secret)
{
	size_t got = 0;

	while (got < CR_SECRET_SIZE) {
		ssize_t n = getrandom(secret + got, CR_SECRET_SIZE - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	return 0;
}

int connreg_create(const char *name, const connreg_config_t *cfg, connreg_t **out)
{
	struct cr_params p;
	struct cr_geometry g;
	struct cr_shm_dir dir;
	uint32_t mode, flags;
	uint64_t map_len;
	uint8_t *base;
	bool light;
	int fd, rc;

	if (!name || !cfg || !out || !cr_name_valid(name))
		return -EINVAL;
	rc = cr_params_from_config(cfg, &p, &mode, &flags);
	if (rc)
		return rc;
	rc = cr_geometry_compute(&p, flags, &g);
	if (rc)
		return rc;
	rc = cr_shm_dir_get(&dir);
	if (rc)
		return rc;
	cr_rcu_process_init(&light);

	fd = cr_shm_open(&dir, name, O_RDWR | O_CREAT | O_EXCL, (mode_t)mode);
	if (fd < 0)
		return fd;
	map_len = cr_shm_round(g.segment_size, cr_shm_granule_fd(fd));
	/* The umask must not narrow what the caller asked for. */
	if (fchmod(fd, (mode_t)mode) != 0) {
		rc = -errno;
		goto fail_unlink;
	}
	/*
	 * Every page is allocated before the segment has its size, so a full
	 * filesystem says -ENOSPC here, once, rather than SIGBUS later to
	 * whichever process first touches a page it cannot supply.
	 */
	rc = cr_shm_reserve(fd, sizeof(struct cr_header), map_len);
	if (rc)
		goto fail_unlink;
	base = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto fail_unlink;
	}
	rc = cr_shm_prepare(&dir, base, map_len, cr_shm_env_flags());
	if (rc)
		goto fail_unmap;

	/* The segment is zero-filled: EMPTY slots, FREE states, free reader slots. */
	struct cr_header *h = (struct cr_header *)base;
	h->magic = CR_MAGIC;
	h->layout_version = CR_LAYOUT_VERSION;
	h->layout_sig = cr_layout_signature();
	h->flags = flags;
	h->params = p;
	h->geo = g;
	rc = cr_fill_secret(h->secret);
	if (!rc)
		rc = cr_stripes_init((struct cr_stripe *)(base + g.off_stripes), g.n_stripes);
	if (!rc)
		rc = cr_stripes_init(&h->count_mu, 1);
	if (!rc)
		rc = cr_tokens_init((struct cr_token *)(base + g.off_tokens), g.n_tokens);
	if (rc)
		goto fail_unmap;
	struct cr_rslot *rs = (struct cr_rslot *)(base + g.off_rslots);
	for (uint32_t i = 0; i < p.n_rslots; i++)
		atomic_init(&rs[i].w_old, CR_IDX_NONE);
	atomic_init(&h->epoch, 1);
	atomic_init(&h->safe_epoch, 1);
	/*
	 * ORD-0(w): the ready marker is stored last, with release: an opener that
	 * reads it (acquire, connreg_open) sees the whole initialised segment.
	 */
	atomic_store_explicit(&h->ready, CR_READY, memory_order_release);
	close(fd);

	rc = cr_handle_new(base, &p, &g, light, out);
	if (rc)
		munmap(base, map_len);
	else
		(*out)->size = map_len;
	return rc;

fail_unmap:
	munmap(base, map_len);
fail_unlink:
	cr_shm_unlink(&dir, name);
	close(fd);
	return rc;
}

/*
 * Check a header copy against the segment's real size (a whole number of
 * granules: huge pages on hugetlbfs, else bytes). 0 or -EPROTO.
 */
static int cr_header_check(const struct cr_header *h, uint64_t seg_size, uint64_t granule)
{
	struct cr_geometry g;

	if (h->magic != CR_MAGIC || h->layout_version != CR_LAYOUT_VERSION ||
	    h->layout_sig != cr_layout_signature() || !cr_params_valid(&h->params) ||
	    (h->flags & ~CR_KNOWN_FLAGS))
		return -EPROTO;
	if (cr_geometry_compute(&h->params, h->flags, &g) != 0 || memcmp(&g, &h->geo, sizeof(g)) != 0 ||
	    cr_shm_round(g.segment_size, granule) != seg_size)
		return -EPROTO;
	return 0;
}

/* Dynamic words that must be in range too (read once, relaxed: a snapshot). */
static int cr_dynamic_check(struct cr_header *h)
{
	/* Relaxed (here and below): a snapshot, only range-checked. */
	uint64_t epoch = atomic_load_explicit(&h->epoch, memory_order_relaxed);
	uint64_t safe = atomic_load_explicit(&h->safe_epoch, memory_order_relaxed);
	uint64_t live = atomic_load_explicit(&h->live_hint, memory_order_relaxed);
	uint32_t hwm = atomic_load_explicit(&h->rslot_hwm, memory_order_relaxed);

	if (epoch == 0 || safe == 0 || safe > epoch || live > h->params.capacity ||
	    hwm > h->params.n_rslots)
		return -EPROTO;
	return 0;
}

_Static_assert(sizeof(connreg_open_opts_t) == CONNREG_OPEN_OPTS_SIZE_VER0,
	       "connreg_open_opts_t grew: add CONNREG_OPEN_OPTS_SIZE_VER1, keep VER0");

/* The caller's open options (of the size it declares) as flags. 0, -EINVAL, -E2BIG. */
static int cr_open_flags(const connreg_open_opts_t *in, uint32_t *flags)
{
	size_t n;

	if (!in) {
		*flags = cr_shm_env_flags();
		return 0;
	}
	n = in->size ? in->size : CONNREG_OPEN_OPTS_SIZE_VER0;
	if (n < CONNREG_OPEN_OPTS_SIZE_VER0)
		return -EINVAL;
	for (size_t i = sizeof(*in); i < n; i++)
		if (((const uint8_t *)in)[i] != 0)
			return -E2BIG;
	if (in->flags & ~(CONNREG_OPEN_PREFAULT | CONNREG_OPEN_MLOCK))
		return -EINVAL;
	*flags = in->flags;
	return 0;
}

/*
 * While waiting for a creator: a name removed before the segment was
 * ready means the creator gave up (-ENOSPC, or died and was cleaned up):
 * -ENOENT at once, as if the open had come a moment later.
 */
static int cr_creator_gone(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && st.st_nlink == 0;
}

int connreg_open(const char *name, connreg_t **out)
{
	return connreg_open_ex(name, NULL, out);
}

int connreg_open_ex(const char *name, const connreg_open_opts_t *opts, connreg_t **out)
{
	uint64_t deadline = cr_now_ms() + CONNREG_OPEN_WAIT_MS;
	struct cr_header copy;
	struct cr_shm_dir dir;
	struct stat st;
	uint8_t *base = MAP_FAILED;
	size_t mapped = 0;
	uint32_t oflags;
	bool light;
	int fd, rc;

	if (!name || !out || !cr_name_valid(name))
		return -EINVAL;
	rc = cr_open_flags(opts, &oflags);
	if (!rc)
		rc = cr_shm_dir_get(&dir);
	if (rc)
		return rc;
	fd = cr_shm_open(&dir, name, O_RDWR, 0);
	if (fd < 0)
		return fd;

	/* A creator may not have sized the segment yet: wait, bounded. */
	for (;;) {
		if (fstat(fd, &st) != 0) {
			rc = -errno;
			goto out_close;
		}
		/* A FIFO or device planted under the name never becomes a registry. */
		if (!S_ISREG(st.st_mode)) {
			rc = -EPROTO;
			goto out_close;
		}
		if ((uint64_t)st.st_size >= sizeof(struct cr_header))
			break;
		if (st.st_nlink == 0) {
			rc = -ENOENT;
			goto out_close;
		}
		if (cr_now_ms() >= deadline) {
			rc = -EPROTO;
			goto out_close;
		}
		cr_nap_ms(1);
	}
	mapped = (size_t)st.st_size;
	base = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto out_close;
	}

	/* Wait for the creator's ready marker, bounded; a foreign magic fails at once. */
	struct cr_header *h = (struct cr_header *)base;
	for (;;) {
		/* ORD-0(r): acquire pairs with the creator's release store of ready. */
		if (atomic_load_explicit(&h->ready, memory_order_acquire) == CR_READY)
			break;
		/* Relaxed: a peek at a word the creator may be writing; only compared. */
		uint64_t magic = __atomic_load_n(&h->magic, __ATOMIC_RELAXED);
		if ((magic != 0 && magic != CR_MAGIC) || cr_now_ms() >= deadline) {
			rc = -EPROTO;
			goto out_unmap;
		}
		if (cr_creator_gone(fd)) {
			rc = -ENOENT;
			goto out_unmap;
		}
		cr_nap_ms(1);
	}
	/* Validate a private copy: a hostile writer cannot change what we checked. */
	memcpy(&copy, h, offsetof(struct cr_header, secret));
	rc = cr_header_check(&copy, (uint64_t)st.st_size, cr_shm_granule_fd(fd));
	if (!rc)
		rc = cr_dynamic_check(h);
	if (!rc)
		rc = cr_shm_prepare(&dir, base, mapped, oflags);
	if (rc)
		goto out_unmap;
	close(fd);
	cr_rcu_process_init(&light);
	rc = cr_handle_new(base, &copy.params, &copy.geo, light, out);
	if (rc)
		munmap(base, mapped);
	else
		(*out)->size = mapped;
	return rc;

out_unmap:
	munmap(base, mapped);
out_close:
	close(fd);
	return rc;
}

int connreg_open_or_create(const char *name, const connreg_config_t *cfg, connreg_t **out,
			   int *created)
{
	int rc = -EEXIST;

	if (created)
		*created = 0;
	/* Retry only while the name flips between existing and not (a concurrent unlink). */
	for (int tries = 0; tries < 100; tries++) {
		rc = connreg_create(name, cfg, out);
		if (rc == 0) {
			if (created)
				*created = 1;
			return 0;
		}
		if (rc != -EEXIST)
			return rc;
		rc = connreg_open(name, out);
		if (rc != -ENOENT)
			return rc;
	}
	return rc;
}

void connreg_close(connreg_t *reg)
{
	if (!reg)
		return;
	/* Relaxed: a process-local word, set by our own atfork handler. */
	if (atomic_load_explicit(&cr_fork_gen, memory_order_relaxed) == reg->fork_gen) {
		cr_threads_close(reg);
		return;
	}
	/*
	 * In a fork child the slots and their liveness locks are the parent's
	 * (this child holds none of them): unmap our copy, touch nothing.
	 */
	munmap(reg->base, reg->size);
	free(reg);
}

int connreg_unlink(const char *name)
{
	struct cr_shm_dir dir;
	int rc;

	if (!name || !cr_name_valid(name))
		return -EINVAL;
	rc = cr_shm_dir_get(&dir);
	return rc ? rc : cr_shm_unlink(&dir, name);
}

int connreg_segment_size(const connreg_config_t *cfg, uint64_t *bytes)
{
	struct cr_params p;
	struct cr_geometry g;
	struct cr_shm_dir dir;
	uint32_t mode, flags;
	int rc;

	if (!cfg || !bytes)
		return -EINVAL;
	rc = cr_params_from_config(cfg, &p, &mode, &flags);
	if (!rc)
		rc = cr_geometry_compute(&p, flags, &g);
	if (!rc)
		rc = cr_shm_dir_get(&dir);
	if (!rc)
		*bytes = cr_shm_round(g.segment_size, cr_shm_granule_dir(&dir));
	return rc;
}
