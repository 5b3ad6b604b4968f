/*
 * errors.c: connreg_strerror. Each string starts with the symbolic name.
 */
#include <errno.h>

#include "connreg.h"

const char *connreg_strerror(int err)
{
	switch (err) {
	case 0:
		return "OK: success";
	case -EINVAL:
		return "EINVAL: invalid argument (NULL pointer, empty id, bad name or configuration)";
	case -ENAMETOOLONG:
		return "ENAMETOOLONG: connection id longer than the registry's key_max";
	case -ENOENT:
		return "ENOENT: no such connection id, or no such registry";
	case -EEXIST:
		return "EEXIST: a registry with this name already exists";
	case -ENOSPC:
		return "ENOSPC: registry full: capacity ids are live; or, at create, no room for "
		       "the segment in /dev/shm (or CONNREG_SHM_DIR): see connreg_segment_size "
		       "and df, enlarge it (docker run --shm-size=..., or "
		       "mount -o remount,size=... /dev/shm)";
	case -E2BIG:
		return "E2BIG: the config struct carries fields this library does not know "
		       "(built against a newer connreg.h)";
	case -EPROTO:
		return "EPROTO: segment is not a valid connreg registry (bad magic, version, "
		       "layout or size, or never finished initialising)";
	case -EAGAIN:
		return "EAGAIN: no reusable record position, reader slot or stripe lock; a stopped "
		       "reader or writer may be holding it";
	case -ECHILD:
		return "ECHILD: handle opened before fork(); the child must open its own";
	case -ENOMEM:
		return "ENOMEM: out of process memory, or CONNREG_OPEN_MLOCK over RLIMIT_MEMLOCK "
		       "(raise it: ulimit -l, LimitMEMLOCK=)";
	case -EPERM:
		return "EPERM: CONNREG_OPEN_MLOCK not permitted: RLIMIT_MEMLOCK is 0 and no "
		       "CAP_IPC_LOCK (raise it: ulimit -l, LimitMEMLOCK=)";
	case -ETIMEDOUT:
		return "ETIMEDOUT: the id's transport did not change before the timeout";
	case -EOPNOTSUPP:
		return "EOPNOTSUPP: operation needs a registry created with CONNREG_TRANSPORT_IS_PID";
	case -EACCES:
		return "EACCES: permission denied on the shared-memory segment";
	case -EMFILE:
		return "EMFILE: too many open files in this process";
	case -ENFILE:
		return "ENFILE: too many open files in the system";
	case -ENOSYS:
		return "ENOSYS: required system call not available";
	case -EIO:
		return "EIO: input/output error";
	default:
		return err < 0 ? "unknown error: a negative errno that connreg does not document"
			       : "unknown error: not a connreg return value";
	}
}
