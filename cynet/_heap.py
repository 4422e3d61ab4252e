"""Keep freed memory in the heap while a training or inference loop runs.

Each step allocates and frees the same few megabytes of activations and gradients.
glibc's malloc hands large blocks back to the kernel (``munmap``, or trimming the top of
the heap) as soon as they are freed, so the next step page-faults them in again,
zero-filling every page: measured on LeNet-5 at batch 64, about 950 page faults per
step and a fifth of the epoch's time. Inside :func:`retained_heap` blocks up to 32 MiB
come from the heap and up to 256 MiB of free heap is kept. On leaving, the free memory
is returned (``malloc_trim``) and malloc is left where glibc's own adaptive thresholds
end up in a program that frees large blocks (blocks up to 32 MiB from the heap, 64 MiB
of free heap kept). Setting a threshold switches that adaptation off for good, so
"restoring" the 128 KiB start values would make every later large allocation of the
process, cynet's or another library's, a fresh mapping.

Only glibc is tuned, and not when the user tuned malloc through its environment
variables or sets ``CYNET_MALLOC_TUNING=0``.
"""
import os
import threading
from contextlib import contextmanager

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3   # glibc's <malloc.h>
MMAP_THRESHOLD = 32 * 1024 * 1024              # the adaptive threshold's ceiling
LOOP_TRIM_THRESHOLD = 256 * 1024 * 1024
AFTER_TRIM_THRESHOLD = 2 * MMAP_THRESHOLD      # glibc's adaptive rule: twice the above

_lock = threading.Lock()
_depth = 0
_libc = False  # not looked up yet


def _glibc():
    global _libc
    if _libc is False:
        _libc = None
        user_tuned = any(k.startswith("MALLOC_") and k.endswith("_") for k in os.environ)
        if os.environ.get("CYNET_MALLOC_TUNING", "1") != "0" and not user_tuned:
            import ctypes
            import platform

            if platform.libc_ver()[0] == "glibc":
                libc = ctypes.CDLL(None)
                if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim"):
                    _libc = libc
    return _libc


def _set(mmap_threshold, trim_threshold):
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold)
        libc.mallopt(M_TRIM_THRESHOLD, trim_threshold)


@contextmanager
def retained_heap():
    """Freed blocks stay in the heap for reuse inside the block (re-entrant, thread-safe)."""
    global _depth
    with _lock:
        if _depth == 0:
            _set(MMAP_THRESHOLD, LOOP_TRIM_THRESHOLD)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _set(MMAP_THRESHOLD, AFTER_TRIM_THRESHOLD)
                libc = _glibc()
                if libc is not None:
                    libc.malloc_trim(0)
