"""The padding modes other than zeros (``Conv2D(padding_mode=...)``), as PyTorch pads.

A convolution with ``padding_mode`` "reflect", "replicate" or "circular" is the
zero-padding convolution of an unpadded geometry applied to a padded copy of its input;
its input gradient is the copy's gradient folded back (each border element's gradient
added to the input element it copies). Per axis, padded position ``i`` (from ``-before``
to ``size + after - 1``) copies input index:

- reflect: ``i`` mirrored at the edges without repeating them (``-1`` copies ``1``);
- replicate: ``i`` clamped to the edge;
- circular: ``i`` modulo ``size``.

The pads arrive checked against the input (``cynet._geometry.check_padding_mode``).
"""
from functools import lru_cache

import numpy as np

from .kernels import pad as _pad
from .threads import threads_for
from .workspace import allocate


@lru_cache(maxsize=256)
def index_map(size, before, after, mode):
    """The input index each padded position copies, as a read-only int64 array."""
    i = np.arange(-before, size + after, dtype=np.int64)
    if mode == "reflect":
        i = np.abs(i)
        i = np.where(i >= size, 2 * (size - 1) - i, i)
    elif mode == "replicate":
        i = np.clip(i, 0, size - 1)
    elif mode == "circular":
        i = i % size
    else:
        raise ValueError(f"no index map for padding_mode {mode!r}")
    i.setflags(write=False)
    return i


def _maps(geo):
    return (index_map(geo.H, geo.pt, geo.pb, geo.padding_mode),
            index_map(geo.W, geo.pl, geo.pr, geo.padding_mode))


def pad(x, geo):
    """A padded copy of ``x`` (``geo.in_shape``), shaped ``geo.unpadded.in_shape``."""
    rows, cols = _maps(geo)
    padded = geo.unpadded
    xp = allocate(padded.in_shape, x.dtype, "the padded input", "padding")
    _pad.gather(x.reshape(-1, geo.H, geo.W), xp.reshape(-1, padded.H, padded.W), rows, cols,
                threads_for(xp.size))
    return xp


def fold(grad_padded, geo):
    """The gradient of :func:`pad`: ``grad_padded`` (``geo.unpadded.in_shape``) summed
    back onto the elements of ``geo.in_shape`` each border element copies."""
    rows, cols = _maps(geo)
    padded = geo.unpadded
    gx = allocate(geo.in_shape, grad_padded.dtype, "the input gradient", "x")
    _pad.scatter_add(grad_padded.reshape(-1, padded.H, padded.W), gx.reshape(-1, geo.H, geo.W),
                     rows, cols, threads_for(grad_padded.size))
    return gx
