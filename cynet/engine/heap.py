"""Keep freed memory in the heap while a training or inference loop runs.

Each step allocates and frees the same few megabytes of activations and gradients, and
glibc's malloc hands large freed blocks back to the kernel at once, so the next step
page-faults (and zero-fills) them again (the training benchmark's LeNet-5 epoch).
Inside :func:`retained_heap` blocks up to 32 MiB come from the heap and up to 256 MiB
of free heap is kept. On leaving, the free memory is returned (``malloc_trim``) and
malloc is left where glibc's own adaptive thresholds end up in a program that frees
large blocks; setting a threshold switches that adaptation off for good, so restoring
the 128 KiB start values would make every later large allocation of the process a
fresh mapping.

Only glibc is tuned, and only while the policy's ``retain_heap`` is true (false when
the user tuned malloc through its environment variables or set
``CYNET_MALLOC_TUNING=0``).
"""
import threading
from contextlib import contextmanager

from .policy import current as policy

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3   # glibc's <malloc.h>
MMAP_THRESHOLD = 32 * 1024 * 1024              # the adaptive threshold's ceiling
LOOP_TRIM_THRESHOLD = 256 * 1024 * 1024
AFTER_TRIM_THRESHOLD = 2 * MMAP_THRESHOLD      # glibc's adaptive rule: twice the above


class Glibc:
    """glibc's ``mallopt`` and ``malloc_trim``, or None where the C library is another."""

    _found = False  # not looked up yet

    @classmethod
    def find(cls):
        if cls._found is False:
            cls._found = None
            import ctypes
            import platform

            if platform.libc_ver()[0] == "glibc":
                libc = ctypes.CDLL(None)
                if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim"):
                    cls._found = libc
        return cls._found


class RetainedHeap:
    """The re-entrant, thread-safe switch behind :func:`retained_heap`; ``libc`` is the
    C library to tune (tests give a recording stand-in)."""

    def __init__(self, libc=Glibc.find):
        self._libc = libc
        self._lock = threading.Lock()
        self._depth = 0
        self._tuned = None

    def enter(self):
        with self._lock:
            if self._depth == 0:
                self._tuned = self._libc() if policy().retain_heap else None
                if self._tuned is not None:
                    self._tuned.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                    self._tuned.mallopt(M_TRIM_THRESHOLD, LOOP_TRIM_THRESHOLD)
            self._depth += 1

    def leave(self):
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._tuned is not None:
                self._tuned.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                self._tuned.mallopt(M_TRIM_THRESHOLD, AFTER_TRIM_THRESHOLD)
                self._tuned.malloc_trim(0)
                self._tuned = None

    @contextmanager
    def __call__(self):
        self.enter()
        try:
            yield
        finally:
            self.leave()


#: freed blocks stay in the heap for reuse inside the block (re-entrant, thread-safe)
retained_heap = RetainedHeap()
