"""Pooling kernels on stacks of planes, with the policy's thread rule.

Arguments arrive checked (``cynet.functional`` or a layer); a kernel's report of an
impossible index becomes a ``ValueError`` naming the arguments. Whether windows without
an input element are allowed is the geometry's decision (``pool_geometry``): where they
are, max pooling gives them -inf and PyTorch's index.
"""
import numpy as np

from .kernels import pool
from .threads import threads_for
from .workspace import allocate, blame


def _planes(a):
    """View an (N, C, H, W) array as (N*C, H, W)."""
    return a.reshape(a.shape[0] * a.shape[1], a.shape[2], a.shape[3])


def max_pool(x, geo, relu=False):
    """``(y, indices)`` of max pooling ``x`` with the geometry ``geo``; with ``relu``,
    of ``max(x, 0)``: the two commute, so the ReLU runs on the pooled output (a quarter
    of the elements for 2x2 windows) instead of a pass over ``x``."""
    N, C = x.shape[:2]
    y = allocate((N, C) + geo.out_hw, x.dtype, "the output", blame(geo))
    indices = allocate(y.shape, np.int64, "the indices", blame(geo))
    if y.size == 0:
        return y, indices
    pool.max_pool_forward(_planes(x), _planes(y), _planes(indices), *geo.kernel, *geo.stride,
                          *geo.top_left, *geo.dilation, threads_for(x.size), relu)
    return y, indices


def max_pool_backward(grad_out, indices, input_shape, relu_output=None):
    """The input gradient of :func:`max_pool`; given ``relu_output``, the ``y`` of a
    ``relu=True`` forward, no gradient passes where it is <= 0. An index past its plane
    (a window without an input element) passes none either; a negative one is refused."""
    N, C, H, W = input_shape
    grad_in = allocate((N, C, H, W), grad_out.dtype, "the input gradient", "input_shape")
    if grad_in.size == 0:
        if indices.size:
            raise ValueError(f"indices point into an empty input of shape {(N, C, H, W)}")
        return grad_in
    P = grad_out.shape[2] * grad_out.shape[3]
    if relu_output is not None:
        relu_output = relu_output.reshape(N * C, P)
    negative = pool.max_pool_backward(grad_out.reshape(N * C, P), indices.reshape(N * C, P),
                                      grad_in.reshape(N * C, H * W), threads_for(grad_in.size),
                                      relu_output)
    if negative:
        raise ValueError(
            f"indices has {negative} negative value(s); an index is a position row * W + col "
            f"in its {H}x{W} input plane (input_shape {(N, C, H, W)}), or past the plane for "
            f"a window without an input element"
        )
    return grad_in


def avg_pool(x, geo, count_include_pad, divisor_override=None):
    """Average pooling; a ``divisor_override`` (a checked non-zero int) divides every
    window's sum instead of its size."""
    y = allocate(x.shape[:2] + geo.out_hw, x.dtype, "the output", blame(geo))
    if y.size:
        pool.avg_pool_forward(_planes(x), _planes(y), *geo.kernel, *geo.stride, *geo.sides,
                              count_include_pad, threads_for(x.size), divisor_override or 0)
    return y


def avg_pool_backward(grad_out, input_shape, geo, count_include_pad, divisor_override=None):
    grad_in = allocate(input_shape, grad_out.dtype, "the input gradient", "input_shape")
    if grad_in.size:
        pool.avg_pool_backward(_planes(grad_out), _planes(grad_in), *geo.kernel, *geo.stride,
                               *geo.sides, count_include_pad, threads_for(grad_in.size),
                               divisor_override or 0)
    return grad_in
