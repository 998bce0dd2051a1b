"""Large freed blocks kept for reuse while a pass measures a series (glibc only).

One batch of measures allocates and frees gigabytes of temporaries (for the canonical run, each
copy of the neurons' activations over the 12,769 pairs of 8 checkpoints is 200 MB). glibc's
malloc serves every block above its mmap threshold (at most 32 MB) with a fresh mmap and unmaps
it on free, so each batch page-faults all of its memory in again, and that kernel time was most
of an analysis's wall time. `keeping_freed_memory` raises the mmap and trim thresholds for the
pass (mallopt M_MMAP_THRESHOLD and M_TRIM_THRESHOLD), so large blocks come from the heap and
stay there for the next batch, then sets them to glibc's initial values and hands the heap's free
memory back (malloc_trim). Elsewhere than glibc it does nothing. The numbers are the same either
way: only where the memory comes from changes.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from contextlib import contextmanager

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP = 2**31 - 1
"""The thresholds during a pass (bytes, mallopt's int maximum)."""
_INITIAL = 128 * 1024
"""glibc's initial mmap and trim thresholds (bytes)."""


def _libc():
    """The process's C library when it is glibc (has mallopt and malloc_trim), else None."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


@contextmanager
def keeping_freed_memory() -> Iterator[None]:
    """Within: freed blocks of any size up to 2 GB stay in the heap for reuse. After: glibc's
    initial thresholds (its dynamic mmap threshold stays off) and the free heap trimmed."""
    libc = _libc()
    if libc is None:
        yield
        return
    libc.mallopt(_M_MMAP_THRESHOLD, _KEEP)
    libc.mallopt(_M_TRIM_THRESHOLD, _KEEP)
    try:
        yield
    finally:
        libc.mallopt(_M_MMAP_THRESHOLD, _INITIAL)
        libc.mallopt(_M_TRIM_THRESHOLD, _INITIAL)
        libc.malloc_trim(0)
