# The metadata is in pyproject.toml; this file only hands the cffi
# extension (build_ffi.py) to setuptools.
from setuptools import setup

setup(cffi_modules=["build_ffi.py:ffibuilder"])
