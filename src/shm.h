/*
 * shm.h: the backing store of a segment: which directory it lives in, how
 * its memory is reserved at create, and how a mapping is prefaulted and
 * locked at open.
 *
 * By default a segment is POSIX shared memory (shm_open: a file in the
 * tmpfs at /dev/shm). With the environment variable CONNREG_SHM_DIR set to
 * an absolute directory, it is the plain file <dir><name> instead (a tmpfs
 * mounted huge=always for 2 MiB pages, a hugetlbfs mount, a larger tmpfs).
 * Names, permissions, reservation and the validation at open are the same
 * in either place.
 */
#ifndef CONNREG_SHM_H
#define CONNREG_SHM_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CR_SHM_ENV_DIR "CONNREG_SHM_DIR"
#define CR_SHM_ENV_PREFAULT "CONNREG_PREFAULT"
#define CR_SHM_ENV_MLOCK "CONNREG_MLOCK"
/* Where shm_open keeps its files (for the free-space query). */
#define CR_SHM_DEFAULT_DIR "/dev/shm"

struct cr_shm_dir {
	char path[PATH_MAX]; /* "" : shm_open; else an absolute directory, no trailing '/' */
};

/*
 * The segment directory for this call: CONNREG_SHM_DIR (ignored in a
 * set-uid program: secure_getenv) or shm_open's. 0, or -EINVAL when the
 * variable is set but not an absolute path shorter than PATH_MAX - 256.
 */
int cr_shm_dir_get(struct cr_shm_dir *d);

/* Open (oflag: O_CREAT | O_EXCL allowed) the segment `name` ("/..."). fd or -errno. */
int cr_shm_open(const struct cr_shm_dir *d, const char *name, int oflag, mode_t mode);

/* Remove the name. 0 or -errno. */
int cr_shm_unlink(const struct cr_shm_dir *d, const char *name);

/*
 * The unit a segment file's size is rounded up to: the huge page size on
 * hugetlbfs (which maps and allocates only whole huge pages), else 1.
 */
uint64_t cr_shm_granule_fd(int fd);
uint64_t cr_shm_granule_dir(const struct cr_shm_dir *d);

static inline uint64_t cr_shm_round(uint64_t bytes, uint64_t granule)
{
	return (bytes + granule - 1) / granule * granule;
}

/*
 * Free and total bytes of the directory's filesystem (statvfs: f_bavail
 * and f_blocks times f_frsize; on hugetlbfs, its huge pages). 0 or -errno.
 */
int cr_shm_space(const struct cr_shm_dir *d, uint64_t *avail, uint64_t *total);

/*
 * Give a new, empty segment file `size` bytes, every one of them backed
 * (allocated) before the file shows its size, so that no process ever
 * finds a page that the filesystem cannot supply (SIGBUS on tmpfs).
 * `head` bytes at the start are reserved first, before the size is set,
 * so an opener that maps the file as soon as it has its size and reads
 * the header never touches a hole. 0, -ENOSPC, or another -errno.
 */
int cr_shm_reserve(int fd, uint64_t head, uint64_t size);

/* Flags of cr_shm_prepare: the public CONNREG_OPEN_* bits. */

/*
 * Before a handle is built over a validated mapping: advise huge pages
 * (in a CONNREG_SHM_DIR that is not hugetlbfs), then with
 * CONNREG_OPEN_PREFAULT fill the page tables for every page, writable,
 * and with CONNREG_OPEN_MLOCK lock it. 0, -ENOMEM, -EPERM, or -ENOSPC (a
 * page the filesystem could not supply: a segment created sparse by an
 * older library on a full tmpfs).
 */
int cr_shm_prepare(const struct cr_shm_dir *d, void *base, size_t len, uint32_t flags);

/* CONNREG_OPEN_* bits asked for by CONNREG_PREFAULT=1 and CONNREG_MLOCK=1. */
uint32_t cr_shm_env_flags(void);

#endif /* CONNREG_SHM_H */
