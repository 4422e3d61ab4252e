"""Scratch buffers reused across kernel calls, per thread, role and dtype.

A fresh multi-megabyte buffer per call would be page-faulted in (and zero-filled) on
every call; these only grow. A buffer's recorded contents let a convolution's backward
reuse the columns its forward left there.
"""
import math
import threading

import numpy as np

from .._args import ArgumentError

_local = threading.local()


def allocate(shape, dtype, what, argument, zeros=False):
    """``np.empty`` (or ``np.zeros``) of ``shape``; an array too large for this machine is
    an ``ArgumentError`` about ``argument`` (the one that made it large) instead of a
    ``MemoryError``."""
    try:
        return (np.zeros if zeros else np.empty)(shape, dtype=dtype)
    except (MemoryError, ValueError) as exc:  # ValueError: "array is too big"
        gib = math.prod(shape) * np.dtype(dtype).itemsize / 2**30
        raise ArgumentError(
            f"cannot allocate {what} of shape {tuple(shape)} ({gib:.3g} GiB): {exc}; "
            f"reduce {argument}", argument) from None


def blame(geo):
    """The argument of a convolution or pooling that makes its buffers large: the padding
    if any, else the dilation, else the input ``x``."""
    pads = (geo.pt, geo.pb, geo.pl, geo.pr) if hasattr(geo, "pt") else geo.sides
    dilation = (geo.dh, geo.dw) if hasattr(geo, "dh") else geo.dilation
    if any(pads):
        return "padding"
    if max(dilation) > 1:
        return "dilation"
    return "x"


def workspace(role, shape, dtype):
    """A C-contiguous array of ``shape``, a view of a reused buffer (contents undefined)."""
    buffers = _local.__dict__.setdefault("buffers", {})
    key = (role, np.dtype(dtype))
    size = math.prod(shape)
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        buf = None
        buffers.pop(key, None)  # free the old buffer before asking for a larger one
        buf = np.empty(size, dtype=dtype)
        buffers[key] = buf
    return buf[:size].reshape(shape)


def set_contents(role, contents):
    """Record what this thread's ``role`` buffer now holds (None: nothing reusable)."""
    _local.__dict__.setdefault("contents", {})[role] = contents


def contents(role):
    """What :func:`set_contents` last recorded for this thread's ``role`` buffer."""
    return _local.__dict__.get("contents", {}).get(role)
