"""The package is typed (py.typed, inline annotations, the _native stub):
mypy --strict accepts it, and checks a caller's use of it."""
import os
import subprocess
import sys

import pytest

import connreg

pytest.importorskip("mypy")  # Debian python3-mypy; tools/setup.sh installs it

USAGE = '''
import connreg

with connreg.Registry.open_or_create("/x", capacity=10) as reg:
    reveal_type(reg.get(b"a"))
    reveal_type(reg["a"])
    reveal_type(reg.stats().live)
    reveal_type(list(reg))
    reg.register("a", "not a transport")
'''


def _mypy(*args, cwd):
    pkg_parent = os.path.dirname(os.path.dirname(connreg.__file__))
    env = dict(os.environ, PYTHONPATH=pkg_parent, MYPY_CACHE_DIR=os.path.join(cwd, ".mypy"))
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *args],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_package_passes_mypy_strict(tmp_path):
    p = _mypy("-p", "connreg", cwd=str(tmp_path))
    assert p.returncode == 0, p.stdout + p.stderr


def test_callers_are_checked_against_the_annotations(tmp_path):
    (tmp_path / "usage.py").write_text(USAGE)
    out = _mypy("usage.py", cwd=str(tmp_path)).stdout
    assert 'Revealed type is "Union[builtins.int, None]"' in out
    assert 'usage.py:6: note: Revealed type is "builtins.int"' in out
    assert 'usage.py:7: note: Revealed type is "builtins.int"' in out
    assert 'Revealed type is "builtins.list[Tuple[builtins.bytes, builtins.int]]"' in out
    assert 'usage.py:9: error: Argument 2 to "register" of "Registry" has incompatible type "str"' in out
