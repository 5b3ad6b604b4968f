# Type stub for the cffi extension built by build_ffi.py (API mode): `ffi`
# is its cffi.FFI instance, `lib` the C functions and constants declared
# there. Both are dynamic, so they are typed loosely.
from typing import Any

ffi: Any
lib: Any
