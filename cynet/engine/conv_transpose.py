"""Transposed convolution, computed as the convolution it transposes.

``conv_transpose2d(x, w)`` is the input gradient of the convolution ``geo`` whose output
has ``x``'s shape (``cynet._geometry.conv_transpose_geometry``), so every route of
:mod:`.conv` (pointwise, direct, im2col with col2im) serves each pass:

- forward: that convolution's input gradient, with ``grad_out = x``, the bias added to
  each chunk while it is in cache (or by the direct kernel);
- input gradient: that convolution's forward of ``grad_out``;
- weight gradient: that convolution's weight gradient, with its input ``grad_out`` and
  its output gradient ``x``.

Arguments arrive checked (``cynet._geometry.conv_transpose_arguments``); results are new
arrays.
"""

import numpy as np

from . import conv
from .ops import channel_sums
from .workspace import allocate


def _blame(geo):
    """The argument that makes a transposed convolution's buffers large."""
    if max(geo.sh, geo.sw) > 1:
        return "stride"
    if max(geo.dh, geo.dw) > 1:
        return "dilation"
    return "x"


def forward(x, weight, bias, geo):
    """``y`` (``geo.in_shape``) of the transposed convolution of the checked arrays."""
    y = allocate(geo.in_shape, x.dtype, "the output", _blame(geo))
    if y.size == 0:  # an empty batch
        return y
    with conv.memory_named(geo, _blame(geo), transposed=True):
        return conv.input_gradient(x, weight, geo, y, bias)


def backward(grad_out, x, weight, geo, bias=True, input_grad=True):
    """``(grad_x, grad_weight, grad_bias)`` of the transposed convolution ``geo``;
    ``grad_bias`` is None without ``bias``, ``grad_x`` None without ``input_grad``."""
    gb = None
    if bias:
        gb = channel_sums(grad_out.reshape(geo.N, geo.C, geo.H * geo.W),
                          np.empty(geo.C, dtype=x.dtype))
    with conv.memory_named(geo, _blame(geo), transposed=True):
        gx = None
        if input_grad:
            gx = allocate(geo.out_shape, x.dtype, "the input gradient", "x")
            conv._forward(grad_out, weight, None, geo, y=gx)
        # (the columns the forward just made of grad_out are not reused: it may have
        # taken the direct route, leaving another call's columns of this array)
        _, gw, _ = conv._backward(x, grad_out, weight, geo, False, False, False)
    return gx, gw, gb
