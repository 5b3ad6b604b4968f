"""connreg: a cross-process connection-id -> transport registry in POSIX shared memory.

A registry lives in one shared-memory segment; every process on the host that
opens it by name sees the same mapping ``id (bytes) -> transport (int, 0 ..
2**64-1)``. Lookups are wait-free; writers never block them.

    import connreg

    with connreg.Registry.open_or_create("/gw", capacity=100_000) as reg:
        reg.register("conn-42", 0x1001)
        assert reg["conn-42"] == 0x1001

Ids are ``bytes`` or ``str`` (encoded as UTF-8); ids read back from the
registry (iteration) are ``bytes``. Every call releases the GIL.

Errors are ``OSError`` built as ``OSError(errno, connreg_strerror(...))``, so
Python's own subclasses arise: ``FileExistsError`` (create of a taken name),
``FileNotFoundError`` (open of a missing name), ``TimeoutError`` (wait),
``BlockingIOError`` (EAGAIN), ``PermissionError``, ``ChildProcessError`` (a
handle used in the child of a ``fork()``: open a new one there). ``errno`` is
set and ``strerror`` is the library's text. A missing id is ``KeyError``
(``reg[id]``, ``update``, ``cas``); a closed registry is ``ValueError``.

A ``Registry`` may be used by many threads at once, but must not be closed
while another thread is inside a call on it (as with the C handle).
"""
from __future__ import annotations

import dataclasses
import errno as _errno
from itertools import accumulate as _accumulate
import math as _math
import time as _time
from typing import Any, Iterable, Iterator, List, NoReturn, Optional, Tuple, TypeVar, Union

from ._native import ffi as _ffi, lib as _lib

__all__ = [
    "Registry",
    "Stats",
    "Reader",
    "unlink",
    "strerror",
    "VERSION",
    "KEY_MAX_LIMIT",
    "CAPACITY_LIMIT",
    "NAME_MAX",
]

#: The C library's (major, minor) version, from the header it was built against.
VERSION: Tuple[int, int] = (_lib.CONNREG_VERSION_MAJOR, _lib.CONNREG_VERSION_MINOR)
__version__ = "%d.%d.0" % VERSION
#: Longest connection id a registry can be configured for (``key_max``).
KEY_MAX_LIMIT: int = _lib.CONNREG_KEY_MAX_LIMIT
#: Largest ``capacity`` a registry can be configured for.
CAPACITY_LIMIT: int = _lib.CONNREG_CAPACITY_LIMIT
#: Longest registry name after its leading ``/``.
NAME_MAX: int = _lib.CONNREG_NAME_MAX

Id = Union[bytes, str]
_T = TypeVar("_T")

_NULL = _ffi.NULL
_ENOENT = -_errno.ENOENT
_EAGAIN = -_errno.EAGAIN
_ETIMEDOUT = -_errno.ETIMEDOUT
_SENTINEL = _lib.CRPY_SENTINEL
_crpy_get = _lib.crpy_get
_crpy_last_rc = _lib.crpy_last_rc
_register = _lib.connreg_register
_unregister = _lib.connreg_unregister
_update = _lib.connreg_update_transport
_close = _lib.connreg_close

# connreg_wait_transport is called in slices this long, so that a wait with
# no deadline still returns to the interpreter, which runs signal handlers
# (Ctrl-C raises KeyboardInterrupt) between slices.
_WAIT_SLICE_MS = 100


def strerror(rc: int) -> str:
    """The library's text for a return value (0 or a negative errno)."""
    text: bytes = _ffi.string(_lib.connreg_strerror(rc))
    return text.decode()


def _oserror(rc: int, filename: Optional[str] = None) -> OSError:
    # OSError(errno, text) returns the matching subclass (FileExistsError, ...).
    if filename is None:
        return OSError(-rc, strerror(rc))
    return OSError(-rc, strerror(rc), filename)


def _id(id: object) -> bytes:
    if isinstance(id, bytes):
        return id
    if isinstance(id, str):
        return id.encode()
    if isinstance(id, (bytes, bytearray, memoryview)):
        return bytes(id)
    raise TypeError("a connection id is bytes or str, not %s" % type(id).__name__)


def _name(name: Union[str, bytes]) -> bytes:
    b = name.encode() if isinstance(name, str) else bytes(name)
    if b"\0" in b:
        # The C side would see a shorter, different name.
        raise ValueError("embedded null byte in registry name")
    return b


def unlink(name: Union[str, bytes]) -> None:
    """Remove the registry's name; processes attached keep working.

    Raises FileNotFoundError when no registry has that name.
    """
    rc = _lib.connreg_unlink(_name(name))
    if rc:
        raise _oserror(rc, name if isinstance(name, str) else name.decode(errors="replace"))


@dataclasses.dataclass(frozen=True)
class Stats:
    """A snapshot of a registry's counters (``connreg_stats_t``)."""

    layout_version: int
    capacity: int  #: configured live-id limit
    live: int  #: live ids
    free: int  #: entries ready for use
    retired: int  #: entries waiting for (or past) a grace period
    tombstones: int  #: index slots freed by unregister, reusable
    epoch: int  #: current grace-period epoch
    safe_epoch: int  #: entries retired before this epoch are reusable
    readers: int  #: reader slots claimed by threads
    max_probe: int  #: most buckets any lookup may visit
    entries: int  #: entry pool size (capacity + slack)
    buckets: int  #: index buckets
    segment_size: int  #: bytes
    key_max: int
    max_threads: int  #: reader slots
    flags: int  #: creation flags (1: transport_is_pid)
    writer_eagain: int  #: writer calls that returned EAGAIN, summed over processes
    slots_recovered: int  #: reader slots of dead threads taken back
    grace_periods: int  #: grace periods completed

    @property
    def transport_is_pid(self) -> bool:
        return bool(self.flags & _lib.CONNREG_TRANSPORT_IS_PID)


_STATS_FIELDS = [f.name for f in dataclasses.fields(Stats)]


@dataclasses.dataclass(frozen=True)
class Reader:
    """A reader slot in use (``connreg_reader_t``)."""

    slot: int
    pid: int  #: process that owns it
    tid: int  #: thread that claimed it (informational)
    alive: bool  #: False: the owner has exited; the slot awaits recovery
    epoch: int  #: 0: not inside a lookup; else the epoch it entered at


class Registry:
    """A handle on a registry segment; a context manager that closes it.

    Make one with :meth:`create`, :meth:`open` or :meth:`open_or_create`.
    """

    __slots__ = ("_h", "_name", "_created", "__weakref__")
    _h: Any  # connreg_t * (cdata); ffi.NULL once closed
    _name: str
    _created: bool

    def __init__(self) -> None:
        raise TypeError("use Registry.create(), Registry.open() or Registry.open_or_create()")

    @classmethod
    def _attach(cls, h: object, name: str, created: bool) -> "Registry":
        self = object.__new__(cls)
        self._h = h
        self._name = name
        self._created = created
        return self

    @staticmethod
    def _config(capacity: int, key_max: int, mode: int, max_threads: int,
                transport_is_pid: bool) -> object:
        cfg = _ffi.new("connreg_config_t *")
        cfg.size = _ffi.sizeof("connreg_config_t")
        cfg.capacity = capacity
        cfg.key_max = key_max
        cfg.mode = mode
        cfg.max_threads = max_threads
        cfg.flags = _lib.CONNREG_TRANSPORT_IS_PID if transport_is_pid else 0
        return cfg

    @classmethod
    def create(cls, name: Union[str, bytes], capacity: int, *, key_max: int = 0, mode: int = 0,
               max_threads: int = 0, transport_is_pid: bool = False) -> "Registry":
        """Create a new registry called ``name`` and attach to it.

        ``name`` is "/" then 1..200 characters of [A-Za-z0-9._-]. ``capacity``
        is the number of live ids it holds; ``key_max`` the longest id in bytes
        (0: 64); ``mode`` the segment's permission bits (0: 0o600);
        ``max_threads`` the reader slots, i.e. threads attached at once over
        every process (0: 512). With ``transport_is_pid`` the low 32 bits of
        each transport are a pid, and :meth:`reap` removes ids whose process
        died. Raises FileExistsError if the name is taken.
        """
        cfg = cls._config(capacity, key_max, mode, max_threads, transport_is_pid)
        out = _ffi.new("connreg_t **")
        rc = _lib.connreg_create(_name(name), cfg, out)
        if rc:
            raise _oserror(rc, str(name))
        return cls._attach(out[0], str(name), True)

    @classmethod
    def open(cls, name: Union[str, bytes]) -> "Registry":
        """Attach to an existing registry; FileNotFoundError if there is none."""
        out = _ffi.new("connreg_t **")
        rc = _lib.connreg_open(_name(name), out)
        if rc:
            raise _oserror(rc, str(name))
        return cls._attach(out[0], str(name), False)

    @classmethod
    def open_or_create(cls, name: Union[str, bytes], capacity: int, *, key_max: int = 0,
                       mode: int = 0, max_threads: int = 0,
                       transport_is_pid: bool = False) -> "Registry":
        """Create the registry if it does not exist, else open it.

        :attr:`created` tells which. An existing registry is opened even if
        its configuration differs from the one given.
        """
        cfg = cls._config(capacity, key_max, mode, max_threads, transport_is_pid)
        out = _ffi.new("connreg_t **")
        created = _ffi.new("int *")
        rc = _lib.connreg_open_or_create(_name(name), cfg, out, created)
        if rc:
            raise _oserror(rc, str(name))
        return cls._attach(out[0], str(name), bool(created[0]))

    # -- life cycle ---------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def created(self) -> bool:
        """True when this handle's create/open_or_create call created the registry."""
        return self._created

    @property
    def closed(self) -> bool:
        return bool(self._h == _NULL)

    def close(self) -> None:
        """Detach (idempotent). No other thread may be inside a call on this handle."""
        h = self._h
        if h != _NULL:
            self._h = _NULL
            _close(h)

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except AttributeError:  # __init__ refused: nothing was opened
            pass

    def __repr__(self) -> str:
        return "<connreg.Registry %r%s>" % (self._name, " closed" if self.closed else "")

    def __reduce__(self) -> NoReturn:
        raise TypeError("a connreg.Registry cannot be pickled: pass its name, "
                        "and open it in the other process")

    def _fail(self, rc: int) -> Exception:
        if self._h == _NULL:
            return ValueError("operation on a closed connreg.Registry")
        return _oserror(rc)

    # -- calls ----------------------------------------------------------------

    def register(self, id: Id, transport: int) -> None:
        """Insert or update: afterwards lookups of ``id`` return ``transport``.

        OSError ENOSPC when a new id would exceed the capacity, ENAMETOOLONG
        when the id is longer than key_max, EINVAL for an empty id;
        BlockingIOError (EAGAIN) when reclamation is held back by a stopped
        reader.
        """
        if type(id) is not bytes:
            id = _id(id)
        rc = _register(self._h, id, len(id), transport)
        if rc:
            raise self._fail(rc)

    def get(self, id: Id, default: Optional[_T] = None) -> Union[int, _T, None]:
        """The id's transport, or ``default`` when it is not registered (wait-free)."""
        if type(id) is not bytes:
            id = _id(id)
        t = _crpy_get(self._h, id, len(id))
        if t != _SENTINEL:
            return t
        rc = _crpy_last_rc()
        if rc == 0:
            return t
        if rc == _ENOENT:
            return default
        raise self._fail(rc)

    def __getitem__(self, id: Id) -> int:
        if type(id) is not bytes:
            id = _id(id)
        t = _crpy_get(self._h, id, len(id))
        if t != _SENTINEL:
            return t
        rc = _crpy_last_rc()
        if rc == 0:
            return t
        if rc == _ENOENT:
            raise KeyError(id)
        raise self._fail(rc)

    def __contains__(self, id: Id) -> bool:
        if type(id) is not bytes:
            id = _id(id)
        if _crpy_get(self._h, id, len(id)) != _SENTINEL:
            return True
        rc = _crpy_last_rc()
        if rc == 0:
            return True
        if rc == _ENOENT:
            return False
        raise self._fail(rc)

    def update(self, id: Id, transport: int) -> None:
        """Re-point a registered id; KeyError when it is not registered."""
        if type(id) is not bytes:
            id = _id(id)
        rc = _update(self._h, id, len(id), transport)
        if rc:
            if rc == _ENOENT and self._h != _NULL:
                raise KeyError(id)
            raise self._fail(rc)

    def cas(self, id: Id, expected: int, desired: int) -> bool:
        """Set the transport to ``desired`` only if it is still ``expected``.

        Returns True if it was swapped, False if the id holds another
        transport. KeyError when the id is not registered; BlockingIOError
        (EAGAIN) when reclamation is held back by a stopped reader.
        """
        id = _id(id)
        cur = _ffi.new("uint64_t *")
        rc = _lib.connreg_cas_transport(self._h, id, len(id), expected, desired, cur)
        if rc == 0:
            return True
        # -EAGAIN with *current != expected: another transport is there. With
        # *current == expected it is a stalled reclamation: an error.
        if rc == _EAGAIN and cur[0] != expected:
            return False
        if rc == _ENOENT and self._h != _NULL:
            raise KeyError(id)
        raise self._fail(rc)

    def unregister(self, id: Id) -> None:
        """Remove the id; no error when it is not registered."""
        if type(id) is not bytes:
            id = _id(id)
        rc = _unregister(self._h, id, len(id))
        if rc:
            raise self._fail(rc)

    def wait(self, id: Id, seen: int, timeout: Optional[float] = None) -> int:
        """Block until ``id`` is registered with a transport other than ``seen``.

        Returns that transport. ``timeout`` in seconds (None: forever; 0: just
        check); TimeoutError when it passes first. A change made by any
        process wakes the waiter. Ctrl-C interrupts the wait (KeyboardInterrupt
        within about 0.1 s), as does any signal handler that raises.
        """
        id = _id(id)
        if timeout is not None and not timeout >= 0:
            raise ValueError("timeout must be None or >= 0")
        out = _ffi.new("uint64_t *")
        deadline = None if timeout is None else _time.monotonic() + timeout
        wait = _lib.connreg_wait_transport
        while True:
            if deadline is None:
                ms = _WAIT_SLICE_MS
            else:
                left = deadline - _time.monotonic()
                ms = min(_WAIT_SLICE_MS, max(0, _math.ceil(left * 1000)))
            rc = wait(self._h, id, len(id), seen, out, ms)
            if rc == 0:
                transport: int = out[0]
                return transport
            if rc != _ETIMEDOUT:
                raise self._fail(rc)
            if deadline is not None and ms < _WAIT_SLICE_MS and _time.monotonic() >= deadline:
                raise _oserror(rc)
            # Back in the interpreter between slices: pending signal handlers
            # run here (KeyboardInterrupt propagates out of the loop).

    def get_many(self, ids: Iterable[Id], default: Optional[_T] = None) -> List[Union[int, _T, None]]:
        """Look up many ids in one call, overlapping their cache misses.

        Returns a list with each id's transport, or ``default`` where it is
        not registered. Each lookup is linearizable on its own.
        """
        blobs = [id if type(id) is bytes else _id(id) for id in ids]
        n = len(blobs)
        if n == 0:
            return []
        out = _ffi.new("uint64_t[]", n)
        rcs = _ffi.new("int[]", n)
        misses = _lib.crpy_get_bulk(self._h, n, b"".join(blobs),
                                    _ffi.new("size_t[]", list(map(len, blobs))), out, rcs)
        if misses < 0:
            raise self._fail(misses)
        result: List[Union[int, _T, None]] = _ffi.unpack(out, n)
        if misses:
            for i, r in enumerate(_ffi.unpack(rcs, n)):
                if r:
                    result[i] = default
        return result

    def items(self) -> List[Tuple[bytes, int]]:
        """Every live id and its transport, gathered by one walk (connreg_foreach).

        The walk runs while writers run: an id registered throughout appears
        once; an id added or removed meanwhile may or may not.
        """
        meta = _ffi.new("crpy_buf *")
        blob = _ffi.new("crpy_buf *")
        try:
            rc = _lib.crpy_foreach(self._h, meta, blob)
            if rc:
                raise self._fail(rc)
            m = _ffi.unpack(_ffi.cast("uint64_t *", meta.data), meta.len // 8) if meta.len else []
            ids = _ffi.unpack(blob.data, blob.len) if blob.len else b""
        finally:
            _lib.crpy_buf_free(meta)
            _lib.crpy_buf_free(blob)
        lens = m[1::2]
        ends = list(_accumulate(lens))
        return list(zip([ids[e - n:e] for e, n in zip(ends, lens)], m[0::2]))

    def __iter__(self) -> Iterator[Tuple[bytes, int]]:
        """Iterate over ``(id, transport)`` pairs: a snapshot taken by :meth:`items`."""
        return iter(self.items())

    def __len__(self) -> int:
        """Live ids."""
        return self.stats().live

    def stats(self) -> Stats:
        st = _ffi.new("connreg_stats_t *")
        st.size = _ffi.sizeof("connreg_stats_t")
        rc = _lib.connreg_stats(self._h, st)
        if rc:
            raise self._fail(rc)
        return Stats(**{f: getattr(st, f) for f in _STATS_FIELDS})

    def reap(self) -> int:
        """Unregister ids whose transport process died; returns how many.

        Only for registries created with ``transport_is_pid=True`` (else
        OSError EOPNOTSUPP).
        """
        removed = _ffi.new("uint64_t *")
        rc = _lib.connreg_reap(self._h, removed)
        if rc:
            raise self._fail(rc)
        n: int = removed[0]
        return n

    def readers(self) -> List[Reader]:
        """The reader slots in use, over every attached process."""
        buf = _ffi.new("crpy_buf *")
        try:
            rc = _lib.crpy_readers(self._h, buf)
            if rc:
                raise self._fail(rc)
            n = buf.len // _ffi.sizeof("connreg_reader_t")
            rs = _ffi.cast("connreg_reader_t *", buf.data)
            return [Reader(r.slot, r.pid, r.tid, bool(r.alive), r.epoch)
                    for r in (rs[i] for i in range(n))]
        finally:
            _lib.crpy_buf_free(buf)

    def check(self) -> List[str]:
        """Verify the segment's invariants; returns the problems found (empty: sound).

        Exact when no writer runs meanwhile.
        """
        buf = _ffi.new("crpy_buf *")
        try:
            rc = _lib.crpy_check(self._h, buf)
            if rc < 0:
                raise self._fail(rc)
            data = _ffi.unpack(buf.data, buf.len) if buf.len else b""
        finally:
            _lib.crpy_buf_free(buf)
        problems = [p.decode(errors="replace") for p in data.split(b"\0")[:-1]]
        if rc and not problems:  # reported by count only
            problems = ["%d problem(s)" % rc]
        return problems
