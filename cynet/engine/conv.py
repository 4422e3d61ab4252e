"""Convolution routes: which kernels compute a layer, and how its work is split.

Three routes, chosen per call from the geometry, the dtype and the policy:

- **pointwise** (1x1, stride 1, no padding): ``x[n]`` already is the column matrix, so
  the convolution is a batched matmul;
- **direct** (float32, AVX-512, enough channels, finite weights): :mod:`cynet._direct`,
  output channels as vector lanes, no column matrix, padding rows skipped;
- **im2col**: chunks of samples unrolled into a column matrix within the policy's
  ``col_budget``, multiplied by numpy's BLAS, split between the workers
  (:mod:`.workers`).

Arguments arrive checked (``cynet._geometry.conv_arguments``); results are new arrays.
"""
import weakref
from contextlib import contextmanager

import numpy as np

from .._args import ArgumentError
from . import padding
from .kernels import direct, im2col
from .policy import current as policy
from .threads import threads_for
from .workers import chunk_for, run_chunks
from .workspace import allocate, blame, contents, set_contents, workspace


class Columns:
    """How chunks of samples become the column matrix of the GEMMs, and back:
    ``OH * OW`` columns per sample (``im2col``; ``col2im`` folds them back)."""

    def __init__(self, geo):
        self.geo = geo
        self.per_sample = geo.OH * geo.OW
        self.G, self.F = geo.groups, geo.F
        self.K = geo.C * geo.kh * geo.kw
        self.args = (geo.kh, geo.kw, geo.sh, geo.sw, geo.pt, geo.pb, geo.pl, geo.pr,
                     geo.dh, geo.dw, geo.OH, geo.OW)

    def plan(self, p):
        """``(samples per chunk, workers)`` under the policy ``p``: the largest column/row
        buffer within the budget, and as many chunks as a multiple of the workers.

        A layer with few output channels and a short kernel (LeNet's first: 6 x 25) gets
        chunks whose GEMMs stay within OpenBLAS's small-matrix kernels, as long as each
        keeps enough columns, and runs them on one worker: those kernels called from two
        threads at once run no faster than from one, and each chunk is then too short to
        hand to another thread (benchmark case a).
        """
        geo, G = self.geo, self.G
        samples = max(1, p.col_budget // max(max(self.K, self.F) * self.per_sample, 1))
        n_threads = p.num_threads
        small = p.small_gemm // max(self.F // G * (self.K // G) * self.per_sample, 1)
        if small * self.per_sample >= p.min_small_gemm_columns:
            samples, n_threads = min(samples, small), 1
        return chunk_for(geo.N, samples, n_threads), n_threads

    def buffers(self, b, dtype):
        """This thread's ``col`` (K, b*P) and ``rows`` (F, b*P) workspaces, and their
        views per group, (G, K/G, b*P) and (G, F/G, b*P)."""
        G, K, F, width = self.G, self.K, self.F, b * self.per_sample
        col = workspace("col", (K, width), dtype)  # (a MemoryError: see memory_named)
        rows = workspace("rows", (F, width), dtype)
        return col, rows, col.reshape(G, K // G, width), rows.reshape(G, F // G, width)


class LastColumns:
    """What a thread's column buffer holds after a forward: chunk ``n0`` of ``x``."""

    def __init__(self, x, geo, chunk, n0):
        self.x, self.key = weakref.ref(x), (geo, chunk, n0, x.dtype)

    def holds(self, x, geo, chunk, n0):
        return self.x() is x and self.key == (geo, chunk, n0, x.dtype)


# ------------------------------------------------------------------- routing


def _direct_fits(p, geo, dtype):
    """What every direct route needs: the policy allows it (a CPU and build with the
    kernels), float32, and a kernel larger than 1x1 (a pointwise convolution is a plain
    matmul)."""
    return p.direct_conv and dtype == np.float32 and not geo.is_pointwise


def direct_forward_fits(p, geo, weight):
    """Enough output channels, and finite weights: the kernel skips padding rows, where
    im2col multiplies zeros, and an inf weight must give NaN there as in PyTorch."""
    return (_direct_fits(p, geo, weight.dtype) and geo.F // geo.groups >= p.min_direct_channels
            and np.isfinite(weight).all())


def direct_input_grad_fits(p, geo, weight):
    """The input gradient as a direct convolution: finite weights as for the forward,
    stride 1 (a strided one would skip taps), enough input channels, and padding within
    the kernel's reach."""
    return (_direct_fits(p, geo, weight.dtype) and geo.sh == geo.sw == 1
            and geo.C // geo.groups >= p.min_direct_channels
            and geo.pt <= geo.dh * (geo.kh - 1) and geo.pl <= geo.dw * (geo.kw - 1)
            and np.isfinite(weight).all())


def direct_weight_grad_fits(p, geo, dtype):
    """Enough output channels and taps per kernel row (the caller checks that grad_out
    is finite: the kernel skips padding rows too)."""
    return (_direct_fits(p, geo, dtype) and geo.F // geo.groups >= p.min_direct_channels
            and geo.C // geo.groups * geo.kw >= p.min_direct_weight_grad_taps)


def _direct_threads(p, macs):
    return p.num_threads if macs >= p.min_parallel_direct_macs else 1


def _direct_conv(p, x, weight, bias, y, geo, transposed=False):
    """``y`` = the convolution of ``geo`` by the direct kernel; ``transposed``: the input
    gradient of a stride-1 convolution (``x`` is then ``grad_out`` and ``y`` the input's
    gradient), the same kernel with swapped, flipped weights."""
    G, kh, kw = geo.groups, geo.kh, geo.kw
    out_per_group, in_per_group = geo.F // G, geo.C // G
    pt, pl = geo.pt, geo.pl
    if transposed:
        out_per_group, in_per_group = in_per_group, out_per_group
        pt, pl = geo.dh * (kh - 1) - pt, geo.dw * (kw - 1) - pl
    packed = np.zeros(direct.packed_size(G, out_per_group, in_per_group, kh, kw), np.float32)
    direct.pack_weights(weight, packed, G, transposed)
    direct.conv(x, packed, np.empty(0, np.float32) if bias is None else bias, y, G, kh, kw,
                geo.sh, geo.sw, pt, pl, geo.dh, geo.dw,
                _direct_threads(p, y.size * in_per_group * kh * kw))
    return y


def _direct_weight_grad(p, x, grad_out, gw, geo):
    """``gw`` = the weight gradient of ``geo``'s convolution by the direct kernel."""
    G = geo.groups
    packed = np.zeros(direct.packed_size(G, geo.F // G, geo.C // G, geo.kh, geo.kw),
                      np.float32)
    direct.conv_weight_grad(x, grad_out, packed, G, geo.kh, geo.kw, geo.sh, geo.sw, geo.pt,
                            geo.pl, geo.dh, geo.dw,
                            _direct_threads(p, grad_out.size * gw[0].size))
    direct.unpack_weights(packed, gw, G)


# ------------------------------------------------------------------- forward / backward


@contextmanager
def memory_named(geo, argument=None, transposed=False):
    """A MemoryError of the kernels' scratch (the padded planes of im2col, the direct
    kernels' input copies and work areas) or of a workspace becomes an ArgumentError
    naming ``argument`` (default: the one that made the convolution's buffers large).
    ``transposed``: ``geo`` is that of the convolution a transposed one transposes, whose
    output is the other's input."""
    try:
        yield
    except MemoryError as exc:
        argument = argument or blame(geo)
        out, inp = f"{geo.OH}x{geo.OW}", f"{geo.H}x{geo.W}"
        what = "a convolution"
        if transposed:
            out, inp, what = inp, out, "a transposed convolution"
        raise ArgumentError(
            f"cannot allocate the scratch of {what} with output {out} from an input of {inp} "
            f"({exc}); reduce {argument}", argument) from None


def forward(x, weight, bias, geo):
    """``y`` of the convolution ``geo`` of the checked arrays ``x``, ``weight``, ``bias``."""
    with memory_named(geo):
        if geo.padding_mode != "zeros":
            return _forward(padding.pad(x, geo), weight, bias, geo.unpadded)
        return _forward(x, weight, bias, geo)


def _forward(x, weight, bias, geo, y=None):
    """(``y``: the output array, when the caller allocates it)"""
    p = policy()
    G, F, P = geo.groups, geo.F, geo.OH * geo.OW
    if y is None:
        y = allocate(geo.out_shape, x.dtype, "the output", blame(geo))
    if y.size == 0:  # an empty batch
        return y
    w_mat = weight.reshape(G, F // G, -1)
    if geo.is_pointwise:
        np.matmul(w_mat, x.reshape(geo.N, G, geo.C // G, P), out=y.reshape(geo.N, G, F // G, P))
        if bias is not None:
            y += bias[:, None, None]
        return y
    if direct_forward_fits(p, geo, weight):
        return _direct_conv(p, x, weight, bias, y, geo)
    cols = Columns(geo)
    bias_or_empty = np.empty(0, dtype=x.dtype) if bias is None else bias
    y_rows = y.reshape(geo.N, F, P)
    args = cols.args

    def forward_chunks(starts, kernel_threads):
        full = cols.buffers(B, x.dtype)
        set_contents("col", None)  # until the loop has finished (it may be interrupted)
        for n0 in starts:
            b = min(B, geo.N - n0)
            col, rows, col_g, rows_g = full if b == B else cols.buffers(b, x.dtype)
            im2col.im2col(x[n0:n0 + b], col, *args, kernel_threads)
            np.matmul(w_mat, col_g, out=rows_g)
            im2col.rows_to_batch(rows, y_rows[n0:n0 + b], bias_or_empty, kernel_threads)
        # this thread's column buffer still holds its last chunk: a layer's backward,
        # which runs its chunks last to first, starts with it (see LastColumns)
        set_contents("col", LastColumns(x, geo, B, starts[-1]))

    B, workers = cols.plan(p)
    run_chunks(geo.N, B, workers, forward_chunks)
    return y


def backward(grad_out, x, weight, geo, bias=True, input_grad=True, reuse_columns=False):
    """``(grad_x, grad_weight, grad_bias)`` of the convolution ``geo`` (checked arrays).

    ``reuse_columns``: the caller (a layer) ran :func:`forward` on this very ``x`` last
    and has not modified it since, so that the columns still in this thread's buffer may
    stand for a new im2col of the same chunk (with a padding_mode other than zeros the
    forward's columns are of a padded copy, and are not reused)."""
    with memory_named(geo):
        if geo.padding_mode != "zeros":
            gx, gw, gb = _backward(grad_out, padding.pad(x, geo), weight, geo.unpadded, bias,
                                   input_grad, False)
            return (None if gx is None else padding.fold(gx, geo)), gw, gb
        return _backward(grad_out, x, weight, geo, bias, input_grad, reuse_columns)


def input_gradient(grad_out, weight, geo, gx, bias=None):
    """Only the input gradient of the convolution ``geo`` (which needs no ``x``), written
    into ``gx`` (``geo.in_shape``, the caller's), with ``bias`` (``geo.C`` values, or None)
    added to each of its channels: the forward of the transposed convolution (whose
    caller names the arguments of a MemoryError in its own terms)."""
    return _backward(grad_out, None, weight, geo, False, True, False, weight_grad=False,
                     gx=gx, gx_bias=bias)[0]


def _backward(grad_out, x, weight, geo, bias, input_grad, reuse_columns, weight_grad=True,
              gx=None, gx_bias=None):
    """(``weight_grad=False``: no weight gradient, and ``x`` may be None; ``gx``: the
    input gradient's array, when the caller allocates it; ``gx_bias``: values added to
    each channel of the input gradient)"""
    p = policy()
    cols = Columns(geo)
    dtype = grad_out.dtype
    G, F, C, P = geo.groups, geo.F, geo.C, geo.OH * geo.OW
    w_mat = weight.reshape(G, F // G, -1)
    K = cols.K
    gw = gw_mat = None
    if weight_grad:
        gw = np.zeros(weight.shape, dtype=dtype)
        gw_mat = gw.reshape(G, F // G, K // G)
    if input_grad and gx is None:
        gx = allocate(geo.in_shape, dtype, "the input gradient", "x")
    gb = None
    if bias:
        gb = np.empty(F, dtype=dtype)
        im2col.channel_sums(grad_out.reshape(geo.N, F, P), gb, threads_for(grad_out.size))
    if geo.N == 0:  # an empty batch: zero weight and bias gradients, an empty grad_x
        return gx, gw, gb

    if geo.is_pointwise:
        dy = grad_out.reshape(geo.N, G, F // G, P)
        if weight_grad:
            xs = x.reshape(geo.N, G, C // G, P)
            np.sum(np.matmul(dy, xs.transpose(0, 1, 3, 2)), axis=0, out=gw_mat)
        if input_grad:
            np.matmul(w_mat.transpose(0, 2, 1), dy, out=gx.reshape(geo.N, G, C // G, P))
            if gx_bias is not None:
                gx += gx_bias[:, None, None]
        return gx, gw, gb

    direct_gx = input_grad and direct_input_grad_fits(p, geo, weight)
    if direct_gx:
        _direct_conv(p, grad_out, weight, gx_bias, gx, geo, transposed=True)
    # the direct weight gradient skips padding rows: with a non-finite grad_out (so a
    # non-finite sum) the im2col route multiplies them, as the reference does
    direct_gw = weight_grad and direct_weight_grad_fits(p, geo, dtype) and (
        np.isfinite(gb).all() if bias else np.isfinite(np.sum(grad_out)))
    if direct_gw:
        _direct_weight_grad(p, x, grad_out, gw, geo)
    chunk_gx = input_grad and not direct_gx
    chunk_gw = weight_grad and not direct_gw
    if not (chunk_gx or chunk_gw):
        return gx, gw, gb
    gx_bias_planes = None if gx_bias is None else gx_bias[:, None, None]
    dy_batch = grad_out.reshape(geo.N, F, P)
    args = cols.args

    def backward_chunks(starts, kernel_threads):
        """This worker's chunks; returns its share of the weight gradient, transposed (a
        new array: the caller sums it after the worker may have moved on to another
        call's work), or None when the direct kernel computed it."""
        # col . dY^T gives the transposed partial: OpenBLAS runs this operand order
        # faster than dY . col^T for these skinny shapes (few rows, long inner dim), and
        # the partials are summed in that layout too, a contiguous add (case b)
        gw_sum_t = gw_part_t = None
        if chunk_gw:
            gw_sum_t = np.zeros((G, K // G, F // G), dtype=dtype)
            gw_part_t = workspace("grad_weight_t", (G, K // G, F // G), dtype)
        w_t = w_mat.transpose(0, 2, 1)
        full = cols.buffers(B, dtype)
        kept = contents("col")
        set_contents("col", None)  # overwritten below
        for n0 in reversed(starts):  # the forward's last chunk first (same sums either way)
            b = min(B, geo.N - n0)
            width = b * P
            col, rows, col_g, dy_rows = full if b == B else cols.buffers(b, dtype)
            im2col.batch_to_rows(dy_batch[n0:n0 + b], rows, kernel_threads)
            if chunk_gw:
                if not (reuse_columns and kept is not None and kept.holds(x, geo, B, n0)):
                    im2col.im2col(x[n0:n0 + b], col, *args, kernel_threads)
                for a in range(0, width, piece):  # (dY . col^T)^T
                    np.matmul(col_g[:, :, a:a + piece],
                              dy_rows[:, :, a:a + piece].transpose(0, 2, 1), out=gw_part_t)
                    gw_sum_t += gw_part_t
            kept = None
            if chunk_gx:
                # dcol = W^T . dY, written over col (no longer needed), then folded into dx
                np.matmul(w_t, dy_rows, out=col_g)
                im2col.col2im(col, gx[n0:n0 + b], *args, kernel_threads)
                if gx_bias_planes is not None:  # while the chunk is in cache
                    gx[n0:n0 + b] += gx_bias_planes
        return gw_sum_t

    B, workers = cols.plan(p)
    # with few, short filters the weight gradient's GEMM runs in OpenBLAS's small-matrix
    # kernels when cut into pieces of columns, though not into pieces so short that the
    # calls cost more than they save (the training benchmark's simple.json first layer)
    piece = p.small_gemm // max((F // G) * (K // G), 1)
    if piece < p.min_weight_grad_piece:
        piece = B * cols.per_sample
    for part in run_chunks(geo.N, B, workers, backward_chunks):
        if part is not None:
            gw_mat += part.transpose(0, 2, 1)
    return gx, gw, gb
