"""Code run in other processes by test_processes.py (importable by "spawn")."""
import signal
import sys

import connreg


def spawn_peer(name, ready, go, result):
    """Open the parent's registry by name, read its ids, add ours, then wake
    the parent's wait by updating the id it waits on."""
    try:
        with connreg.Registry.open(name) as r:
            seen = sorted(r)
            r.register(b"child-id", 2)
            ready.set()
            go.wait(10)
            r.update(b"parent-id", 99)
            result.put(("ok", seen, r.get(b"child-id")))
    except BaseException as e:  # reported to the parent, which fails the test
        result.put(("error", repr(e), None))


def wait_forever(name):
    """Wait with no timeout on an id nobody changes; only SIGINT ends it."""
    # Python leaves SIGINT ignored when it starts with it ignored (a job
    # started with & by a non-interactive shell, as some CI runners do):
    # install the interpreter's own handler, as an interactive run has it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    r = connreg.Registry.open(name)
    print("waiting", flush=True)
    try:
        r.wait("never", 0)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        r.close()
        sys.exit(0)
    sys.exit(3)


if __name__ == "__main__":
    wait_forever(sys.argv[1])
