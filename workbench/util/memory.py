"""Handing freed memory back to the operating system.

Allocators keep what a process frees for its next allocation: glibc's heap grows to the largest
result a process built (a many-hit query's payload), and Arrow's pool (mimalloc or jemalloc)
caches its pages. On a small board that memory stays resident, and so counted against the
process, long after the result is gone. ``release_freed_memory`` returns both; it takes about a
millisecond and is called when a shard task or a run's table is done. ``unpool_large_blocks``
stops glibc keeping large freed blocks at all, as Dask's ``MALLOC_TRIM_THRESHOLD_`` does for its
workers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import lru_cache


@lru_cache(maxsize=1)
def _glibc():  # type: ignore[no-untyped-def]
    """The C library when it is glibc (``malloc_trim`` and ``mallopt``; musl has neither), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim, libc.mallopt  # noqa: B018 - both present, or AttributeError
        return libc
    except (OSError, AttributeError):
        return None


#: glibc's ``mallopt`` parameter numbers (malloc.h) and the values Dask gives its workers' glibc.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
TRIM_THRESHOLD, MMAP_THRESHOLD = 64 * 1024, 128 * 1024


@lru_cache(maxsize=1)
def unpool_large_blocks() -> bool:
    """Fix glibc's mmap threshold at its 128 KiB default: every larger block (a result payload, a
    table's column) is mapped on its own and unmapped when freed. Left dynamic, glibc raises the
    threshold to the largest block freed so far (up to 32 MiB) and serves the next ones from its
    heap, which then stays as large as the largest result until the next trim: measured, 20-30 MB
    of a session's client after many-hit queries. Once per process; False where glibc is absent."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def release_freed_memory() -> None:
    """Return freed heap pages (glibc ``malloc_trim``) and Arrow's unused pool memory to the OS."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
    arrow = sys.modules.get("pyarrow")  # only a process that already uses Arrow has a pool to release
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
