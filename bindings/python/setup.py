# The metadata is in pyproject.toml; this file only hands the cffi
# extension (build_ffi.py) to setuptools.
from setuptools import setup

# build_ext always recompiles: the library it links against (and records as
# the run path) may have moved since an earlier build left build/ behind.
setup(cffi_modules=["build_ffi.py:ffibuilder"], options={"build_ext": {"force": True}})
