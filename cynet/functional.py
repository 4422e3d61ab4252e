"""Convolution and pooling, forward and backward: NumPy in, NumPy out.

The semantics are those of ``torch.nn.functional.conv2d / conv_transpose2d / max_pool2d /
avg_pool2d``: NCHW layout, weights ``(out_channels, in_channels // groups, kh, kw)``
(``(in_channels, out_channels // groups, kh, kw)`` for the transposed convolution), float32 or
float64 (results in the input dtype). Inputs are never modified; results are new
C-contiguous arrays.

This module checks arguments; how each operation runs (which kernels, how many threads,
which workspaces) is the engine's decision (:mod:`cynet.engine.conv`,
:mod:`cynet.engine.conv_transpose`, :mod:`cynet.engine.pool`).
"""
from ._args import (as_bool, as_divisor_override, as_float_array, as_index_array, as_shape4,
                    check_ndim)
from ._geometry import conv_arguments, conv_transpose_arguments, pool_geometry, pool_input
from .engine import conv as _conv, conv_transpose as _conv_transpose, pool as _pool

__all__ = [
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
]


# --------------------------------------------------------------------------- convolution


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros"):
    """2-D cross-correlation of ``x`` (N, C, H, W) with ``weight`` (F, C // groups, kh, kw).

    ``padding`` is an int, an (h, w) pair, a per-side ``((top, bottom), (left, right))``,
    ``"valid"`` or ``"same"`` at any stride (the output is ``ceil(in / stride)`` per axis;
    an odd total padding puts the extra row/column at the bottom/right). ``padding_mode``
    is ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``, as
    ``torch.nn.Conv2d(padding_mode=...)``: reflect pads each side by less than the input's
    extent, circular by at most it. Returns ``y`` of shape (N, F, OH, OW).
    """
    x, weight, bias, _, geo = conv_arguments(x, weight, bias, stride, padding, dilation, groups,
                                             padding_mode=padding_mode)
    return _conv.forward(x, weight, bias, geo)


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1,
                    bias=True, input_grad=True, padding_mode="zeros"):
    """Gradients of :func:`conv2d` given ``grad_out`` = dL/dy.

    Returns ``(grad_x, grad_weight, grad_bias)``; ``grad_bias`` is None when
    ``bias=False`` and ``grad_x`` is None when ``input_grad=False`` (a first layer).
    """
    bias = as_bool(bias, "bias")
    input_grad = as_bool(input_grad, "input_grad")
    x, weight, _, grad_out, geo = conv_arguments(x, weight, None, stride, padding, dilation,
                                                 groups, grad_out=grad_out,
                                                 padding_mode=padding_mode)
    return _conv.backward(grad_out, x, weight, geo, bias, input_grad)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1,
                     groups=1):
    """Transposed convolution of ``x`` (N, C_in, H, W) with ``weight``
    (C_in, C_out // groups, kh, kw), exactly ``torch.nn.functional.conv_transpose2d``:
    the input gradient of the convolution with those arguments.

    Returns ``y`` of shape (N, C_out, Hout, Wout) with, per axis,
    ``Hout = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1``;
    ``padding`` is an int or an (h, w) pair and removes rows and columns from each side,
    ``output_padding`` (smaller than the stride or the dilation) adds them at the
    bottom/right.
    """
    x, weight, bias, _, geo = conv_transpose_arguments(x, weight, bias, stride, padding,
                                                       output_padding, dilation, groups)
    return _conv_transpose.forward(x, weight, bias, geo)


def conv_transpose2d_backward(grad_out, x, weight, stride=1, padding=0, output_padding=0,
                              dilation=1, groups=1, bias=True, input_grad=True):
    """Gradients of :func:`conv_transpose2d` given ``grad_out`` = dL/dy.

    Returns ``(grad_x, grad_weight, grad_bias)``; ``grad_bias`` is None when
    ``bias=False`` and ``grad_x`` is None when ``input_grad=False`` (a first layer).
    """
    bias = as_bool(bias, "bias")
    input_grad = as_bool(input_grad, "input_grad")
    x, weight, _, grad_out, geo = conv_transpose_arguments(
        x, weight, None, stride, padding, output_padding, dilation, groups, grad_out=grad_out)
    return _conv_transpose.backward(grad_out, x, weight, geo, bias, input_grad)


# --------------------------------------------------------------------------- pooling


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling; returns ``(y, indices)``.

    ``indices`` (int64, shaped like ``y``) holds the flat position ``row * W + col`` of
    each maximum within its own input plane. On ties the first maximum wins; NaN
    propagates. ``stride`` defaults to ``kernel_size``; ``padding`` is at most half of it.

    A window that holds no input element (possible with dilation: all its taps in the
    padding or past the input) gives ``-inf`` with PyTorch's index: ``row * W + col`` of
    its first tap at or after 0 along each axis, which lies past the end of a row or of
    the plane (:func:`max_pool2d_backward` passes such a window no gradient when it lies
    past the plane, and adds it at that position, as PyTorch does, when it does not).
    """
    x = pool_input(x)
    ceil_mode = as_bool(ceil_mode, "ceil_mode")
    geo = pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode,
                        empty_windows=True)
    return _pool.max_pool(x, geo)


def max_pool2d_backward(grad_out, indices, input_shape):
    """Gradient of :func:`max_pool2d` wrt its input, of shape ``input_shape``: each
    ``grad_out`` element added at the position its index names in its own plane.

    An index past the plane (a window without an input element) adds nothing; PyTorch's
    backward writes it past the plane, into the next one or past the array. A negative
    index is refused.
    """
    shape = as_shape4(input_shape, "input_shape")
    grad_out = as_float_array(grad_out, "grad_out")
    check_ndim(grad_out, "grad_out", 4, "(N, C, OH, OW)")
    if grad_out.shape[:2] != shape[:2]:
        raise ValueError(
            f"grad_out has shape {grad_out.shape}, which does not fit input_shape {shape}"
        )
    indices = as_index_array(indices, "indices", grad_out.shape)
    return _pool.max_pool_backward(grad_out, indices, shape)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Average pooling. With ``count_include_pad`` the zero padding counts in the mean.

    ``divisor_override`` (PyTorch's): a non-zero int that divides every window's sum
    instead of the window's size, whatever ``count_include_pad`` says.
    """
    x = pool_input(x)
    ceil_mode = as_bool(ceil_mode, "ceil_mode")
    count_include_pad = as_bool(count_include_pad, "count_include_pad")
    divisor_override = as_divisor_override(divisor_override)
    geo = pool_geometry(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    return _pool.avg_pool(x, geo, count_include_pad, divisor_override)


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Gradient of :func:`avg_pool2d` wrt its input, of shape ``input_shape``."""
    shape = as_shape4(input_shape, "input_shape")
    grad_out = as_float_array(grad_out, "grad_out")
    check_ndim(grad_out, "grad_out", 4, "(N, C, OH, OW)")
    ceil_mode = as_bool(ceil_mode, "ceil_mode")
    count_include_pad = as_bool(count_include_pad, "count_include_pad")
    divisor_override = as_divisor_override(divisor_override)
    geo = pool_geometry(shape, kernel_size, stride, padding, 1, ceil_mode, name="input_shape")
    expected = shape[:2] + geo.out_hw
    if grad_out.shape != expected:
        raise ValueError(
            f"grad_out has shape {grad_out.shape}, but the forward output for input_shape "
            f"{shape} has shape {expected}"
        )
    return _pool.avg_pool_backward(grad_out, shape, geo, count_include_pad, divisor_override)
