"""Scratch buffers reused across kernel calls, per thread, role and dtype.

A fresh multi-megabyte buffer per call would be page-faulted in (and zero-filled) on
every call; these only grow. A buffer's recorded contents let a convolution's backward
reuse the columns its forward left there.
"""
import threading

import numpy as np

_local = threading.local()


def workspace(role, shape, dtype):
    """A C-contiguous array of ``shape``, a view of a reused buffer (contents undefined)."""
    buffers = _local.__dict__.setdefault("buffers", {})
    key = (role, np.dtype(dtype))
    size = 1
    for d in shape:
        size *= d
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype=dtype)
        buffers[key] = buf
    return buf[:size].reshape(shape)


def set_contents(role, contents):
    """Record what this thread's ``role`` buffer now holds (None: nothing reusable)."""
    _local.__dict__.setdefault("contents", {})[role] = contents


def contents(role):
    """What :func:`set_contents` last recorded for this thread's ``role`` buffer."""
    return _local.__dict__.get("contents", {}).get(role)
