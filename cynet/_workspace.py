"""Scratch buffers reused across kernel calls.

Allocating a fresh multi-megabyte buffer per call costs page faults every time; these
buffers are kept per thread, per role and per dtype, and only grow.
"""
import threading

import numpy as np

# Elements of the im2col column buffer per chunk: 16 MiB of float32, which measured
# faster than larger chunks (the buffers stay closer to cache).
COL_BUDGET = 4 * 1024 * 1024

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
