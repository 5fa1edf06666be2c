"""Heap settings for the processes that decode and run models track after track.

An inference actor or a shard task allocates and frees the same tens of megabytes for every
track: decoded audio, patch batches, spectrograms. glibc's malloc serves blocks above its mmap
threshold (128 KiB at start, raised as such blocks are freed, up to 32 MiB) with fresh pages
from the kernel, and gives the top of its heap back whenever more than its trim threshold is
free there; either way the next track's buffers are new pages that the kernel must fault in
and zero. On a 2-core AMD EPYC VM that cost half of the LMS front-end's time (the log-mel of
19 patches: 18.8 ms with the defaults, 8.4 ms with the settings below) and a quarter of the
tutorial chord model's (400× → 515× realtime on one core, ``benchmarks/infer_rtf.py``).

:func:`reuse_freed_memory` fixes both thresholds: blocks up to ``mmap_threshold`` come from
the heap and stay there once freed, as long as less than ``trim_threshold`` is free at its
top. Larger blocks (an hour of decoded audio is 300 MiB) are still mapped and unmapped on
their own, so peak memory stays bounded by what one track needs, plus at most
``trim_threshold`` kept for reuse. Other C libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1  # from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (present in glibc only)
    except (OSError, AttributeError):
        return None
    return libc


def reuse_freed_memory(mmap_threshold: int = 64 * 1024**2, trim_threshold: int = 256 * 1024**2) -> bool:
    """Keep freed blocks below ``mmap_threshold`` bytes for reuse in this process; True when set
    (glibc), False where the C library has no such settings."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold))) and \
        bool(libc.mallopt(M_TRIM_THRESHOLD, int(trim_threshold)))
