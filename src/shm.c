/*
 * shm.c: the backing store of a segment (see shm.h): the directory, the
 * reservation of its memory at create, prefault and mlock at open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "connreg.h"
#include "shm.h"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/*
 * fallocate works in pieces of at most this size. tmpfs returns EINTR when
 * a signal arrives during a call, and undoes that call's pages; the piece
 * is then retried at half the size (down to CR_FALLOC_MIN), so a process
 * whose timer fires more often than a piece takes (a profiler, a 1 kHz
 * tick) still gets through a large segment.
 */
#define CR_FALLOC_CHUNK (8ull << 20)
#define CR_FALLOC_MIN (64ull << 10)

int cr_shm_dir_get(struct cr_shm_dir *d)
{
	const char *env = secure_getenv(CR_SHM_ENV_DIR);
	size_t n;

	d->path[0] = '\0';
	if (!env || !*env)
		return 0;
	n = strlen(env);
	/* Room for "/" + a longest name + NUL after it. */
	if (env[0] != '/' || n + 1 + CONNREG_NAME_MAX + 1 > sizeof(d->path))
		return -EINVAL;
	memcpy(d->path, env, n + 1);
	return 0;
}

int cr_shm_open(const struct cr_shm_dir *d, const char *name, int oflag, mode_t mode)
{
	char path[sizeof(d->path) + CONNREG_NAME_MAX + 2];
	int fd;

	if (!d->path[0]) {
		fd = shm_open(name, oflag | O_CLOEXEC, mode);
		return fd >= 0 ? fd : -errno;
	}
	/* shm_open's own flags: never follow a link planted under the name. */
	snprintf(path, sizeof(path), "%s%s", d->path, name);
	fd = open(path, oflag | O_CLOEXEC | O_NOFOLLOW, mode);
	return fd >= 0 ? fd : -errno;
}

int cr_shm_unlink(const struct cr_shm_dir *d, const char *name)
{
	char path[sizeof(d->path) + CONNREG_NAME_MAX + 2];

	if (!d->path[0])
		return shm_unlink(name) == 0 ? 0 : -errno;
	snprintf(path, sizeof(path), "%s%s", d->path, name);
	return unlink(path) == 0 ? 0 : -errno;
}

static uint64_t cr_granule_of(const struct statfs *s)
{
	return (s->f_type == HUGETLBFS_MAGIC && s->f_bsize > 0) ? (uint64_t)s->f_bsize : 1;
}

uint64_t cr_shm_granule_fd(int fd)
{
	struct statfs s;

	return fstatfs(fd, &s) == 0 ? cr_granule_of(&s) : 1;
}

uint64_t cr_shm_granule_dir(const struct cr_shm_dir *d)
{
	struct statfs s;

	return statfs(d->path[0] ? d->path : CR_SHM_DEFAULT_DIR, &s) == 0 ? cr_granule_of(&s) : 1;
}

int cr_shm_space(const struct cr_shm_dir *d, uint64_t *avail, uint64_t *total)
{
	struct statvfs s;

	if (statvfs(d->path[0] ? d->path : CR_SHM_DEFAULT_DIR, &s) != 0)
		return -errno;
	if (avail)
		*avail = (uint64_t)s.f_bavail * s.f_frsize;
	if (total)
		*total = (uint64_t)s.f_blocks * s.f_frsize;
	return 0;
}

/* Allocate [off, off + len) without changing the file's size. 0 or -errno. */
static int cr_falloc(int fd, uint64_t off, uint64_t len)
{
	uint64_t chunk = CR_FALLOC_CHUNK;

	while (len > 0) {
		uint64_t n = len < chunk ? len : chunk;

		if (fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)n) != 0) {
			if (errno != EINTR)
				return -errno;
			if (chunk > CR_FALLOC_MIN)
				chunk /= 2;
			continue;
		}
		off += n;
		len -= n;
	}
	return 0;
}

/*
 * For a filesystem without fallocate (EOPNOTSUPP: some network and FUSE
 * filesystems; tmpfs and hugetlbfs have it): set the size, then write a
 * byte of every page, so that the filesystem allocates each one now and a
 * full one says ENOSPC here instead of SIGBUS to whoever touches the page.
 * Such filesystems read a hole as zeros, so the window in which an opener
 * can see the size before the pages exist does it no harm.
 */
static int cr_fill(int fd, uint64_t size)
{
	static const char zero;

	if (ftruncate(fd, (off_t)size) != 0)
		return -errno;
	for (uint64_t off = 0; off < size;) {
		if (pwrite(fd, &zero, 1, (off_t)off) == 1)
			off += 4096;
		else if (errno != EINTR)
			return errno ? -errno : -EIO;
	}
	return 0;
}

int cr_shm_reserve(int fd, uint64_t head, uint64_t size)
{
	struct statvfs sv;
	int rc;

	/*
	 * A segment larger than the free space is refused before a byte is
	 * allocated: fallocate would otherwise take all that is free (memory,
	 * on tmpfs) before failing and giving it back. A filesystem without a
	 * size limit (f_blocks 0) is left to fallocate.
	 */
	if (fstatvfs(fd, &sv) == 0 && sv.f_blocks != 0 &&
	    size > (uint64_t)sv.f_bfree * sv.f_frsize)
		return -ENOSPC;
	if (head > size)
		head = size;
	rc = cr_falloc(fd, 0, head);
	if (rc == -EOPNOTSUPP || rc == -ENOSYS)
		return cr_fill(fd, size);
	if (rc)
		return rc;
	/*
	 * The header's pages exist: the size may show now. The rest is
	 * allocated within it, which a tmpfs mounted huge=within_size needs
	 * to give it huge pages.
	 */
	if (ftruncate(fd, (off_t)size) != 0)
		return -errno;
	return cr_falloc(fd, head, size - head);
}

/* Fill the page tables for [base, base + len), writable. 0 or -errno. */
static int cr_populate(uint8_t *base, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	int e;

	do {
		if (madvise(base, len, MADV_POPULATE_WRITE) == 0)
			return 0;
		e = errno;
	} while (e == EINTR);
	/* A page the filesystem could not supply (it would have been SIGBUS). */
	if (e == EFAULT || e == EHWPOISON)
		return -ENOSPC;
	if (e != EINVAL)
		return -e;
	/*
	 * Kernels before 5.14: read a byte of every page. A read fault on a
	 * shared writable mapping of tmpfs or hugetlbfs (no dirty tracking)
	 * installs a writable entry, so the reader's later stores (its reader
	 * slot) do not fault either. An unsuppliable page is SIGBUS here, as
	 * it would have been on first use.
	 */
	if (page <= 0)
		page = 4096;
	for (size_t off = 0; off < len; off += (size_t)page)
		(void)*(volatile const uint8_t *)(base + off);
	return 0;
}

int cr_shm_prepare(const struct cr_shm_dir *d, void *base, size_t len, uint32_t flags)
{
	/*
	 * An operator who chose a directory for the segment asked for its
	 * pages: on a tmpfs mounted huge=advise or within_size this lets
	 * khugepaged give the mapping 2 MiB pages (on huge=always fallocate
	 * has already allocated them; on hugetlbfs the advice does not apply).
	 * Best effort: kernels without THP say EINVAL.
	 */
	if (d->path[0])
		(void)madvise(base, len, MADV_HUGEPAGE);
	if (flags & CONNREG_OPEN_MLOCK)
		flags |= CONNREG_OPEN_PREFAULT;
	if (flags & CONNREG_OPEN_PREFAULT) {
		int rc = cr_populate(base, len);

		if (rc)
			return rc;
	}
	if ((flags & CONNREG_OPEN_MLOCK) && mlock(base, len) != 0)
		return errno == EPERM ? -EPERM : -ENOMEM;
	return 0;
}

static bool cr_env_on(const char *var)
{
	const char *v = getenv(var);

	return v && *v && strcmp(v, "0") != 0;
}

uint32_t cr_shm_env_flags(void)
{
	uint32_t f = 0;

	if (cr_env_on(CR_SHM_ENV_PREFAULT))
		f |= CONNREG_OPEN_PREFAULT;
	if (cr_env_on(CR_SHM_ENV_MLOCK))
		f |= CONNREG_OPEN_MLOCK | CONNREG_OPEN_PREFAULT;
	return f;
}

int connreg_shm_space(uint64_t *avail, uint64_t *total)
{
	struct cr_shm_dir dir;
	int rc = cr_shm_dir_get(&dir);

	return rc ? rc : cr_shm_space(&dir, avail, total);
}
