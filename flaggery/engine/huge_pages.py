"""Huge pages for the subject index's largest array: a lookup's address translation cached.

A dense slot column of ten million subjects is 20 MB: 5,000 pages of 4 KiB, far more than a
core's TLB holds, so a random lookup pays a page walk (two-dimensional under a hypervisor)
besides the cache line it reads. Backed by transparent huge pages of 2 MiB it is 10 pages,
all in the TLB (issue 25, goal 6: `ev.variants` against a dict at ten million).

Linux only, and only where transparent huge pages are enabled ("always" or "madvise" in
/sys/kernel/mm/transparent_hugepage/enabled): anywhere else, or when the kernel refuses,
nothing happens and lookups are as fast as before. Only the 2 MiB-aligned stretches wholly
inside the array's own buffer are advised, so no other allocation is touched; the contents
never change.
"""

from __future__ import annotations

import ctypes
import sys
from array import array
from collections.abc import Callable
from functools import cache

__all__ = ["HUGE_PAGE_BYTES", "MIN_BYTES", "prefer_huge_pages"]

HUGE_PAGE_BYTES = 2 << 20
"""The size of an x86-64 (and default arm64) transparent huge page."""

MIN_BYTES = 2 * HUGE_PAGE_BYTES
"""Arrays smaller than this are left alone: they span too few pages for the TLB to matter."""

_MADV_HUGEPAGE = 14  # linux/mman.h: back this range with huge pages when possible
_MADV_COLLAPSE = 25  # Linux 6.1+: do it now, synchronously (a copy of the range)

_Madvise = Callable[[int, int, int], int]


def prefer_huge_pages(column: array[int], *, now: bool) -> bool:
    """Ask the kernel to back `column`'s buffer with huge pages; True if it accepted.

    ``now``: collapse the pages at once (``MADV_COLLAPSE``: about 20 ms for 20 MB, for a
    full build, which takes seconds anyway); otherwise only mark the range, and the kernel's
    khugepaged collapses it in the background (a system call of microseconds, for the
    snapshot swaps on the serving path). Arrays below `MIN_BYTES` and platforms without
    ``madvise`` return False without a system call.
    """
    address, length = column.buffer_info()
    size = length * column.itemsize
    if size < MIN_BYTES:
        return False
    madvise = _libc_madvise()
    if madvise is None:
        return False
    start = -(-address // HUGE_PAGE_BYTES) * HUGE_PAGE_BYTES
    end = (address + size) // HUGE_PAGE_BYTES * HUGE_PAGE_BYTES
    if madvise(start, end - start, _MADV_HUGEPAGE) != 0:
        return False
    return not now or madvise(start, end - start, _MADV_COLLAPSE) == 0


@cache
def _libc_madvise() -> _Madvise | None:
    """libc's madvise(2), loaded once; None off Linux or without it."""
    if sys.platform != "linux":
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    madvise: _Madvise = function
    return madvise
