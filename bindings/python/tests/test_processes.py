"""A registry shared with other processes: Python ("spawn"), the C CLI, a
fork() child; signals; permissions."""
import errno
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest

import children
import connreg

HERE = os.path.dirname(os.path.abspath(__file__))


def test_shared_with_a_spawned_python_process(name):
    ctx = multiprocessing.get_context("spawn")
    ready, go, result = ctx.Event(), ctx.Event(), ctx.Queue()
    with connreg.Registry.create(name, capacity=16) as reg:
        reg.register(b"parent-id", 1)
        p = ctx.Process(target=children.spawn_peer, args=(name, ready, go, result))
        p.start()
        try:
            assert ready.wait(30), "the spawned process did not open the registry"
            assert reg[b"child-id"] == 2  # its write, seen here
            go.set()
            # Its update wakes our wait (a futex word in the segment).
            assert reg.wait(b"parent-id", 1, timeout=10) == 99
            assert result.get(timeout=10) == ("ok", [(b"parent-id", 1)], 2)
        finally:
            p.join(10)
            if p.is_alive():
                p.kill()
        assert p.exitcode == 0
        assert reg.check() == []


def _cli(cli, *args, check=True):
    return subprocess.run([cli, *args], capture_output=True, text=True, timeout=20, check=check)


def test_shared_with_the_c_cli(name, cli):
    with connreg.Registry.create(name, capacity=16, key_max=16) as reg:
        # C writes, Python reads.
        _cli(cli, "register", name, "from-c", "12345")
        assert reg["from-c"] == 12345
        _cli(cli, "update", name, "from-c", str(2**64 - 1))
        assert reg.get(b"from-c") == 2**64 - 1
        # Python writes, C reads: text and binary ids.
        reg.register("from-py", 7)
        reg.register(b"\x00\xff", 0)
        assert _cli(cli, "get", name, "from-py").stdout.strip() == "7"
        assert _cli(cli, "get", name, "0x00ff").stdout.strip() == "0"
        listed = _cli(cli, "list", name).stdout
        assert "from-py" in listed and "from-c" in listed
        # C cas and unregister.
        assert _cli(cli, "cas", name, "from-py", "8", "9", check=False).returncode == 1
        _cli(cli, "cas", name, "from-py", "7", "9")
        assert reg["from-py"] == 9
        _cli(cli, "unregister", name, "from-py")
        assert "from-py" not in reg
        assert _cli(cli, "get", name, "from-py", check=False).returncode == 1
        assert _cli(cli, "check", name).returncode == 0


def test_wait_woken_by_a_c_process(name, cli):
    with connreg.Registry.create(name, capacity=4) as reg:
        reg.register("k", 1)
        p = subprocess.Popen(["sh", "-c", 'sleep 0.2; exec "$0" update "$1" k 7', cli, name])
        try:
            t0 = time.monotonic()
            assert reg.wait("k", 1, timeout=10) == 7
            assert time.monotonic() - t0 < 5
        finally:
            assert p.wait(10) == 0


def _run_in_fork(child):
    """Run child() in a fork child; return its exit status (0: passed)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = child()
        except BaseException as e:  # the exit status reports it
            os.write(2, ("fork child: %r\n" % (e,)).encode())
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_handle_used_after_fork_raises_child_process_error(reg):
    reg.register("parent", 1)
    readers_before = sorted((r.pid, r.slot) for r in reg.readers())

    def child():
        calls = [lambda: reg.get("parent"), lambda: reg["parent"], lambda: "parent" in reg,
                 lambda: reg.register("x", 1), lambda: reg.update("parent", 2),
                 lambda: reg.cas("parent", 1, 2), lambda: reg.unregister("parent"),
                 lambda: reg.wait("parent", 0, timeout=0), lambda: reg.get_many(["parent"]),
                 lambda: list(reg), reg.stats, reg.readers, reg.check]
        for call in calls:
            try:
                call()
                return 10
            except ChildProcessError as e:
                if e.errno != errno.ECHILD or "fork" not in e.strerror:
                    return 11
        # The child opens its own handle, which works.
        with connreg.Registry.open(reg.name) as mine:
            if mine["parent"] != 1:
                return 12
            mine.register("child", 2)
        reg.close()  # closing the inherited copy leaves the parent's slots alone
        return 0

    assert _run_in_fork(child) == 0
    # The parent's handle is untouched by the child.
    assert reg["child"] == 2
    reg.update("parent", 3)
    assert reg["parent"] == 3
    assert sorted((r.pid, r.slot) for r in reg.readers()
                  if r.pid == os.getpid()) == [x for x in readers_before if x[0] == os.getpid()]
    assert reg.check() == []


def test_ctrl_c_interrupts_a_wait_without_timeout(name):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    with connreg.Registry.create(name, capacity=4):
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "children.py"), name],
                             stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert p.stdout.readline().strip() == "waiting"
            time.sleep(0.3)  # well inside connreg_wait_transport
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            assert p.wait(10) == 0
            took = time.monotonic() - t0
            assert p.stdout.read().strip() == "interrupted"
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert took < 2.0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to another uid")
def test_open_without_permission_is_permission_error(name):
    with connreg.Registry.create(name, capacity=4, mode=0o600):
        def child():
            os.setgid(65534)
            os.setuid(65534)
            try:
                connreg.Registry.open(name)
            except PermissionError as e:
                return 0 if e.errno == errno.EACCES and e.filename == name else 21
            return 20

        assert _run_in_fork(child) == 0
