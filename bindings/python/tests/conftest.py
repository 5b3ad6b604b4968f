"""Shared fixtures for the connreg Python binding tests.

The package under test is whatever `import connreg` finds: tools/setup.sh
puts the copy built by build_ffi.py on PYTHONPATH. The connreg CLI (a C
process) is $CONNREG_CLI, else build/connreg in the repository.
"""
import itertools
import os

import pytest

import connreg

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_seq = itertools.count()


def unique_name(tag="t"):
    return "/connreg-py-%s-%d-%d" % (tag, os.getpid(), next(_seq))


def segment_path(name):
    """Where the segment of registry `name` lives (CONNREG_SHM_DIR or /dev/shm)."""
    d = os.environ.get("CONNREG_SHM_DIR", "")
    return (d if d.startswith("/") else "/dev/shm") + name


def _unlink_quietly(name):
    try:
        connreg.unlink(name)
    except FileNotFoundError:
        pass


@pytest.fixture
def name():
    """A registry name no other test or run uses; unlinked afterwards."""
    n = unique_name()
    yield n
    _unlink_quietly(n)


@pytest.fixture
def reg(name):
    """A fresh registry: capacity 64, key_max 32."""
    with connreg.Registry.create(name, capacity=64, key_max=32) as r:
        yield r


@pytest.fixture(scope="session")
def cli():
    path = os.environ.get("CONNREG_CLI") or os.path.join(REPO, "build", "connreg")
    if not os.access(path, os.X_OK):
        pytest.fail("the connreg CLI is needed: build it (build/connreg) or set CONNREG_CLI; "
                    "not found at " + path)
    return path
