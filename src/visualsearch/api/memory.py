"""Give freed decode buffers back to the operating system (glibc).

glibc serves big allocations from per-thread arenas once its dynamic mmap
threshold has grown past them, and keeps what is freed there. A server whose
threads each decoded one large image then holds hundreds of megabytes per
thread for good: the abuse benchmark saw 8 bomb decodes leave the server at
3.3 GB after every request had been answered. A fixed threshold of 128 KiB
makes every large buffer its own mapping, unmapped when it is freed (the
same class then peaked at 1.5 GB and came back down).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD_BYTES = 128 * 1024


def return_large_buffers() -> bool:
    """Fix glibc's mmap threshold for this process. False where there is no glibc (nothing to do)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl, macOS: no mallopt, and no per-thread arena growth either
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    if not ok:
        log.warning("mallopt(M_MMAP_THRESHOLD) refused; freed decode buffers may stay in the process")
    return ok
