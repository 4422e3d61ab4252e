"""Every threaded kernel takes any thread count and gives the one-thread result.

The kernels clamp ``n_threads`` to ``[1, tasks]`` with one helper (``team_size`` in
layers_pyx/_parallel.pxd) and size their per-thread scratch with that same number: a
count below 1 (which prange would pass on to OpenMP as "its default team" or as an
impossible team) or above the number of tasks must neither crash nor change a result.
The kernels are found by their ``n_threads`` argument, so a new one without a case here
fails.
"""
import numpy as np
import pytest

from cynet import _activations, _direct, _im2col, _optim, _pad, _pool

MODULES = (_im2col, _pool, _activations, _optim, _direct, _pad)
MANY = 9  # more threads than any case below has tasks (at most 8)
THREAD_COUNTS = (0, -1, 1, 2, MANY)


def _threaded_kernels():
    found = set()
    for module in MODULES:
        for name, f in vars(module).items():
            code = getattr(f, "__code__", None)
            if (not name.startswith("_") and code is not None
                    and "n_threads" in code.co_varnames[:code.co_argcount]):
                found.add(f"{module.__name__.rsplit('.', 1)[1]}.{name}")
    return found


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# Each case builds its inputs once and returns run(n_threads) -> the outputs of one call
# (fresh output buffers, and fresh copies of what a kernel updates in place).
# Geometry of the column cases: 2 samples x 3 channels (6 tasks), 3x3 kernel, padding 1,
# planes large enough that a per-thread scratch plane is its own mapping.
B, C, H, W = 2, 3, 130, 130
COL_GEOMETRY = (3, 3, 1, 1, 1, 1, 1, 1, 1, 1, H, W)  # kh kw sh sw pt pb pl pr dh dw OH OW


def _im2col_case(rng):
    x = _f32(rng, B, C, H, W)

    def run(n_threads):
        col = np.full((C * 9, B * H * W), np.nan, np.float32)
        _im2col.im2col(x, col, *COL_GEOMETRY, n_threads)
        return col,
    return run


def _col2im_case(rng):
    col = _f32(rng, C * 9, B * H * W)

    def run(n_threads):
        x = np.full((B, C, H, W), np.nan, np.float32)
        _im2col.col2im(col, x, *COL_GEOMETRY, n_threads)
        return x,
    return run


def _rows_to_batch_case(rng):
    rows, bias = _f32(rng, 3, 2 * 50), _f32(rng, 3)

    def run(n_threads):
        out = np.full((2, 3, 50), np.nan, np.float32)
        _im2col.rows_to_batch(rows, out, bias, n_threads)
        return out,
    return run


def _batch_to_rows_case(rng):
    batch = _f32(rng, 2, 3, 50)

    def run(n_threads):
        rows = np.full((3, 2 * 50), np.nan, np.float32)
        _im2col.batch_to_rows(batch, rows, n_threads)
        return rows,
    return run


def _channel_sums_case(rng):
    x = _f32(rng, 4, 5, 333)

    def run(n_threads):
        out = np.full(5, np.nan, np.float32)
        _im2col.channel_sums(x, out, n_threads)
        return out,
    return run


POOL_PLANES, PH, PW = 6, 17, 16
MAX_GEOMETRY = (3, 3, 2, 2, 1, 1, 1, 1)  # kh kw sh sw ph pw dh dw
POOL_OUT = (9, 8)


def _max_pool_forward_case(rng):
    x = _f32(rng, POOL_PLANES, PH, PW)

    def run(n_threads):
        y = np.full((POOL_PLANES, *POOL_OUT), np.nan, np.float32)
        idx = np.full((POOL_PLANES, *POOL_OUT), -7, np.int64)
        empty = _pool.max_pool_forward(x, y, idx, *MAX_GEOMETRY, n_threads, relu=True)
        return y, idx, np.array(empty)
    return run


def _max_pool_backward_case(rng):
    x = _f32(rng, POOL_PLANES, PH, PW)
    y = np.empty((POOL_PLANES, *POOL_OUT), np.float32)
    idx = np.empty((POOL_PLANES, *POOL_OUT), np.int64)
    _pool.max_pool_forward(x, y, idx, *MAX_GEOMETRY, 1, relu=True)
    idx[0, 0, 0] = PH * PW  # past its plane (an empty window's index): skipped
    idx[1, 0, 0] = -1  # negative (no forward's): skipped and counted
    gy, idx, y = _f32(rng, POOL_PLANES, 72), idx.reshape(POOL_PLANES, 72), y.reshape(-1, 72)

    def run(n_threads):
        gx = np.full((POOL_PLANES, PH * PW), np.nan, np.float32)
        bad = _pool.max_pool_backward(gy, idx, gx, n_threads, relu_output=y)
        return gx, np.array(bad)
    return run


def _avg_pool_forward_case(rng):
    x = _f32(rng, POOL_PLANES, PH, PW)

    def run(n_threads):
        y = np.full((POOL_PLANES, *POOL_OUT), np.nan, np.float32)
        _pool.avg_pool_forward(x, y, 2, 2, 2, 2, 1, 1, 0, 0, False, n_threads)
        return y,
    return run


def _avg_pool_backward_case(rng):
    gy = _f32(rng, POOL_PLANES, *POOL_OUT)

    def run(n_threads):
        gx = np.full((POOL_PLANES, PH, PW), np.nan, np.float32)
        _pool.avg_pool_backward(gy, gx, 2, 2, 2, 2, 1, 1, 0, 0, False, n_threads)
        return gx,
    return run


def _relu_forward_case(rng):
    x = _f32(rng, 7)

    def run(n_threads):
        out = np.full(7, np.nan, np.float32)
        _activations.relu_forward(x, out, n_threads)
        return out,
    return run


def _relu_backward_case(rng):
    grad, y = _f32(rng, 7), np.maximum(_f32(rng, 7), 0)

    def run(n_threads):
        out = np.full(7, np.nan, np.float32)
        _activations.relu_backward(grad, y, out, n_threads)
        return out,
    return run


OPTIM_N = 3 * 16384 + 5  # four blocks of the optimizer kernels


def _adam_update_case(rng):
    p, g, m, v = (_f32(rng, OPTIM_N) for _ in range(4))
    v = np.abs(v)

    def run(n_threads):
        p1, m1, v1 = p.copy(), m.copy(), v.copy()
        _optim.adam_update(p1, g, m1, v1, 0.9, 0.999, 1e-8, 1e-3, 0.7, 1e-2, n_threads)
        return p1, m1, v1
    return run


def _sgd_update_case(rng):
    p, g, buf = (_f32(rng, OPTIM_N) for _ in range(3))

    def run(n_threads):
        p1, buf1 = p.copy(), buf.copy()
        _optim.sgd_update(p1, g, buf1, 0.01, 0.9, 1e-4, True, False, n_threads)
        return p1, buf1
    return run


# direct kernels: 4 samples (4 tasks), 16 -> 16 channels, 3x3, padding 1 (a per-thread
# copy of the input rows); integer values, so that the weight gradient's per-thread
# partial sums are exact whatever the team
DIRECT_GEOMETRY = dict(groups=1, kh=3, kw=3, sh=1, sw=1, pt=1, pl=1, dh=1, dw=1)


def _small_ints(rng, *shape):
    return rng.integers(-3, 4, shape).astype(np.float32)


def _conv_case(rng):
    x, bias = _small_ints(rng, 4, 16, 6, 5), _f32(rng, 16)
    packed = np.zeros(_direct.packed_size(1, 16, 16, 3, 3), np.float32)
    _direct.pack_weights(_f32(rng, 16, 16, 3, 3), packed, 1, False)

    def run(n_threads):
        y = np.full((4, 16, 6, 5), np.nan, np.float32)
        _direct.conv(x, packed, bias, y, **DIRECT_GEOMETRY, n_threads=n_threads)
        return y,
    return run


def _conv_weight_grad_case(rng):
    x, gy = _small_ints(rng, 4, 16, 6, 5), _small_ints(rng, 4, 16, 6, 5)

    def run(n_threads):
        packed = np.zeros(_direct.packed_size(1, 16, 16, 3, 3), np.float32)
        _direct.conv_weight_grad(x, gy, packed, **DIRECT_GEOMETRY, n_threads=n_threads)
        return packed,
    return run


# padding maps of 6 planes: reflect rows (pad 2, 1) and circular columns (pad 3, 0)
PAD_ROWS = np.array([2, 1, 0, 1, 2, 3, 4, 3], np.int64)
PAD_COLS = np.array([3, 4, 5, 0, 1, 2, 3, 4, 5], np.int64)


def _pad_gather_case(rng):
    x = _f32(rng, 6, 5, 6)

    def run(n_threads):
        out = np.full((6, 8, 9), np.nan, np.float32)
        _pad.gather(x, out, PAD_ROWS, PAD_COLS, n_threads)
        return out,
    return run


def _pad_scatter_add_case(rng):
    grad = _f32(rng, 6, 8, 9)

    def run(n_threads):
        gx = np.full((6, 5, 6), np.nan, np.float32)
        _pad.scatter_add(grad, gx, PAD_ROWS, PAD_COLS, n_threads)
        return gx,
    return run


CASES = {
    "_pad.gather": _pad_gather_case,
    "_pad.scatter_add": _pad_scatter_add_case,
    "_im2col.im2col": _im2col_case,
    "_im2col.col2im": _col2im_case,
    "_im2col.rows_to_batch": _rows_to_batch_case,
    "_im2col.batch_to_rows": _batch_to_rows_case,
    "_im2col.channel_sums": _channel_sums_case,
    "_pool.max_pool_forward": _max_pool_forward_case,
    "_pool.max_pool_backward": _max_pool_backward_case,
    "_pool.avg_pool_forward": _avg_pool_forward_case,
    "_pool.avg_pool_backward": _avg_pool_backward_case,
    "_activations.relu_forward": _relu_forward_case,
    "_activations.relu_backward": _relu_backward_case,
    "_optim.adam_update": _adam_update_case,
    "_optim.sgd_update": _sgd_update_case,
    "_direct.conv": _conv_case,
    "_direct.conv_weight_grad": _conv_weight_grad_case,
}
KERNELS = sorted(_threaded_kernels() | set(CASES))


@pytest.mark.parametrize("n_threads", THREAD_COUNTS)
@pytest.mark.parametrize("kernel", KERNELS)
def test_any_thread_count_gives_the_one_thread_result(kernel, n_threads, rng):
    assert kernel in CASES, f"{kernel} takes n_threads but has no case here"
    assert kernel in _threaded_kernels(), f"{kernel} has a case but takes no n_threads"
    if kernel.startswith("_direct.") and not _direct.available():
        pytest.skip("the direct kernels need AVX-512")
    run = CASES[kernel](rng)
    want, got = run(1), run(n_threads)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
        assert g.tobytes() == w.tobytes()  # bit for bit, the sign of zeros too
    assert not any(np.isnan(w).any() for w in want if w.dtype.kind == "f"), "unfilled output"
