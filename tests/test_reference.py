"""Checks of the NumPy oracle itself (tests/reference.py).

Hand-worked examples and self-consistency run everywhere; the randomised comparison
with torch.nn.functional runs where torch is installed.
"""
import numpy as np
import pytest

import reference as ref

DTYPES = [np.float32, np.float64]
SWEEP_CASES = 150


# ------------------------------------------------------------------ hand-worked examples


def test_conv2d_hand_example():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    y = ref.conv2d(x, w, bias=np.array([0.5]), stride=2)
    # top-left window [[0, 1], [4, 5]] -> 0 + 2 + 12 + 20 = 34
    expected = np.array([[34.0, 54.0], [114.0, 134.0]]) + 0.5
    np.testing.assert_array_equal(y[0, 0], expected)


def test_conv2d_same_even_kernel_pads_bottom_right():
    # with a 2x2 all-ones kernel and "same" the extra zero row/column is at the bottom/right,
    # so y[i, j] = x[i, j] + x[i, j+1] + x[i+1, j] + x[i+1, j+1] (zero past the end)
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    y = ref.conv2d(x, np.ones((1, 1, 2, 2)), padding="same")
    xp = np.pad(x[0, 0], ((0, 1), (0, 1)))
    expected = xp[:-1, :-1] + xp[:-1, 1:] + xp[1:, :-1] + xp[1:, 1:]
    np.testing.assert_array_equal(y[0, 0], expected)


def test_conv2d_groups_is_per_group_convolution():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 5, 5))
    w = rng.standard_normal((6, 2, 3, 3))
    y = ref.conv2d(x, w, groups=2)
    np.testing.assert_allclose(y[:, :3], ref.conv2d(x[:, :2], w[:3]), rtol=1e-12)
    np.testing.assert_allclose(y[:, 3:], ref.conv2d(x[:, 2:], w[3:]), rtol=1e-12)


def test_conv_transpose2d_hand_example():
    # stride 2 spreads each input element's copy of the 2x2 kernel 2 apart: no overlap,
    # so the output is the kernel scaled by each element, tiled; output_padding 1 adds a
    # last row and column that only the bias reaches; padding 1 crops the first and last
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    w = np.array([[[[1.0, 10.0], [100.0, 1000.0]]]])
    y = ref.conv_transpose2d(x, w, np.array([0.5]), stride=2, output_padding=1)
    assert y.shape == (1, 1, 5, 5)
    tiled = np.kron(x[0, 0], w[0, 0])
    np.testing.assert_array_equal(y[0, 0, :4, :4], tiled + 0.5)
    np.testing.assert_array_equal(y[0, 0, 4], 0.5)
    np.testing.assert_array_equal(y[0, 0, :, 4], 0.5)
    cropped = ref.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)
    np.testing.assert_array_equal(cropped[0, 0], np.pad(tiled, ((0, 1), (0, 1)))[1:4, 1:4])
    # stride 1: the taps overlap and add up (a full convolution with the unflipped kernel)
    y = ref.conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(y[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


def test_conv_transpose_output_size_rule():
    assert ref.conv_transpose_output_size(4, 3, 2, 1, 1, 1) == 8  # (4-1)*2 - 2 + 2 + 1 + 1
    assert ref.conv_transpose_output_size(5, 3, 1, 0, 0, 1) == 7
    assert ref.conv_transpose_output_size(3, 2, 3, 0, 2, 1) == 10
    assert ref.conv_transpose_output_size(4, 3, 1, 2, 1, 2) == 5  # output_padding < dilation


def test_max_pool_hand_example_ties_nan_and_padding():
    x = np.array([[[[1.0, 3.0, 3.0],
                    [2.0, np.nan, 0.0],
                    [-np.inf, -np.inf, 5.0]]]])
    y, idx = ref.max_pool2d(x, 2, stride=1, padding=1)
    assert y.shape == idx.shape == (1, 1, 4, 4)
    # window at output (0, 2) covers input (0, 1), (0, 2): tie of 3s, first wins
    assert y[0, 0, 0, 2] == 3.0 and idx[0, 0, 0, 2] == 1
    # windows touching (1, 1) are NaN with that index
    assert np.isnan(y[0, 0, 1:3, 1:3]).all() and (idx[0, 0, 1:3, 1:3] == 4).all()
    # bottom-left corner window only has -inf: value -inf, index of its first in-bounds tap
    assert y[0, 0, 3, 0] == -np.inf and idx[0, 0, 3, 0] == 6
    assert idx.dtype == np.int64


def test_avg_pool_hand_example_ceil_mode_divisors():
    # H = W = 5, k=2, s=2, p=1, ceil: the ceil formula gives 4 windows per axis, but the
    # last would start at 5 = H + p (inside the end padding) and is dropped -> 3.
    x = np.ones((1, 1, 5, 5))
    y = ref.avg_pool2d(x, 2, 2, 1, ceil_mode=True, count_include_pad=True)
    assert y.shape == (1, 1, 3, 3)
    # windows along one axis: [-1, 1) count 2 with 1 real; [1, 3) 2 real; [3, 5) 2 real
    axis = np.array([0.5, 1.0, 1.0])
    np.testing.assert_allclose(y[0, 0], np.outer(axis, axis))
    y = ref.avg_pool2d(x, 2, 2, 1, ceil_mode=True, count_include_pad=False)
    np.testing.assert_allclose(y, 1.0)
    # H=6, k=3, s=2, p=1: windows start at -1, 1, 3, 5 (5 < H + p, so the last is kept);
    # [-1, 2) counts 3 with 2 real, the middle ones 3 and 3, and [5, 8) is clipped to
    # [-1, 7): 2 counted, 1 real.
    y = ref.avg_pool2d(np.ones((1, 1, 6, 6)), 3, 2, 1, ceil_mode=True)
    assert y.shape == (1, 1, 4, 4)
    axis = np.array([2 / 3, 1.0, 1.0, 0.5])
    np.testing.assert_allclose(y[0, 0], np.outer(axis, axis))


def test_avg_pool_ceil_window_past_padding_counts_less():
    # H=4, k=3, s=2, p=1, ceil: windows start at -1, 1, 3; the last covers [3, 6) but
    # with count_include_pad it is clipped to [-1, 5): 2 counted, 1 real.
    x = np.ones((1, 1, 4, 1))
    y = ref.avg_pool2d(x, (3, 1), (2, 1), (1, 0), ceil_mode=True, count_include_pad=True)
    np.testing.assert_allclose(y[0, 0, :, 0], [2 / 3, 1.0, 0.5])


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_divisor_override_divides_every_window_alike(count_include_pad):
    # the same H=4 windows: sums 2, 3, 1 of ones (the first and last clipped), each / 5
    x = np.ones((1, 1, 4, 1))
    kw = dict(kernel_size=(3, 1), stride=(2, 1), padding=(1, 0), ceil_mode=True,
              count_include_pad=count_include_pad, divisor_override=5)
    np.testing.assert_allclose(ref.avg_pool2d(x, **kw)[0, 0, :, 0], [2 / 5, 3 / 5, 1 / 5])
    gx = ref.avg_pool2d_backward(np.ones((1, 1, 3, 1)), x.shape, **kw)
    np.testing.assert_allclose(gx[0, 0, :, 0], [1 / 5, 2 / 5, 1 / 5, 2 / 5])


def test_pool_output_size_rule():
    assert ref.pool_output_size(5, 2, 2, 1, 1, False) == 3
    assert ref.pool_output_size(5, 2, 2, 1, 1, True) == 3  # dropped window
    assert ref.pool_output_size(6, 3, 2, 1, 1, True) == 4
    assert ref.pool_output_size(6, 3, 2, 0, 1, True) == 3
    assert ref.pool_output_size(7, 3, 2, 0, 1, True) == 3
    assert ref.pool_output_size(8, 3, 2, 0, 1, True) == 4
    assert ref.pool_output_size(8, 3, 2, 0, 1, False) == 3
    assert ref.pool_output_size(7, 2, 1, 0, 3, False) == 4


def test_first_taps_and_empty_windows_by_hand():
    # windows starting at -1, 0, 1 with dilation 3: first taps at or after 0 are 2, 0, 1
    np.testing.assert_array_equal(ref.first_taps(3, 1, 1, 3), [2, 0, 1])
    # starting at -2 with dilation 4: 2; at -5 with dilation 2: 1
    np.testing.assert_array_equal(ref.first_taps(1, 1, 2, 4), [2])
    np.testing.assert_array_equal(ref.first_taps(2, 7, 5, 2), [1, 2])
    # H = 2, k = 2, p = 1, dilation 3: taps -1 and 2 miss; W = 3: first columns 2, 0
    y, idx = ref.max_pool2d(np.ones((1, 1, 2, 3)), 2, 1, 1, 3)
    np.testing.assert_array_equal(y, [[[[-np.inf, -np.inf]]]])
    np.testing.assert_array_equal(idx, [[[[8, 6]]]])
    assert ref.has_empty_window(2, 2, 1, 1, 3, False)
    assert not ref.has_empty_window(3, 2, 1, 1, 3, False)
    # the backward adds nothing for an index past the plane, in any plane
    gx = ref.max_pool2d_backward(np.ones((1, 2, 1, 2)), np.array([[[[8, 1]], [[6, 5]]]]),
                                 (1, 2, 2, 3))
    np.testing.assert_array_equal(gx.reshape(2, 6), [[0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1]])


# --------------------------------------------------------- self-consistency (adjoints)


@pytest.mark.parametrize("seed", range(20))
def test_reference_backward_is_adjoint_of_forward(seed):
    rng = np.random.default_rng(seed)
    case = ref.random_conv_case(rng)
    x = rng.standard_normal(case["x_shape"])
    w = rng.standard_normal(case["w_shape"])
    y = ref.conv2d(x, w, **case["kwargs"])
    dy = rng.standard_normal(y.shape)
    gx, gw, _ = ref.conv2d_backward(dy, x, w, **case["kwargs"])
    lhs = np.vdot(y, dy)
    assert np.isclose(lhs, np.vdot(x, gx), rtol=1e-10, atol=1e-10)
    assert np.isclose(lhs, np.vdot(w, gw), rtol=1e-10, atol=1e-10)

    case = ref.random_pool_case(rng, "avg")
    x = rng.standard_normal(case["x_shape"])
    y = ref.avg_pool2d(x, **case["kwargs"])
    dy = rng.standard_normal(y.shape)
    gx = ref.avg_pool2d_backward(dy, x.shape, **case["kwargs"])
    assert np.isclose(np.vdot(y, dy), np.vdot(x, gx), rtol=1e-10, atol=1e-10)

    case = ref.random_pool_case(rng, "max")
    x = rng.standard_normal(case["x_shape"])
    y, idx = ref.max_pool2d(x, **case["kwargs"])
    np.testing.assert_array_equal(
        y, np.take_along_axis(x.reshape(x.shape[0], x.shape[1], -1),
                              idx.reshape(idx.shape[0], idx.shape[1], -1), axis=2).reshape(y.shape))
    dy = rng.standard_normal(y.shape)
    gx = ref.max_pool2d_backward(dy, idx, x.shape)
    assert np.isclose(np.vdot(y, dy), np.vdot(x, gx), rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------------ versus torch


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_conv2d_matches_torch(dtype, torch_oracle, assert_close, sweep):
    rng = np.random.default_rng(101)
    for i in range(SWEEP_CASES):
        case = ref.random_conv_case(rng)
        x = rng.standard_normal(case["x_shape"]).astype(dtype)
        w = rng.standard_normal(case["w_shape"]).astype(dtype)
        b = rng.standard_normal(case["w_shape"][0]).astype(dtype) if case["bias"] else None
        kw = case["kwargs"]

        def check():
            y = ref.conv2d(x, w, b, **kw)
            dy = rng.standard_normal(y.shape).astype(dtype)
            ty, tgx, tgw, tgb = torch_oracle.conv2d(x, w, b, grad_out=dy, **kw)
            assert_close(y, ty, dtype, "y")
            gx, gw, gb = ref.conv2d_backward(dy, x, w, bias=b is not None, **kw)
            assert_close(gx, tgx, dtype, "grad_x")
            assert_close(gw, tgw, dtype, "grad_weight")
            if b is not None:
                assert_close(gb, tgb, dtype, "grad_bias")

        sweep.check(f"case {i}: {case}", check)
    sweep.assert_none(SWEEP_CASES)


@pytest.mark.parametrize("seed", range(20))
def test_reference_conv_transpose_is_adjoint_of_conv2d(seed):
    # the transposed convolution of x by w is the input gradient of the convolution by w
    # that maps its output back to x's shape: <conv(z), x> = <z, conv_transpose(x)>
    rng = np.random.default_rng(seed)
    case = ref.random_conv_transpose_case(rng)
    kw = dict(case["kwargs"])
    x = rng.standard_normal(case["x_shape"])
    w = rng.standard_normal(case["w_shape"])
    y = ref.conv_transpose2d(x, w, **kw)
    dy = rng.standard_normal(y.shape)
    gx, gw, _ = ref.conv_transpose2d_backward(dy, x, w, **kw)
    lhs = np.vdot(y, dy)
    assert np.isclose(lhs, np.vdot(x, gx), rtol=1e-10, atol=1e-10)
    assert np.isclose(lhs, np.vdot(w, gw), rtol=1e-10, atol=1e-10)
    kw.pop("output_padding")
    # the convolution of y's size has x's size, plus output_padding // stride rows and
    # columns (output_padding >= stride is allowed below the dilation) for which the
    # transposed convolution has no input: cut off, it is the adjoint
    z = rng.standard_normal(y.shape)
    conv_z = ref.conv2d(z, w, **kw)[:, :, :x.shape[2], :x.shape[3]]
    assert conv_z.shape == x.shape
    assert np.isclose(np.vdot(conv_z, x), np.vdot(z, y), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_conv_transpose2d_matches_torch(dtype, torch_oracle, assert_close, sweep):
    rng = np.random.default_rng(404)
    for i in range(SWEEP_CASES):
        case = ref.random_conv_transpose_case(rng)
        x = rng.standard_normal(case["x_shape"]).astype(dtype)
        w = rng.standard_normal(case["w_shape"]).astype(dtype)
        F = case["w_shape"][1] * case["kwargs"]["groups"]
        b = rng.standard_normal(F).astype(dtype) if case["bias"] else None
        kw = case["kwargs"]

        def check():
            y = ref.conv_transpose2d(x, w, b, **kw)
            dy = rng.standard_normal(y.shape).astype(dtype)
            ty, tgx, tgw, tgb = torch_oracle.conv_transpose2d(x, w, b, grad_out=dy, **kw)
            assert_close(y, ty, dtype, "y")
            gx, gw, gb = ref.conv_transpose2d_backward(dy, x, w, bias=b is not None, **kw)
            assert_close(gx, tgx, dtype, "grad_x")
            assert_close(gw, tgw, dtype, "grad_weight")
            if b is not None:
                assert_close(gb, tgb, dtype, "grad_bias")

        sweep.check(f"case {i}: {case}", check)
    sweep.assert_none(SWEEP_CASES)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_max_pool2d_matches_torch(dtype, torch_oracle, assert_close, sweep):
    rng = np.random.default_rng(202)
    for i in range(SWEEP_CASES):
        case = ref.random_pool_case(rng, "max")
        # integer values: plenty of ties, so the first-maximum rule is exercised
        x = rng.integers(-3, 4, size=case["x_shape"]).astype(dtype)
        kw = case["kwargs"]

        def check():
            y, idx = ref.max_pool2d(x, **kw)
            dy = rng.standard_normal(y.shape).astype(dtype)
            ty, tidx, tgx = torch_oracle.max_pool2d(x, grad_out=dy, **kw)
            assert_close(y, ty, dtype, "y")
            np.testing.assert_array_equal(idx, tidx, err_msg="indices")
            assert_close(ref.max_pool2d_backward(dy, idx, x.shape), tgx, dtype, "grad_x")

        sweep.check(f"case {i}: {case}", check)
    sweep.assert_none(SWEEP_CASES)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_avg_pool2d_matches_torch(dtype, torch_oracle, assert_close, sweep):
    rng = np.random.default_rng(303)
    for i in range(SWEEP_CASES):
        case = ref.random_pool_case(rng, "avg")
        x = rng.standard_normal(case["x_shape"]).astype(dtype)
        kw = case["kwargs"]

        def check():
            y = ref.avg_pool2d(x, **kw)
            dy = rng.standard_normal(y.shape).astype(dtype)
            ty, tgx = torch_oracle.avg_pool2d(x, grad_out=dy, **kw)
            assert_close(y, ty, dtype, "y")
            assert_close(ref.avg_pool2d_backward(dy, x.shape, **kw), tgx, dtype, "grad_x")

        sweep.check(f"case {i}: {case}", check)
    sweep.assert_none(SWEEP_CASES)


def random_empty_window_case(rng):
    """dict(x_shape, kwargs) of a max_pool2d call whose windows hold no input element
    along one axis (shorter than the dilation), the other axis drawn freely."""
    while True:
        d = int(rng.integers(2, 6))
        k = int(rng.integers(2, 5))
        p = int(rng.integers(1, k // 2 + 1))
        s = int(rng.integers(1, 4))
        n = int(rng.integers(1, d))
        ceil_mode = bool(rng.random() < 0.5)
        other = dict(k=int(rng.integers(1, 4)), s=int(rng.integers(1, 3)),
                     d=int(rng.integers(1, 3)), n=int(rng.integers(3, 8)))
        other["p"] = int(rng.integers(0, other["k"] // 2 + 1))
        if (ref.pool_output_size(n, k, s, p, d, ceil_mode) >= 1
                and ref.has_empty_window(n, k, s, p, d, ceil_mode)
                and ref.pool_output_size(other["n"], other["k"], other["s"], other["p"],
                                         other["d"], ceil_mode) >= 1):
            break
    axes = [(n, k, s, p, d), tuple(other[key] for key in "nkspd")]
    if rng.random() < 0.5:
        axes.reverse()
    (H, kh, sh, ph, dh), (W, kw, sw, pw, dw) = axes
    x_shape = (int(rng.integers(1, 3)), int(rng.integers(1, 3)), H, W)
    return dict(x_shape=x_shape, kwargs=dict(kernel_size=(kh, kw), stride=(sh, sw),
                                             padding=(ph, pw), dilation=(dh, dw),
                                             ceil_mode=ceil_mode))


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_max_pool_empty_windows_match_torch(dtype, torch_oracle, assert_close, sweep):
    rng = np.random.default_rng(404)
    for i in range(60):
        case = random_empty_window_case(rng)
        x = rng.integers(-3, 4, size=case["x_shape"]).astype(dtype)
        kw = case["kwargs"]

        def check():
            y, idx = ref.max_pool2d(x, **kw)
            assert (y == -np.inf).all()
            dy = rng.standard_normal(y.shape).astype(dtype)
            ty, tidx, tgx, _ = torch_oracle.max_pool2d_past_the_plane(x, dy, **kw)
            np.testing.assert_array_equal(y, ty)
            np.testing.assert_array_equal(idx, tidx, err_msg="indices")
            # inside the planes (torch writes the rest past them)
            assert_close(ref.max_pool2d_backward(dy, idx, x.shape), tgx, dtype, "grad_x")

        sweep.check(f"case {i}: {case}", check)
    sweep.assert_none(60)


def test_reference_max_pool_nan_and_neg_inf_match_torch(torch_oracle):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 7, 6))
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.2] = -np.inf
    for kw in [dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
               dict(kernel_size=(2, 3), stride=1, dilation=(2, 1)),
               dict(kernel_size=2)]:
        y, idx = ref.max_pool2d(x, **kw)
        ty, tidx = torch_oracle.max_pool2d(x, **kw)
        np.testing.assert_array_equal(y, ty)  # NaN == NaN for assert_array_equal
        np.testing.assert_array_equal(idx, tidx)
