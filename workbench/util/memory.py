"""Handing freed memory back to the operating system.

Allocators keep what a process frees for its next allocation: glibc's heap grows to the largest
result a process built (a many-hit query's payload), and Arrow's pool (mimalloc or jemalloc)
caches its pages. On a small board that memory stays resident, and so counted against the
process, long after the result is gone. ``release_freed_memory`` returns both; it takes about a
millisecond and is called when a shard task or a run's table is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import lru_cache


@lru_cache(maxsize=1)
def _malloc_trim():  # type: ignore[no-untyped-def]
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim  # glibc only (musl has none)
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Return freed heap pages (glibc ``malloc_trim``) and Arrow's unused pool memory to the OS."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    arrow = sys.modules.get("pyarrow")  # only a process that already uses Arrow has a pool to release
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
