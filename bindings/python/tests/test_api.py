"""Every call of the Python binding and its error paths, in one process."""
import errno
import os
import pickle
import threading
import time

import pytest

import connreg
from conftest import segment_path

U64_MAX = 2**64 - 1


# -- create / open / open_or_create / unlink / close ------------------------

def test_create_open_and_share_one_mapping(name):
    with connreg.Registry.create(name, capacity=10) as a:
        assert a.created and a.name == name and not a.closed
        with connreg.Registry.open(name) as b:
            assert not b.created
            a.register(b"conn-1", 7)
            assert b[b"conn-1"] == 7
            b.update("conn-1", 8)
            assert a["conn-1"] == 8


def test_create_taken_name_is_file_exists(reg):
    with pytest.raises(FileExistsError) as ei:
        connreg.Registry.create(reg.name, capacity=4)
    e = ei.value
    assert e.errno == errno.EEXIST
    assert e.strerror == connreg.strerror(-errno.EEXIST)
    assert e.strerror.startswith("EEXIST:")
    assert e.filename == reg.name


def test_open_missing_is_file_not_found(name):
    with pytest.raises(FileNotFoundError) as ei:
        connreg.Registry.open(name)
    assert ei.value.errno == errno.ENOENT
    assert ei.value.filename == name


def test_open_foreign_segment_is_eproto(name):
    # A segment that is not a registry (wrong magic) is refused, not read.
    path = segment_path(name)
    with open(path, "wb") as f:
        f.write(b"\xab" * 65536)
    t0 = time.monotonic()
    with pytest.raises(OSError) as ei:
        connreg.Registry.open(name)
    assert ei.value.errno == errno.EPROTO
    assert ei.value.strerror.startswith("EPROTO:")
    assert type(ei.value) is OSError
    assert time.monotonic() - t0 < (connreg._lib.CONNREG_OPEN_WAIT_MS / 1000.0) + 1.0


@pytest.mark.parametrize("bad", ["no-slash", "/", "/sp ace", "/a/b", "/" + "x" * 201])
def test_bad_names_are_einval(bad):
    with pytest.raises(OSError) as ei:
        connreg.Registry.create(bad, capacity=4)
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(OSError) as ei:
        connreg.Registry.open(bad)
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(OSError) as ei:
        connreg.unlink(bad)
    assert ei.value.errno == errno.EINVAL


def test_name_with_nul_byte_is_refused(name):
    # The C side would see "/x": never open a different registry silently.
    with pytest.raises(ValueError):
        connreg.Registry.create(name + "\0junk", capacity=4)
    with pytest.raises(ValueError):
        connreg.unlink(name + "\0junk")
    with pytest.raises(FileNotFoundError):
        connreg.Registry.open(name)


def test_name_may_be_bytes(name):
    with connreg.Registry.create(name.encode(), capacity=4) as r:
        r.register("a", 1)
    with connreg.Registry.open(name) as r:
        assert r["a"] == 1


@pytest.mark.parametrize("kw", [
    dict(capacity=0),
    dict(capacity=connreg.CAPACITY_LIMIT + 1),
    dict(capacity=4, key_max=connreg.KEY_MAX_LIMIT + 1),
])
def test_bad_config_is_einval(name, kw):
    with pytest.raises(OSError) as ei:
        connreg.Registry.create(name, **kw)
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(FileNotFoundError):
        connreg.Registry.open(name)


def test_negative_or_huge_config_values_are_refused_before_c(name):
    with pytest.raises(OverflowError):
        connreg.Registry.create(name, capacity=-1)
    with pytest.raises(OverflowError):
        connreg.Registry.create(name, capacity=4, key_max=2**32)


def test_config_reaches_the_segment(name):
    with connreg.Registry.create(name, capacity=100, key_max=17, max_threads=8,
                                 mode=0o640) as r:
        st = r.stats()
        assert (st.capacity, st.key_max, st.max_threads) == (100, 17, 8)
        assert not st.transport_is_pid
        assert os.stat(segment_path(name)).st_mode & 0o777 == 0o640


def test_defaults(name):
    with connreg.Registry.create(name, capacity=5) as r:
        st = r.stats()
        assert (st.key_max, st.max_threads) == (64, 512)
        assert os.stat(segment_path(name)).st_mode & 0o777 == 0o600


def test_open_or_create(name):
    with connreg.Registry.open_or_create(name, capacity=8) as a:
        assert a.created
        a.register("x", 1)
        # A different configuration opens the existing registry.
        with connreg.Registry.open_or_create(name, capacity=999, key_max=8) as b:
            assert not b.created
            assert b["x"] == 1
            assert b.stats().capacity == 8


def test_unlink(name):
    r = connreg.Registry.create(name, capacity=4)
    r.register("x", 3)
    connreg.unlink(name)
    with pytest.raises(FileNotFoundError):
        connreg.unlink(name)
    with pytest.raises(FileNotFoundError):
        connreg.Registry.open(name)
    # Attached handles keep working after the name is gone.
    assert r["x"] == 3
    r.register("y", 4)
    assert r["y"] == 4
    r.close()


def test_close_is_idempotent_and_calls_after_close_raise(name):
    r = connreg.Registry.create(name, capacity=4)
    r.register("x", 1)
    r.close()
    r.close()
    assert r.closed
    assert "closed" in repr(r)
    for call in (lambda: r.get("x"), lambda: r["x"], lambda: "x" in r,
                 lambda: r.register("x", 1), lambda: r.update("x", 2),
                 lambda: r.cas("x", 1, 2), lambda: r.unregister("x"),
                 lambda: r.wait("x", 1, timeout=0), lambda: r.get_many(["x"]),
                 lambda: list(r), lambda: len(r), r.stats, r.reap, r.readers, r.check):
        with pytest.raises(ValueError, match="closed"):
            call()


def test_context_manager_closes(name):
    with connreg.Registry.create(name, capacity=4) as r:
        pass
    assert r.closed


def test_constructor_and_pickle_are_refused(reg):
    with pytest.raises(TypeError):
        connreg.Registry()
    with pytest.raises(TypeError, match="name"):
        pickle.dumps(reg)


def test_module_constants():
    assert connreg.VERSION[0] >= 1
    assert connreg.__version__.startswith("%d.%d." % connreg.VERSION)
    assert connreg.KEY_MAX_LIMIT == 4096
    assert connreg.NAME_MAX == 200
    assert connreg.strerror(0).startswith("OK")
    assert connreg.strerror(-errno.ENOSPC).startswith("ENOSPC:")


# -- register / get / [] / in / update / cas / unregister --------------------

def test_str_and_bytes_name_the_same_id(reg):
    reg.register("conn-é", 1)
    assert reg["conn-é".encode()] == 1
    reg.register(bytearray(b"ba"), 2)
    assert reg[memoryview(b"ba")] == 2
    assert reg.get(b"ba") == 2


def test_binary_ids(reg):
    ids = [b"\0", b"\0\0", b"a\0b", b"\xff" * 32]
    for i, k in enumerate(ids):
        reg.register(k, i)
    for i, k in enumerate(ids):
        assert reg[k] == i
    assert sorted(reg) == sorted((k, i) for i, k in enumerate(ids))


def test_every_64_bit_transport_is_valid(reg):
    for t in (0, 1, 2**63, U64_MAX, connreg._SENTINEL, connreg._SENTINEL - 1):
        reg.register("k", t)
        assert reg["k"] == t
        assert reg.get("k", default=-1) == t
        assert "k" in reg
        assert reg.get_many(["k"]) == [t]


def test_transport_out_of_range(reg):
    with pytest.raises(OverflowError):
        reg.register("k", -1)
    with pytest.raises(OverflowError):
        reg.register("k", 2**64)
    with pytest.raises(TypeError):
        reg.register("k", "1")
    assert "k" not in reg


def test_id_types_refused(reg):
    for bad in (1, None, 1.5, ["a"]):
        with pytest.raises(TypeError):
            reg.register(bad, 1)
        with pytest.raises(TypeError):
            reg.get(bad)


def test_get_missing(reg):
    assert reg.get("nope") is None
    assert reg.get("nope", 5) == 5
    assert "nope" not in reg
    with pytest.raises(KeyError) as ei:
        reg["nope"]
    assert ei.value.args == (b"nope",)


def test_register_updates_a_live_id(reg):
    reg.register("k", 1)
    reg.register("k", 2)
    assert reg["k"] == 2
    assert len(reg) == 1


def test_empty_id_is_einval(reg):
    for call in (lambda: reg.register(b"", 1), lambda: reg.get(b""), lambda: reg[""],
                 lambda: b"" in reg, lambda: reg.update("", 1), lambda: reg.cas("", 1, 2),
                 lambda: reg.unregister(""), lambda: reg.wait("", 1, timeout=0),
                 lambda: reg.get_many(["a", ""])):
        with pytest.raises(OSError) as ei:
            call()
        assert ei.value.errno == errno.EINVAL
        assert ei.value.strerror.startswith("EINVAL:")


def test_id_longer_than_key_max_is_enametoolong(reg):
    ok, long = b"x" * 32, b"x" * 33
    reg.register(ok, 1)
    assert reg[ok] == 1
    for call in (lambda: reg.register(long, 1), lambda: reg.get(long), lambda: reg[long],
                 lambda: long in reg, lambda: reg.update(long, 1),
                 lambda: reg.cas(long, 1, 2), lambda: reg.unregister(long),
                 lambda: reg.wait(long, 1, timeout=0), lambda: reg.get_many([ok, long])):
        with pytest.raises(OSError) as ei:
            call()
        assert ei.value.errno == errno.ENAMETOOLONG
        assert type(ei.value) is OSError


def test_full_registry_is_enospc(name):
    with connreg.Registry.create(name, capacity=4) as r:
        for i in range(4):
            r.register("id-%d" % i, i)
        with pytest.raises(OSError) as ei:
            r.register("id-4", 4)
        assert ei.value.errno == errno.ENOSPC
        assert ei.value.strerror.startswith("ENOSPC:")
        r.register("id-0", 100)  # an update is not a new id
        assert r["id-0"] == 100
        r.unregister("id-1")  # a completed unregister frees its place
        r.register("id-4", 4)
        assert len(r) == 4


def test_update(reg):
    with pytest.raises(KeyError):
        reg.update("k", 1)
    assert "k" not in reg
    reg.register("k", 1)
    reg.update("k", 2)
    assert reg["k"] == 2


def test_cas(reg):
    with pytest.raises(KeyError):
        reg.cas("k", 0, 1)
    reg.register("k", 10)
    assert reg.cas("k", 10, 11) is True
    assert reg["k"] == 11
    assert reg.cas("k", 10, 12) is False
    assert reg["k"] == 11
    assert reg.cas(b"k", 11, U64_MAX) is True
    assert reg["k"] == U64_MAX


def test_unregister(reg):
    reg.register("k", 1)
    reg.unregister("k")
    assert "k" not in reg
    reg.unregister("k")  # absent: not an error
    assert len(reg) == 0


# -- wait ------------------------------------------------------------------

def test_wait_returns_at_once_when_already_changed(reg):
    reg.register("k", 5)
    assert reg.wait("k", 4) == 5
    assert reg.wait("k", 4, timeout=0) == 5


def test_wait_timeout(reg):
    reg.register("k", 5)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as ei:
        reg.wait("k", 5, timeout=0.25)
    took = time.monotonic() - t0
    assert ei.value.errno == errno.ETIMEDOUT
    assert 0.24 <= took < 1.5
    with pytest.raises(TimeoutError):
        reg.wait("absent", 0, timeout=0)


def test_wait_bad_timeout(reg):
    for bad in (-1, float("nan")):
        with pytest.raises(ValueError):
            reg.wait("k", 0, timeout=bad)


def test_wait_woken_by_another_thread(reg):
    reg.register("k", 1)
    threading.Timer(0.15, reg.update, ("k", 2)).start()
    t0 = time.monotonic()
    assert reg.wait("k", 1) == 2
    assert time.monotonic() - t0 < 2.0


def test_wait_for_a_new_id(reg):
    threading.Timer(0.15, reg.register, ("late", 9)).start()
    assert reg.wait("late", 0, timeout=5) == 9


def test_the_gil_is_released_inside_a_c_call(reg):
    # One slice of connreg_wait_transport lasting up to 2 s, made from a
    # thread. The main thread must be able to run Python meanwhile and make
    # the change that ends it; with the GIL held it could not, and the wait
    # would time out.
    from connreg import _ffi, _lib
    reg.register("k", 1)
    key = b"k"
    result = {}

    def waiter():
        out = _ffi.new("uint64_t *")
        t0 = time.monotonic()
        started.set()
        result["rc"] = _lib.connreg_wait_transport(reg._h, key, 1, 1, out, 2000)
        result["took"] = time.monotonic() - t0
        result["t"] = out[0]

    started = threading.Event()
    th = threading.Thread(target=waiter)
    th.start()
    started.wait()
    time.sleep(0.2)
    spins = sum(1 for _ in range(10000))  # Python code runs meanwhile
    reg.update("k", 2)
    th.join()
    assert spins == 10000
    assert result["rc"] == 0 and result["t"] == 2
    assert result["took"] < 1.5


# -- get_many / iteration / len --------------------------------------------

def test_get_many(reg):
    reg.register("a", 1)
    reg.register(b"c", 3)
    assert reg.get_many([]) == []
    assert reg.get_many(["a", b"b", "c"]) == [1, None, 3]
    assert reg.get_many(iter(["c", "a"]), default=-1) == [3, 1]
    assert reg.get_many(["b"], default="x") == ["x"]


def test_get_many_more_than_one_chunk(name):
    with connreg.Registry.create(name, capacity=300) as r:
        for i in range(0, 300, 2):
            r.register("id-%d" % i, i * 1000)
        ids = ["id-%d" % i for i in range(300)]
        got = r.get_many(ids)
        assert got == [i * 1000 if i % 2 == 0 else None for i in range(300)]


def test_iteration_and_len(name):
    with connreg.Registry.create(name, capacity=1000) as r:
        assert list(r) == [] and len(r) == 0
        want = {("id-%d" % i).encode(): i for i in range(1000)}
        for k, v in want.items():
            r.register(k, v)
        got = list(r)
        assert len(got) == 1000
        assert dict(got) == want
        assert dict(r.items()) == want
        assert len(r) == 1000
        for i in range(0, 1000, 2):
            r.unregister("id-%d" % i)
        assert dict(r) == {k: v for k, v in want.items() if v % 2}
        assert len(r) == 500


def test_iteration_with_long_and_binary_ids(name):
    with connreg.Registry.create(name, capacity=10, key_max=4096) as r:
        ids = [b"\0" * 4096, b"\xff", bytes(range(256))]
        for i, k in enumerate(ids):
            r.register(k, U64_MAX - i)
        assert sorted(r) == sorted((k, U64_MAX - i) for i, k in enumerate(ids))


# -- stats / reap / readers / check ----------------------------------------

def test_stats(reg):
    st = reg.stats()
    assert isinstance(st, connreg.Stats)
    assert st.live == 0 and st.capacity == 64 and st.key_max == 32
    assert st.layout_version >= 1 and st.entries >= st.capacity
    assert st.segment_size == os.stat(segment_path(reg.name)).st_size
    reg.register("a", 1)
    assert reg.stats().live == 1
    assert reg.stats().readers >= 1
    with pytest.raises(Exception):
        st.live = 5  # frozen


def test_reap_needs_transport_is_pid(reg):
    with pytest.raises(OSError) as ei:
        reg.reap()
    assert ei.value.errno == errno.EOPNOTSUPP


def test_reap_removes_dead_processes(name):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)  # pid is dead (and not yet reused, almost surely)
    with connreg.Registry.create(name, capacity=8, transport_is_pid=True) as r:
        assert r.stats().transport_is_pid
        r.register("dead", pid)
        r.register("alive", os.getpid())
        r.register("no-process", 0)
        assert r.reap() == 1
        assert "dead" not in r
        assert r["alive"] == os.getpid() and r["no-process"] == 0
        assert r.reap() == 0


def test_readers(reg):
    reg.register("a", 1)
    mine = [x for x in reg.readers() if x.pid == os.getpid()]
    assert mine and all(x.alive for x in mine)
    assert all(isinstance(x, connreg.Reader) for x in mine)
    # A second thread takes a second reader slot, given back when it exits.
    before = len(mine)
    seen = []
    th = threading.Thread(target=lambda: (reg.get("a"), seen.append(
        len([x for x in reg.readers() if x.pid == os.getpid()]))))
    th.start()
    th.join()
    assert seen == [before + 1]


def test_check_sound(reg):
    for i in range(50):
        reg.register("id-%d" % i, i)
    for i in range(0, 50, 3):
        reg.unregister("id-%d" % i)
    assert reg.check() == []


# -- threads -----------------------------------------------------------------

def test_threads_share_a_handle(name):
    with connreg.Registry.create(name, capacity=4 * 200) as r:
        errors = []

        def work(t):
            try:
                for i in range(200):
                    k = "t%d-%d" % (t, i)
                    r.register(k, t * 1000 + i)
                    assert r[k] == t * 1000 + i
                for i in range(200):
                    r.update("t%d-%d" % (t, i), i)
            except Exception as e:  # reported below
                errors.append(e)

        ths = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        assert errors == []
        assert len(r) == 800
        assert sorted(v for _, v in r) == sorted(list(range(200)) * 4)
        assert r.check() == []


def test_reader_slots_exhausted_is_eagain(name):
    # max_threads bounds the threads attached at once; one more gets EAGAIN.
    with connreg.Registry.create(name, capacity=4, max_threads=2) as r:
        r.register("a", 1)  # this thread: slot 1
        hold = threading.Event()
        done = threading.Event()

        def holder():
            r.get("a")  # slot 2, held until the thread exits
            done.set()
            hold.wait()

        th = threading.Thread(target=holder)
        th.start()
        done.wait()
        errs = []

        def third():
            try:
                r.get("a")
            except OSError as e:
                errs.append(e)

        t3 = threading.Thread(target=third)
        t3.start()
        t3.join()
        hold.set()
        th.join()
        assert len(errs) == 1 and isinstance(errs[0], BlockingIOError)
        assert errs[0].errno == errno.EAGAIN

