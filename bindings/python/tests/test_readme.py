"""The README's Python example runs as written (in a fresh interpreter)."""
import os
import subprocess
import sys

from conftest import REPO, segment_path

MARK = "<!-- tested by bindings/python/tests/test_readme.py -->"


def readme_example():
    lines = open(os.path.join(REPO, "README.md"), encoding="utf-8").read().splitlines()
    start = lines.index(MARK)
    fence = next(i for i in range(start, len(lines)) if lines[i].startswith("```python"))
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
    return "\n".join(lines[fence + 1:end]) + "\n"


def test_readme_python_example_runs():
    code = readme_example()
    assert "connreg.Registry" in code
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    stdout, stderr = p.communicate(timeout=30)
    assert p.returncode == 0, stderr
    out = stdout.splitlines()
    assert out[0] == "{b'FIX.4.4:ACME->EXCH': 8194} 1"
    assert out[1].startswith("ETIMEDOUT:")
    # It unlinks what it created.
    assert not os.path.exists(segment_path("/example-%d" % p.pid))
