#!/usr/bin/env python3
"""cffi out-of-line API-mode build of ``connreg._native``.

Used two ways:

* by ``setup.py`` (``cffi_modules=["build_ffi.py:ffibuilder"]``), so that
  ``pip install bindings/python`` compiles the extension;
* directly: ``python3 build_ffi.py --out DIR`` writes an importable copy of
  the package (the Python sources plus the compiled extension) to
  ``DIR/connreg``; the tests run that copy with ``PYTHONPATH=DIR``.

The extension is compiled against ``connreg.h`` and linked against
``libconnreg.so``, found in this order:

1. ``CONNREG_INCLUDE_DIR`` and ``CONNREG_LIB_DIR`` from the environment;
2. ``pkg-config connreg`` (an installed library, e.g. under /usr/local);
3. this repository's ``include/`` and ``build/`` (a source checkout).

Unless the library lives in a directory the dynamic loader always searches,
the extension records it as its run path, so it imports without
``LD_LIBRARY_PATH``.

API mode means the C compiler checks every declaration below against the
real header: a signature or struct-layout mismatch fails the build instead
of corrupting memory at run time. Every call releases the GIL.
"""
import argparse
import os
import shutil
import subprocess
import sys

import cffi

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# The public API, as the C compiler will check it against <connreg.h>.
# Ids are declared `const char *` (the header says `const void *`, which a
# char pointer converts to) so that Python bytes pass without a copy.
CDEF = r"""
#define CONNREG_VERSION_MAJOR ...
#define CONNREG_VERSION_MINOR ...
#define CONNREG_KEY_MAX_LIMIT ...
#define CONNREG_CAPACITY_LIMIT ...
#define CONNREG_NAME_MAX ...
#define CONNREG_OPEN_WAIT_MS ...
#define CONNREG_RECLAIM_WAIT_MS ...
#define CONNREG_TRANSPORT_IS_PID ...

typedef struct connreg_handle connreg_t;

typedef struct connreg_config {
    uint32_t size;
    uint32_t key_max;
    uint64_t capacity;
    uint32_t mode;
    uint32_t max_threads;
    uint32_t flags;
    uint32_t reserved0;
} connreg_config_t;

typedef struct connreg_stats {
    uint32_t size;
    uint32_t layout_version;
    uint64_t capacity;
    uint64_t live;
    uint64_t free;
    uint64_t retired;
    uint64_t tombstones;
    uint64_t epoch;
    uint64_t safe_epoch;
    uint32_t readers;
    uint32_t max_probe;
    uint64_t entries;
    uint64_t buckets;
    uint64_t segment_size;
    uint32_t key_max;
    uint32_t max_threads;
    uint32_t flags;
    uint32_t reserved0;
    uint64_t writer_eagain;
    uint64_t slots_recovered;
    uint64_t grace_periods;
} connreg_stats_t;

typedef struct connreg_reader {
    uint32_t slot;
    int32_t pid;
    uint32_t tid;
    uint32_t alive;
    uint64_t epoch;
} connreg_reader_t;

int connreg_create(const char *name, const connreg_config_t *cfg, connreg_t **out);
int connreg_open(const char *name, connreg_t **out);
int connreg_open_or_create(const char *name, const connreg_config_t *cfg,
                           connreg_t **out, int *created);
void connreg_close(connreg_t *reg);
int connreg_unlink(const char *name);
int connreg_register(connreg_t *reg, const char *id, size_t id_len, uint64_t transport);
int connreg_get_transport(connreg_t *reg, const char *id, size_t id_len, uint64_t *transport);
int connreg_unregister(connreg_t *reg, const char *id, size_t id_len);
int connreg_update_transport(connreg_t *reg, const char *id, size_t id_len,
                             uint64_t transport);
int connreg_cas_transport(connreg_t *reg, const char *id, size_t id_len,
                          uint64_t expected, uint64_t desired, uint64_t *current);
int connreg_wait_transport(connreg_t *reg, const char *id, size_t id_len,
                           uint64_t seen, uint64_t *transport, int timeout_ms);
int connreg_stats(connreg_t *reg, connreg_stats_t *st);
int connreg_reap(connreg_t *reg, uint64_t *removed);
const char *connreg_strerror(int err);

/* Helpers defined in SOURCE below. */
typedef struct crpy_buf {
    char *data;
    size_t len;
    size_t cap;
} crpy_buf;
void crpy_buf_free(crpy_buf *b);
int crpy_foreach(connreg_t *reg, crpy_buf *meta, crpy_buf *ids);
int crpy_readers(connreg_t *reg, crpy_buf *b);
int crpy_check(connreg_t *reg, crpy_buf *b);
int crpy_get_bulk(connreg_t *reg, size_t n, const char *blob, const size_t *lens,
                  uint64_t *transports, int *rc);
#define CRPY_SENTINEL ...
uint64_t crpy_get(connreg_t *reg, const char *id, size_t id_len);
int crpy_last_rc(void);
"""

# C helpers compiled into the extension. They gather what the C library
# hands to a callback (foreach, readers, check) into one malloc'd buffer, so
# that no Python code runs inside a C frame of the library and the walk does
# not take the GIL once per id.
SOURCE = r"""
#include <connreg.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * The lookup in one call, without an out-parameter (a per-call cdata, or a
 * per-thread one, costs more than the lookup): the transport is returned;
 * CRPY_SENTINEL means "ask crpy_last_rc()", which is this thread's return
 * code of that lookup (0 when the transport really is CRPY_SENTINEL).
 */
#define CRPY_SENTINEL 0x9e3779b97f4a7c15ull

static __thread int crpy_rc;

static uint64_t crpy_get(connreg_t *reg, const char *id, size_t id_len)
{
    uint64_t t;
    int rc = connreg_get_transport(reg, id, id_len, &t);

    if (rc == 0 && t != CRPY_SENTINEL)
        return t;
    crpy_rc = rc;
    return CRPY_SENTINEL;
}

static int crpy_last_rc(void)
{
    return crpy_rc;
}

typedef struct crpy_buf {
    char *data;
    size_t len;
    size_t cap;
} crpy_buf;

static void crpy_buf_free(crpy_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int crpy_buf_put(crpy_buf *b, const void *p, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 4096;
        char *d;

        while (cap - b->len < n)
            cap *= 2;
        d = realloc(b->data, cap);
        if (!d)
            return -ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/*
 * The walk fills two buffers: `meta` gets (transport, id length) as two
 * uint64_t per id, `ids` the ids laid end to end; Python splits them with
 * a couple of bulk conversions instead of parsing records one by one.
 */
struct crpy_walk {
    crpy_buf *meta;
    crpy_buf *ids;
};

static int crpy_foreach_cb(const void *id, size_t id_len, uint64_t transport, void *arg)
{
    struct crpy_walk *w = arg;
    uint64_t m[2] = {transport, id_len};

    if (crpy_buf_put(w->meta, m, sizeof(m)) || crpy_buf_put(w->ids, id, id_len))
        return -ENOMEM;
    return 0;
}

static int crpy_foreach(connreg_t *reg, crpy_buf *meta, crpy_buf *ids)
{
    struct crpy_walk w = {meta, ids};

    return connreg_foreach(reg, crpy_foreach_cb, &w);
}

static int crpy_readers_cb(const connreg_reader_t *r, void *arg)
{
    return crpy_buf_put(arg, r, sizeof(*r));
}

static int crpy_readers(connreg_t *reg, crpy_buf *b)
{
    return connreg_readers(reg, crpy_readers_cb, b);
}

/* Problems as NUL-terminated lines, one after another. */
static void crpy_check_cb(const char *problem, void *arg)
{
    (void)crpy_buf_put(arg, problem, strlen(problem) + 1);
}

static int crpy_check(connreg_t *reg, crpy_buf *b)
{
    return connreg_check(reg, crpy_check_cb, b);
}

/*
 * n ids laid end to end in blob, looked up 64 at a time. Returns the
 * number of ids not registered (rc[i] == -ENOENT), or a negative errno: the
 * call's, or the first bad id's (-EINVAL, -ENAMETOOLONG).
 */
static int crpy_get_bulk(connreg_t *reg, size_t n, const char *blob, const size_t *lens,
                         uint64_t *transports, int *rc)
{
    const void *ids[64];
    size_t i, j, m;
    int r, misses = 0;

    for (i = 0; i < n; i += m) {
        m = n - i < 64 ? n - i : 64;
        for (j = 0; j < m; j++) {
            ids[j] = blob;
            blob += lens[i + j];
        }
        r = connreg_get_transport_bulk(reg, m, ids, lens + i, transports + i, rc + i);
        if (r)
            return r;
    }
    for (i = 0; i < n; i++) {
        if (rc[i] == -ENOENT)
            misses++;
        else if (rc[i])
            return rc[i];
    }
    return misses;
}
"""

# Directories the dynamic loader searches without being told.
_SYSTEM_LIB_DIRS = {"/lib", "/usr/lib", "/lib64", "/usr/lib64"}


def _multiarch_dirs():
    try:
        arch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return set()
    return {"/lib/" + arch, "/usr/lib/" + arch} if arch else set()


def _pkg_config():
    try:
        cflags = subprocess.run(["pkg-config", "--cflags-only-I", "connreg"],
                                capture_output=True, text=True, check=True).stdout.split()
        libs = subprocess.run(["pkg-config", "--libs-only-L", "connreg"],
                              capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None
    inc = [f[2:] for f in cflags if f.startswith("-I")]
    lib = [f[2:] for f in libs if f.startswith("-L")]
    # An empty -I (the header is in /usr/include) is fine; so is an empty -L.
    return (inc[0] if inc else "/usr/include", lib[0] if lib else "/usr/lib")


def locate():
    """(include dir, library dir) to build against; see the module docstring."""
    inc = os.environ.get("CONNREG_INCLUDE_DIR")
    lib = os.environ.get("CONNREG_LIB_DIR")
    if inc or lib:
        if not (inc and lib):
            sys.exit("build_ffi: set both CONNREG_INCLUDE_DIR and CONNREG_LIB_DIR, or neither")
        return os.path.abspath(inc), os.path.abspath(lib)
    found = _pkg_config()
    if found:
        return found
    inc = os.path.join(REPO, "include")
    lib = os.path.join(REPO, "build")
    if os.path.isfile(os.path.join(inc, "connreg.h")) and os.path.exists(
            os.path.join(lib, "libconnreg.so")):
        return inc, lib
    sys.exit("build_ffi: connreg not found: set CONNREG_INCLUDE_DIR and CONNREG_LIB_DIR, "
             "install it (pkg-config connreg), or build it in " + lib)


def make_builder():
    inc, lib = locate()
    if not os.path.isfile(os.path.join(inc, "connreg.h")):
        sys.exit("build_ffi: no connreg.h in " + inc)
    link_args = []
    if os.path.realpath(lib) not in _SYSTEM_LIB_DIRS | _multiarch_dirs():
        link_args.append("-Wl,-rpath," + lib)
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source(
        "connreg._native",
        SOURCE,
        include_dirs=[inc],
        library_dirs=[lib],
        libraries=["connreg"],
        extra_link_args=link_args,
        # A declaration above that disagrees with the header is an error.
        extra_compile_args=["-Werror=incompatible-pointer-types", "-Werror=int-conversion",
                            "-Werror=implicit-function-declaration", "-Werror=discarded-qualifiers"],
    )
    return ffi


ffibuilder = make_builder()

PACKAGE_FILES = ["__init__.py", "_native.pyi", "py.typed"]


def build_into(out):
    """Compile the extension and copy the package sources to out/connreg."""
    out = os.path.abspath(out)
    tmp = os.path.join(out, ".ffi-build")
    os.makedirs(tmp, exist_ok=True)
    so = ffibuilder.compile(tmpdir=tmp, verbose=False)
    pkg = os.path.join(out, "connreg")
    os.makedirs(pkg, exist_ok=True)
    for name in os.listdir(pkg):
        if name.startswith("_native.") and name.endswith(".so"):
            os.unlink(os.path.join(pkg, name))
    shutil.copy2(so, os.path.join(pkg, os.path.basename(so)))
    for name in PACKAGE_FILES:
        src = os.path.join(HERE, "connreg", name)
        if os.path.exists(src):
            shutil.copy2(src, os.path.join(pkg, name))
    return pkg


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True,
                    help="directory to receive connreg/ (put it on PYTHONPATH)")
    args = ap.parse_args()
    print(build_into(args.out))
