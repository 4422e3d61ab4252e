"""Convolution and pooling, forward and backward: NumPy in, NumPy out.

The semantics are those of ``torch.nn.functional.conv2d / max_pool2d / avg_pool2d``:
NCHW layout, weights ``(out_channels, in_channels // groups, kh, kw)``, float32 or
float64 (results in the input dtype). Inputs are never modified; results are new
C-contiguous arrays.

This module checks arguments and allocates outputs; the per-element work runs in the
Cython kernels (``cynet._im2col``, ``cynet._pool``) and the matrix products in numpy's
BLAS, on bounded workspaces that are reused between calls.
"""
import weakref

import numpy as np

from . import _direct, _im2col, _pool
from ._args import (
    as_bool,
    as_float_array,
    as_float_arrays,
    as_index_array,
    as_shape4,
    check_ndim,
)
from ._chunks import chunk_for, run_chunks
from ._geometry import conv_geometry, pool_geometry
from ._threads import get_num_threads, threads_for
from ._workspace import COL_BUDGET, contents, set_contents, workspace

# OpenBLAS (numpy's wheels, x86-64 with AVX-512) runs a product of at most ~1e6
# multiply-adds through dedicated small-matrix kernels. For LeNet's first layer
# (6 x 25 x columns) they are 2-3x faster than the general path at 1 thread, measured:
# weight gradient 81 vs 29 GFLOP/s, forward 94 vs 48, at 6,272 vs 12,544 columns.
SMALL_GEMM = 950_000
MIN_SMALL_GEMM_COLUMNS = 2048
MIN_WEIGHT_GRAD_PIECE = 512

# Direct convolution (cynet._direct: AVX-512, output channels as vector lanes) for
# float32 layers with at least MIN_DIRECT_CHANNELS output channels per group; it needs
# no column matrix and skips the padding rows. Measured against im2col + BLAS at 1
# thread: simple.json's 32 -> 64 5x5 on 14x14 forward 15.9 -> 10.5 ms, LeNet's 6 -> 16
# 5x5 0.72 -> 0.33 ms; with 6 output channels (LeNet's first) it lost, 0.55 vs 0.38 ms.
DIRECT_CONV = _direct.available()
MIN_DIRECT_CHANNELS = 16
# The direct weight gradient runs (input channel, kernel column) taps of one kernel row
# through the registers; with fewer than MIN_DIRECT_WEIGHT_GRAD_TAPS of them, transposing
# grad_out costs more than it saves (1 thread, measured against im2col + BLAS: 32 -> 64
# 5x5 on 14x14 12.3 vs 16.4 ms; 8 -> 32 3x3 on 28x28, 24 taps, 3.7 vs 4.7 ms; 4 -> 32, 12
# taps, 2.5 vs 2.2 ms; simple.json's first layer, 5 taps, 2.1 vs 1.7 ms).
MIN_DIRECT_WEIGHT_GRAD_TAPS = 16
# A direct convolution of fewer multiply-adds stays on the calling thread.
MIN_PARALLEL_DIRECT_MACS = 1 << 22

__all__ = [
    "conv2d",
    "conv2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
]


# --------------------------------------------------------------------------- convolution


_NO_GRAD = object()


def _conv_args(x, weight, bias, stride, padding, dilation, groups, grad_out=_NO_GRAD):
    """Checked contiguous arrays and the geometry of one convolution."""
    named = [("x", x), ("weight", weight), ("bias", bias)]
    if grad_out is not _NO_GRAD:
        named.append(("grad_out", grad_out))
    x, weight, bias, *rest = as_float_arrays(*named)
    check_ndim(x, "x", 4, "(N, C, H, W)")
    check_ndim(weight, "weight", 4, "(out_channels, in_channels // groups, kh, kw)")
    geo = conv_geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    if bias is not None and bias.shape != (geo.F,):
        raise ValueError(f"bias must have shape ({geo.F},) to match weight {weight.shape}, got {bias.shape}")
    if rest and rest[0].shape != geo.out_shape:
        raise ValueError(
            f"grad_out has shape {rest[0].shape}, but the forward output has shape {geo.out_shape}"
        )
    return x, weight, bias, (rest[0] if rest else None), geo


class _Columns:
    """How chunks of samples become the column matrix of the GEMMs, and back:
    ``OH * OW`` columns per sample (``_im2col.im2col``; ``col2im`` folds them back)."""

    def __init__(self, geo):
        self.geo = geo
        self.per_sample = geo.OH * geo.OW
        self.G, self.F = geo.groups, geo.F
        self.K = geo.C * geo.kh * geo.kw
        self.args = (geo.kh, geo.kw, geo.sh, geo.sw, geo.pt, geo.pl, geo.dh, geo.dw,
                     geo.OH, geo.OW)

    def plan(self, n_threads):
        """``(samples per chunk, workers)``: the largest column/row buffer within budget,
        and as many chunks as a multiple of the workers.

        A layer with few output channels and a short kernel (LeNet's first: 6 x 25) gets
        chunks whose GEMMs stay under SMALL_GEMM multiply-adds, as long as that leaves
        MIN_SMALL_GEMM_COLUMNS columns per GEMM, and runs them on one worker: OpenBLAS's
        small-matrix kernels called from two threads at once ran no faster than from one
        (measured), and each chunk's work is then too short to hand to another thread
        (LeNet's first layer on 2 threads: backward 0.81 -> 0.55 ms on one worker).
        """
        geo, G = self.geo, self.G
        samples = max(1, COL_BUDGET // max(max(self.K, self.F) * self.per_sample, 1))
        small = SMALL_GEMM // max(self.F // G * (self.K // G) * self.per_sample, 1)
        if small * self.per_sample >= MIN_SMALL_GEMM_COLUMNS:
            samples, n_threads = min(samples, small), 1
        return chunk_for(geo.N, samples, n_threads), n_threads

    def buffers(self, b, dtype):
        """This thread's ``col`` (K, b*P) and ``rows`` (F, b*P) workspaces, and their
        views per group, (G, K/G, b*P) and (G, F/G, b*P)."""
        G, K, F, width = self.G, self.K, self.F, b * self.per_sample
        col = workspace("col", (K, width), dtype)
        rows = workspace("rows", (F, width), dtype)
        return col, rows, col.reshape(G, K // G, width), rows.reshape(G, F // G, width)


class _LastColumns:
    """What a thread's column buffer holds after a forward: chunk ``n0`` of ``x``."""

    def __init__(self, x, geo, chunk, n0):
        self.x, self.key = weakref.ref(x), (geo, chunk, n0, x.dtype)

    def holds(self, x, geo, chunk, n0):
        return self.x() is x and self.key == (geo, chunk, n0, x.dtype)


def _direct_conv(x, weight, bias, y, geo, transposed=False):
    """``y`` = the convolution of ``geo`` by :mod:`cynet._direct`; ``transposed``: the
    input gradient of a stride-1 convolution (``x`` is then ``grad_out`` and ``y`` the
    input's gradient), the same kernel with swapped, flipped weights."""
    G, kh, kw = geo.groups, geo.kh, geo.kw
    out_per_group, in_per_group = geo.F // G, geo.C // G
    pt, pl = geo.pt, geo.pl
    if transposed:
        out_per_group, in_per_group = in_per_group, out_per_group
        pt, pl = geo.dh * (kh - 1) - pt, geo.dw * (kw - 1) - pl
    packed = np.zeros(_direct.packed_size(G, out_per_group, in_per_group, kh, kw), np.float32)
    _direct.pack_weights(weight, packed, G, transposed)
    n_threads = _direct_threads(y.size * in_per_group * kh * kw)
    _direct.conv(x, packed, np.empty(0, np.float32) if bias is None else bias, y, G, kh, kw,
                 geo.sh, geo.sw, pt, pl, geo.dh, geo.dw, n_threads)
    return y


def _direct_threads(macs):
    return get_num_threads() if macs >= MIN_PARALLEL_DIRECT_MACS else 1


def _direct_weight_grad(x, grad_out, gw, geo):
    """``gw`` = the weight gradient of ``geo``'s convolution by :mod:`cynet._direct`."""
    G = geo.groups
    packed = np.zeros(_direct.packed_size(G, geo.F // G, geo.C // G, geo.kh, geo.kw),
                      np.float32)
    _direct.conv_weight_grad(x, grad_out, packed, G, geo.kh, geo.kw, geo.sh, geo.sw, geo.pt,
                             geo.pl, geo.dh, geo.dw, _direct_threads(grad_out.size * gw[0].size))
    _direct.unpack_weights(packed, gw, G)


def _direct_fits(geo, dtype):
    """What every direct route needs: a CPU and build with the kernels, float32, and a
    kernel larger than 1x1 (a pointwise convolution is a plain matmul)."""
    return DIRECT_CONV and dtype == np.float32 and not geo.is_pointwise


def _direct_weight_grad_fits(geo, dtype):
    """Direct weight gradient: enough output channels and taps per kernel row (the
    caller checks that grad_out is finite)."""
    return (_direct_fits(geo, dtype) and geo.F // geo.groups >= MIN_DIRECT_CHANNELS
            and geo.C // geo.groups * geo.kw >= MIN_DIRECT_WEIGHT_GRAD_TAPS)


def _direct_forward_fits(geo, weight):
    """Direct forward: enough output channels, and finite weights (the kernel skips
    padding rows, where im2col multiplies zeros: an inf weight must give NaN there as in
    PyTorch's reference semantics)."""
    return (_direct_fits(geo, weight.dtype) and geo.F // geo.groups >= MIN_DIRECT_CHANNELS
            and np.isfinite(weight).all())


def _direct_input_grad_fits(geo, weight):
    """The input gradient as a direct convolution: finite weights as for the forward,
    stride 1 (a strided one would skip taps), enough input channels, and padding within
    the kernel's reach."""
    return (_direct_fits(geo, weight.dtype) and geo.sh == geo.sw == 1
            and geo.C // geo.groups >= MIN_DIRECT_CHANNELS
            and geo.pt <= geo.dh * (geo.kh - 1) and geo.pl <= geo.dw * (geo.kw - 1)
            and np.isfinite(weight).all())


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation of ``x`` (N, C, H, W) with ``weight`` (F, C // groups, kh, kw).

    ``padding`` is an int, an (h, w) pair, ``"valid"`` or ``"same"`` (stride 1 only; for
    an even kernel the extra row/column of zeros goes at the bottom/right).
    Returns ``y`` of shape (N, F, OH, OW).
    """
    x, weight, bias, _, geo = _conv_args(x, weight, bias, stride, padding, dilation, groups)
    return _conv2d(x, weight, bias, geo)


def _conv2d(x, weight, bias, geo):
    G, F, P = geo.groups, geo.F, geo.OH * geo.OW
    n_threads = get_num_threads()
    y = np.empty(geo.out_shape, dtype=x.dtype)
    w_mat = weight.reshape(G, F // G, -1)
    if geo.is_pointwise:
        np.matmul(w_mat, x.reshape(geo.N, G, geo.C // G, P), out=y.reshape(geo.N, G, F // G, P))
        if bias is not None:
            y += bias[:, None, None]
        return y
    if _direct_forward_fits(geo, weight):
        return _direct_conv(x, weight, bias, y, geo)
    cols = _Columns(geo)
    bias_or_empty = np.empty(0, dtype=x.dtype) if bias is None else bias

    y_rows = y.reshape(geo.N, F, P)
    im2col, rows_to_batch, args = _im2col.im2col, _im2col.rows_to_batch, cols.args

    def forward_chunks(starts, kernel_threads):
        full = cols.buffers(B, x.dtype)
        set_contents("col", None)  # until the loop has finished (it may be interrupted)
        for n0 in starts:
            b = min(B, geo.N - n0)
            col, rows, col_g, rows_g = full if b == B else cols.buffers(b, x.dtype)
            im2col(x[n0:n0 + b], col, *args, kernel_threads)
            np.matmul(w_mat, col_g, out=rows_g)
            rows_to_batch(rows, y_rows[n0:n0 + b], bias_or_empty, kernel_threads)
        # this thread's column buffer still holds its last chunk: a layer's backward,
        # which runs its chunks last to first, starts with it (see _LastColumns)
        set_contents("col", _LastColumns(x, geo, B, starts[-1]))

    B, workers = cols.plan(n_threads)
    run_chunks(geo.N, B, workers, forward_chunks)
    return y


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1,
                    bias=True, input_grad=True):
    """Gradients of :func:`conv2d` given ``grad_out`` = dL/dy.

    Returns ``(grad_x, grad_weight, grad_bias)``; ``grad_bias`` is None when
    ``bias=False`` and ``grad_x`` is None when ``input_grad=False`` (a first layer).
    """
    return _conv2d_backward(grad_out, x, weight, stride, padding, dilation, groups, bias,
                            input_grad)


def _conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1,
                     bias=True, input_grad=True, reuse_columns=False):
    """:func:`conv2d_backward`. ``reuse_columns``: the caller (a layer) ran ``conv2d`` on
    this very ``x`` last and has not modified it since, so that the columns still in
    this thread's buffer may stand for a new im2col of the same chunk."""
    bias = as_bool(bias, "bias")
    input_grad = as_bool(input_grad, "input_grad")
    x, weight, _, grad_out, geo = _conv_args(
        x, weight, None, stride, padding, dilation, groups, grad_out=grad_out
    )
    cols = _Columns(geo)
    G, F, C, P = geo.groups, geo.F, geo.C, geo.OH * geo.OW
    n_threads = get_num_threads()
    w_mat = weight.reshape(G, F // G, -1)
    K = cols.K
    gw = np.zeros(weight.shape, dtype=x.dtype)
    gw_mat = gw.reshape(G, F // G, K // G)
    gx = np.empty(x.shape, dtype=x.dtype) if input_grad else None
    direct_gx = input_grad and _direct_input_grad_fits(geo, weight)
    gb = None
    if bias:
        gb = np.empty(F, dtype=x.dtype)
        _im2col.channel_sums(grad_out.reshape(geo.N, F, P), gb, threads_for(grad_out.size))

    if geo.is_pointwise:
        dy = grad_out.reshape(geo.N, G, F // G, P)
        xs = x.reshape(geo.N, G, C // G, P)
        np.sum(np.matmul(dy, xs.transpose(0, 1, 3, 2)), axis=0, out=gw_mat)
        if input_grad:
            np.matmul(w_mat.transpose(0, 2, 1), dy, out=gx.reshape(geo.N, G, C // G, P))
        return gx, gw, gb

    if direct_gx:
        _direct_conv(grad_out, weight, None, gx, geo, transposed=True)
    # the direct weight gradient skips padding rows: with a non-finite grad_out (so a
    # non-finite sum) the im2col route multiplies them, as the reference does
    direct_gw = _direct_weight_grad_fits(geo, x.dtype) and (
        np.isfinite(gb).all() if bias else np.isfinite(np.sum(grad_out)))
    if direct_gw:
        _direct_weight_grad(x, grad_out, gw, geo)
    chunk_gx = input_grad and not direct_gx
    if direct_gw and not chunk_gx:
        return gx, gw, gb
    dy_batch = grad_out.reshape(geo.N, F, P)
    im2col, col2im, batch_to_rows = _im2col.im2col, _im2col.col2im, _im2col.batch_to_rows
    args = cols.args

    def backward_chunks(starts, kernel_threads):
        """This worker's chunks; returns its share of the weight gradient, transposed (a
        new array: the caller sums it after the worker may have moved on to another
        call's work), or None when the direct kernel computed it."""
        # col . dY^T gives the transposed partial: OpenBLAS runs this operand order
        # 1.2-2x faster than dY . col^T for these skinny shapes (few rows, long inner dim).
        # The partials are summed in that layout too (a contiguous add; adding each one
        # transposed cost 0.9 ms of simple.json's 33 ms conv2 backward).
        gw_sum_t = gw_part_t = None
        if not direct_gw:
            gw_sum_t = np.zeros((G, K // G, F // G), dtype=x.dtype)
            gw_part_t = workspace("grad_weight_t", (G, K // G, F // G), x.dtype)
        w_t = w_mat.transpose(0, 2, 1)
        full = cols.buffers(B, x.dtype)
        kept = contents("col")
        set_contents("col", None)  # overwritten below
        for n0 in reversed(starts):  # the forward's last chunk first (same sums either way)
            b = min(B, geo.N - n0)
            width = b * P
            col, rows, col_g, dy_rows = full if b == B else cols.buffers(b, x.dtype)
            batch_to_rows(dy_batch[n0:n0 + b], rows, kernel_threads)
            if not direct_gw:
                if not (reuse_columns and kept is not None and kept.holds(x, geo, B, n0)):
                    im2col(x[n0:n0 + b], col, *args, kernel_threads)
                for a in range(0, width, piece):  # (dY . col^T)^T
                    np.matmul(col_g[:, :, a:a + piece],
                              dy_rows[:, :, a:a + piece].transpose(0, 2, 1), out=gw_part_t)
                    gw_sum_t += gw_part_t
            kept = None
            if chunk_gx:
                # dcol = W^T . dY, written over col (no longer needed), then folded into dx
                np.matmul(w_t, dy_rows, out=col_g)
                col2im(col, gx[n0:n0 + b], *args, kernel_threads)
        return gw_sum_t

    B, workers = cols.plan(n_threads)
    # The weight gradient's GEMM is (K x columns) . (columns x F): with few, short filters
    # it runs in OpenBLAS's small-matrix kernels when cut into pieces of columns (simple.json's
    # first layer, 25 x 32: 2.1 -> 1.1 ms for the batch at 1 thread). Not below
    # MIN_WEIGHT_GRAD_PIECE columns, where the calls cost more than they save.
    piece = SMALL_GEMM // max((F // G) * (K // G), 1)
    if piece < MIN_WEIGHT_GRAD_PIECE:
        piece = B * cols.per_sample
    for part in run_chunks(geo.N, B, workers, backward_chunks):
        if part is not None:
            gw_mat += part.transpose(0, 2, 1)
    return gx, gw, gb


# --------------------------------------------------------------------------- pooling


def _pool_input(x):
    x = as_float_array(x, "x")
    check_ndim(x, "x", 4, "(N, C, H, W)")
    return x


def _planes(a):
    """View an (N, C, H, W) array as (N*C, H, W)."""
    return a.reshape(a.shape[0] * a.shape[1], a.shape[2], a.shape[3])


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling; returns ``(y, indices)``.

    ``indices`` (int64, shaped like ``y``) holds the flat position ``row * W + col`` of
    each maximum within its own input plane. On ties the first maximum wins; NaN
    propagates. ``stride`` defaults to ``kernel_size``; ``padding`` is at most half of it.
    """
    return _max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)


def _max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                relu=False):
    """:func:`max_pool2d`; with ``relu``, of ``max(x, 0)`` (a fused ReLU before it: the
    two commute, so one pass over the small output replaces one over ``x``)."""
    x = _pool_input(x)
    ceil_mode = as_bool(ceil_mode, "ceil_mode")
    geo = pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    N, C = x.shape[:2]
    y = np.empty((N, C) + geo.out_hw, dtype=x.dtype)
    indices = np.empty(y.shape, dtype=np.int64)
    if y.size == 0:
        return y, indices
    empty = _pool.max_pool_forward(_planes(x), _planes(y), _planes(indices), *geo.kernel,
                                   *geo.stride, *geo.padding, *geo.dilation, threads_for(x.size),
                                   relu)
    if empty:
        raise ValueError(
            f"dilation {geo.dilation} with kernel_size {geo.kernel} and padding {geo.padding} "
            f"leaves pooling windows without any input element (x shape {x.shape})"
        )
    return y, indices


def max_pool2d_backward(grad_out, indices, input_shape):
    """Gradient of :func:`max_pool2d` wrt its input, of shape ``input_shape``."""
    return _max_pool2d_backward(grad_out, indices, input_shape)


def _max_pool2d_backward(grad_out, indices, input_shape, relu_output=None):
    """:func:`max_pool2d_backward`; given ``relu_output``, the ``y`` of
    ``_max_pool2d(..., relu=True)``, no gradient passes where it is <= 0."""
    N, C, H, W = as_shape4(input_shape, "input_shape")
    grad_out = as_float_array(grad_out, "grad_out")
    check_ndim(grad_out, "grad_out", 4, "(N, C, OH, OW)")
    if grad_out.shape[:2] != (N, C):
        raise ValueError(
            f"grad_out has shape {grad_out.shape}, which does not fit input_shape {(N, C, H, W)}"
        )
    indices = as_index_array(indices, "indices", grad_out.shape)
    grad_in = np.empty((N, C, H, W), dtype=grad_out.dtype)
    if grad_in.size == 0:
        if indices.size:
            raise ValueError(f"indices point into an empty input of shape {(N, C, H, W)}")
        return grad_in
    P = grad_out.shape[2] * grad_out.shape[3]
    if relu_output is not None:
        relu_output = np.ascontiguousarray(relu_output, dtype=grad_out.dtype)
        if relu_output.shape != grad_out.shape:
            raise ValueError(f"relu_output has shape {relu_output.shape}, grad_out "
                             f"{grad_out.shape}")
        relu_output = relu_output.reshape(N * C, P)
    bad = _pool.max_pool_backward(grad_out.reshape(N * C, P), indices.reshape(N * C, P),
                                  grad_in.reshape(N * C, H * W), threads_for(grad_in.size),
                                  relu_output)
    if bad:
        raise ValueError(
            f"indices has {bad} value(s) outside [0, {H * W}), the positions of an "
            f"{H}x{W} input plane (input_shape {(N, C, H, W)})"
        )
    return grad_in


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """Average pooling. With ``count_include_pad`` the zero padding counts in the mean."""
    x = _pool_input(x)
    ceil_mode = as_bool(ceil_mode, "ceil_mode")
    count_include_pad = as_bool(count_include_pad, "count_include_pad")
    geo = pool_geometry(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    y = np.empty(x.shape[:2] + geo.out_hw, dtype=x.dtype)
    if y.size:
        _pool.avg_pool_forward(_planes(x), _planes(y), *geo.kernel, *geo.stride, *geo.padding,
                               count_include_pad, threads_for(x.size))
    return y


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True):
    """Gradient of :func:`avg_pool2d` wrt its input, of shape ``input_shape``."""
    shape = as_shape4(input_shape, "input_shape")
    grad_out = as_float_array(grad_out, "grad_out")
    check_ndim(grad_out, "grad_out", 4, "(N, C, OH, OW)")
    ceil_mode = as_bool(ceil_mode, "ceil_mode")
    count_include_pad = as_bool(count_include_pad, "count_include_pad")
    geo = pool_geometry(shape, kernel_size, stride, padding, 1, ceil_mode, name="input_shape")
    expected = shape[:2] + geo.out_hw
    if grad_out.shape != expected:
        raise ValueError(
            f"grad_out has shape {grad_out.shape}, but the forward output for input_shape "
            f"{shape} has shape {expected}"
        )
    grad_in = np.empty(shape, dtype=grad_out.dtype)
    if grad_in.size:
        _pool.avg_pool_backward(_planes(grad_out), _planes(grad_in), *geo.kernel, *geo.stride,
                                *geo.padding, count_include_pad, threads_for(grad_in.size))
    return grad_in
