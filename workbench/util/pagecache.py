"""The page cache of a set of files: how much of them is resident, and dropping it (no root needed).

``drop`` writes back each file's dirty pages and calls ``posix_fadvise(POSIX_FADV_DONTNEED)`` on the
whole file, which asks the kernel to evict its pages; ``resident`` maps each file and asks
``mincore`` which pages are in memory, so a benchmark records the cache state it really started
from. Pages mapped by another process may stay (``resident`` then shows it). Standard library
only: this file's source is also run on cluster nodes (``workbench.cluster.pagecache``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import sys
from collections.abc import Iterable

PROT_READ, MAP_SHARED = mmap.PROT_READ, mmap.MAP_SHARED


class CacheControlUnavailable(OSError):
    """This platform cannot drop or inspect a file's pages (no posix_fadvise or mincore)."""


def can_drop() -> str | None:
    """None when ``drop`` works here, else why not."""
    if not hasattr(os, "posix_fadvise"):
        return f"posix_fadvise is not available on {sys.platform}"
    return None


def drop(paths: Iterable[str | os.PathLike[str]]) -> int:
    """Evict each file's pages from the page cache; returns how many files were advised."""
    why = can_drop()
    if why:
        raise CacheControlUnavailable(why)
    count = 0
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)  # dirty pages cannot be evicted: write them back first (a no-op when clean)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            count += 1
        finally:
            os.close(fd)
    return count


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    if not hasattr(libc, "mincore"):
        raise CacheControlUnavailable(f"mincore is not available on {sys.platform}")
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
    return libc


def resident(paths: Iterable[str | os.PathLike[str]]) -> tuple[int, int]:
    """(bytes resident in the page cache, total bytes) over the files, page-exact via ``mincore``."""
    libc = _libc()
    page = mmap.PAGESIZE
    cached = total = 0
    for path in paths:
        size = os.path.getsize(path)
        total += size
        if size == 0:
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            addr = libc.mmap(None, size, PROT_READ, MAP_SHARED, fd, 0)
            if addr in (None, ctypes.c_void_p(-1).value):
                raise OSError(ctypes.get_errno(), f"mmap {path}")
            try:
                pages = (size + page - 1) // page
                vec = (ctypes.c_ubyte * pages)()
                if libc.mincore(addr, size, vec) != 0:
                    raise OSError(ctypes.get_errno(), f"mincore {path}")
                in_core = sum(v & 1 for v in vec)
            finally:
                libc.munmap(addr, size)
        finally:
            os.close(fd)
        cached += min(in_core * page, size)
    return cached, total


def resident_fraction(paths: Iterable[str | os.PathLike[str]]) -> float:
    """Share of the files' bytes in the page cache (0.0 for no bytes)."""
    cached, total = resident(list(paths))
    return cached / total if total else 0.0
