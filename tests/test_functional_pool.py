"""Tests of cynet.functional.max_pool2d / avg_pool2d and their backward functions.

Each kernel is checked four ways: against the NumPy reference (tests/reference.py) on
awkward hand-picked geometries, against central-difference numerical gradients, by the
adjoint identity of forward and backward, and (where torch is installed) against
torch.nn.functional on a seeded random sweep. Max pooling also has tie, NaN and
infinity tests; layout, aliasing and argument checking have their own tests.
"""
import numpy as np
import pytest

import reference as ref
from cynet import functional as F
from cynet._geometry import pool_geometry
from cynet.engine import pool as engine_pool

DTYPES = [np.float32, np.float64]


def case(case_id, x_shape, **kwargs):
    return pytest.param(dict(x_shape=x_shape, kwargs=kwargs), id=case_id)


# geometries valid for both poolings: (N, C, H, W), options
POOL_CASES = [
    case("k2", (2, 3, 6, 8), kernel_size=2),
    case("k2_long_rows", (1, 2, 4, 301), kernel_size=2),  # 150 outputs a row, odd width
    case("k3_s2", (2, 3, 7, 8), kernel_size=3, stride=2),
    case("k3_s2_p1", (2, 3, 7, 8), kernel_size=3, stride=2, padding=1),
    case("nonsquare_even", (2, 2, 9, 7), kernel_size=(2, 4), stride=(3, 1), padding=(1, 2)),
    case("stride_not_dividing", (1, 3, 10, 9), kernel_size=3, stride=(4, 2)),
    case("stride_gt_kernel", (2, 2, 9, 10), kernel_size=2, stride=3, padding=1),
    case("list_args", (2, 2, 8, 9), kernel_size=[3, 2], stride=[2, 1], padding=[1, 1]),
    case("ceil_partial_window", (2, 3, 7, 6), kernel_size=2, ceil_mode=True),
    case("ceil_dropped_window", (2, 3, 5, 5), kernel_size=2, stride=2, padding=1, ceil_mode=True),
    case("ceil_past_padding", (2, 3, 6, 6), kernel_size=3, stride=2, padding=1, ceil_mode=True),
    case("ceil_nonsquare", (1, 2, 8, 7), kernel_size=(3, 2), stride=(2, 3), padding=(1, 0),
         ceil_mode=True),
    case("ceil_no_effect", (2, 2, 6, 6), kernel_size=2, ceil_mode=True),
    case("batch1", (1, 4, 6, 6), kernel_size=3, stride=1, padding=1),
    case("H1", (2, 3, 1, 9), kernel_size=(1, 3), stride=(1, 2)),
    case("W1", (2, 3, 8, 1), kernel_size=(3, 1), stride=(2, 1), padding=(1, 0), ceil_mode=True),
    case("k1", (2, 3, 5, 4), kernel_size=1),
    case("k1_s2", (2, 3, 5, 4), kernel_size=1, stride=2),
    case("global", (2, 3, 5, 7), kernel_size=(5, 7)),
    case("overlapping_pad", (2, 3, 8, 8), kernel_size=4, stride=1, padding=2),
    case("larger", (4, 8, 33, 35), kernel_size=3, stride=2, padding=1),
    # the unrolled 2x2 / stride-2 path and the windows it leaves to the general one
    case("k2_odd_floor", (2, 3, 7, 9), kernel_size=2),
    case("k2_odd_ceil", (2, 3, 7, 9), kernel_size=2, ceil_mode=True),
    case("k2_odd_rows_ceil", (1, 2, 5, 8), kernel_size=2, stride=2, ceil_mode=True),
    case("k2_H2_W1_ceil", (2, 2, 2, 1), kernel_size=2, ceil_mode=True),
    # per side ((top, bottom), (left, right)), each side at most half the kernel, and
    # "same" at any stride (TensorFlow's split): forms PyTorch's pools lack
    case("per_side", (2, 3, 7, 8), kernel_size=3, stride=2, padding=((0, 1), (1, 0))),
    case("per_side_lists_even", (1, 2, 6, 9), kernel_size=(2, 4), stride=(2, 3),
         padding=[[1, 0], [0, 2]]),
    case("per_side_ceil", (2, 2, 7, 6), kernel_size=3, stride=2, padding=((1, 0), (0, 1)),
         ceil_mode=True),
    case("per_side_ceil_bottom_only", (1, 3, 5, 5), kernel_size=2, stride=2,
         padding=((0, 1), (0, 1)), ceil_mode=True),
    case("same_stride2", (2, 3, 7, 8), kernel_size=3, stride=2, padding="same"),
    case("same_even_kernel_odd_size", (2, 2, 7, 5), kernel_size=2, padding="same"),
    case("same_stride1", (1, 2, 5, 6), kernel_size=(3, 2), stride=1, padding="same"),
    case("same_ceil", (2, 2, 9, 6), kernel_size=(3, 4), stride=(2, 3), padding="same",
         ceil_mode=True),
    case("valid", (2, 3, 7, 6), kernel_size=3, stride=2, padding="valid"),
]

# max pooling only
DILATION_CASES = [
    case("dilation", (2, 3, 9, 10), kernel_size=3, stride=1, dilation=2),
    case("dilation_pair_pad", (2, 3, 9, 10), kernel_size=(2, 3), stride=(1, 2), padding=1,
         dilation=(3, 2)),
    case("dilation_ceil", (2, 2, 10, 9), kernel_size=3, stride=2, padding=1, dilation=2,
         ceil_mode=True),
    case("dilation_list", (1, 2, 7, 8), kernel_size=[2, 2], dilation=[2, 3], stride=[1, 1]),
    case("dilation_per_side", (2, 2, 9, 8), kernel_size=3, stride=2, dilation=(2, 3),
         padding=((1, 0), (0, 1)), ceil_mode=True),
]
MAX_CASES = POOL_CASES + DILATION_CASES

# Dilated windows that hold no input element: -inf with PyTorch's index, that of the
# window's first taps at or after 0, past the end of a row (an index inside the plane,
# "aliasing" another element) or of the plane. With padding <= kernel // 2 such a window
# needs an axis shorter than the dilation, and then every window along it is empty.
EMPTY_WINDOW_CASES = [
    case("rows_past_the_plane", (1, 1, 2, 3), kernel_size=2, stride=1, padding=1, dilation=3),
    case("columns_alias_and_past", (1, 1, 3, 2), kernel_size=2, stride=1, padding=1,
         dilation=3),
    case("both_axes", (2, 1, 2, 2), kernel_size=2, stride=1, padding=1, dilation=3),
    case("ceil_nonsquare", (2, 2, 2, 3), kernel_size=(2, 3), padding=(1, 0), dilation=(3, 1),
         ceil_mode=True),
    case("even_kernel_past", (2, 3, 4, 6), kernel_size=(2, 3), stride=1, padding=1,
         dilation=(5, 3)),
    case("ceil_stride_past", (1, 2, 3, 5), kernel_size=2, stride=(1, 2), padding=1,
         dilation=(4, 2), ceil_mode=True),
    case("alias", (2, 2, 6, 4), kernel_size=(3, 2), stride=1, padding=1, dilation=(3, 5)),
    case("alias_stride_not_dividing", (1, 3, 7, 3), kernel_size=(3, 2), stride=(2, 1),
         padding=(0, 1), dilation=(2, 4), ceil_mode=True),
    case("alias_and_past_ceil", (2, 2, 6, 4), kernel_size=2, stride=(3, 2), padding=1,
         dilation=(3, 5), ceil_mode=True),
    case("dilation_one_way", (1, 2, 3, 3), kernel_size=2, stride=(1, 2), padding=1,
         dilation=(1, 4), ceil_mode=True),
    case("H1", (2, 2, 1, 6), kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), dilation=2,
         ceil_mode=True),
    case("W1", (1, 2, 6, 1), kernel_size=(1, 2), stride=1, padding=(0, 1), dilation=2),
]


def pick(cases, *ids):
    found = [p for p in cases if p.id in ids]
    assert len(found) == len(ids), ids
    return found


def distinct_values(shape, rng, dtype=np.float64):
    """A shuffled ramp: all values distinct and 1 apart, so no ties or near-ties."""
    n = int(np.prod(shape))
    return (rng.permutation(n) - n / 2).astype(dtype).reshape(shape)


def make_x(shape, dtype, rng, values):
    if values == "normal":
        return rng.standard_normal(shape).astype(dtype)
    if values == "ties":  # small integers: many equal maxima in a window
        return rng.integers(-2, 3, size=shape).astype(dtype)
    if values == "distinct":
        return distinct_values(shape, rng, dtype)
    raise AssertionError(values)


def gather(x, idx):
    """x at the per-plane flat positions idx, and 0 at a position past the plane (the
    index PyTorch gives a window without an input element)."""
    N, C = x.shape[:2]
    flat = np.concatenate([x.reshape(N, C, -1), np.zeros((N, C, 1), x.dtype)], axis=2)
    at = np.minimum(idx.reshape(N, C, -1), flat.shape[2] - 1)
    return np.take_along_axis(flat, at, axis=2).reshape(idx.shape)


def empty_windows(x_shape, kw):
    """Where a window holds no input element: the max-pool of ones is -inf only there."""
    return ref.max_pool2d(np.ones(x_shape), **kw)[0] == -np.inf


# -------------------------------------------------------- comparison helper: max pool


def ref_max_oracle(x, dy, **kw):
    y, idx = ref.max_pool2d(x, **kw)
    return y, idx, ref.max_pool2d_backward(dy, idx, x.shape)


def check_max_pool(x, kw, compare, oracle, rng):
    """cynet's max_pool2d and max_pool2d_backward against ``oracle(x, dy, **kw)``
    -> (y, indices, grad_x)."""
    dtype = x.dtype
    y, idx = F.max_pool2d(x, **kw)
    assert isinstance(idx, np.ndarray) and idx.dtype == np.int64, "indices dtype"
    assert idx.shape == y.shape and idx.flags.c_contiguous
    dy = rng.standard_normal(y.shape).astype(dtype)
    ry, ridx, rgx = oracle(x, dy, **kw)
    compare(y, ry, dtype, "y", rtol=0)  # a maximum is one of the inputs: exact
    np.testing.assert_array_equal(idx, ridx, err_msg="indices")
    real = ~empty_windows(x.shape, kw)  # windows with an input element: y = x[indices]
    compare(gather(x, idx)[real], y[real], dtype, "x[indices]", rtol=0)
    compare(F.max_pool2d_backward(dy, idx, x.shape), rgx, dtype, "grad_x")


# -------------------------------------------------------- comparison helper: avg pool


def ref_avg_oracle(x, dy, **kw):
    return ref.avg_pool2d(x, **kw), ref.avg_pool2d_backward(dy, x.shape, **kw)


def check_avg_pool(x, kw, compare, oracle, rng):
    """cynet's avg_pool2d and avg_pool2d_backward against ``oracle(x, dy, **kw)``
    -> (y, grad_x)."""
    dtype = x.dtype
    y = F.avg_pool2d(x, **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    ry, rgx = oracle(x, dy, **kw)
    compare(y, ry, dtype, "y")
    compare(F.avg_pool2d_backward(dy, x.shape, **kw), rgx, dtype, "grad_x")


# -------------------------------------------------------------------- vs the reference


@pytest.mark.parametrize("values", ["normal", "ties"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", MAX_CASES)
def test_max_pool2d_matches_reference(c, dtype, values, rng, assert_close):
    x = make_x(c["x_shape"], dtype, rng, values)
    check_max_pool(x, c["kwargs"], assert_close, ref_max_oracle, rng)


# PyTorch's divisor_override: None (the window's size), or any non-zero int
DIVISORS = [None, 3, -2]


@pytest.mark.parametrize("divisor_override", DIVISORS)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", POOL_CASES)
def test_avg_pool2d_matches_reference(c, dtype, count_include_pad, divisor_override, rng,
                                      assert_close):
    x = make_x(c["x_shape"], dtype, rng, "normal")
    kw = dict(c["kwargs"], count_include_pad=count_include_pad,
              divisor_override=divisor_override)
    check_avg_pool(x, kw, assert_close, ref_avg_oracle, rng)


def pool_sweep(kind, dtype, rng, n, oracle, assert_close, sweep, empty_windows=False,
               per_side=False):
    """``n`` random cases of ``kind`` pooling checked against ``oracle``; for max, half of
    them integer-valued, so that the tie rule is compared too, with ``empty_windows``
    windows without an input element may be drawn, and with ``per_side`` paddings per
    side and "same" (which PyTorch's pools lack)."""
    check = {"max": check_max_pool, "avg": check_avg_pool}[kind]
    for i in range(n):
        c = ref.random_pool_case(rng, kind, empty_windows, per_side)
        x = make_x(c["x_shape"], dtype, rng, "ties" if kind == "max" and i % 2 else "normal")
        sweep.check(f"case {i}: {c}", lambda: check(x, c["kwargs"], assert_close, oracle, rng))
    sweep.assert_none(n)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_pool_random_sweep_matches_reference(kind, dtype, assert_close, sweep):
    rng = np.random.default_rng({"max": 31, "avg": 32}[kind] + (dtype is np.float64))
    oracle = {"max": ref_max_oracle, "avg": ref_avg_oracle}[kind]
    pool_sweep(kind, dtype, rng, 150, oracle, assert_close, sweep, empty_windows=True,
               per_side=True)


@pytest.mark.parametrize("x_shape, kw, out_hw", [
    # H=W=5, k=2, s=2, p=1, ceil: the formula gives 4, but the 4th window would start at
    # 5 = H + p, inside the end padding, and is dropped
    ((1, 1, 5, 5), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True), (3, 3)),
    ((1, 1, 5, 5), dict(kernel_size=2, stride=2, padding=1, ceil_mode=False), (3, 3)),
    # H=7, k=2, s=2, ceil: a 4th, partial window starting at row 6
    ((1, 1, 7, 7), dict(kernel_size=2, ceil_mode=True), (4, 4)),
    ((1, 1, 7, 7), dict(kernel_size=2, ceil_mode=False), (3, 3)),
    # H=6, k=3, s=2, p=1, ceil: the 4th window starts at 5 < H + p and is kept
    ((1, 1, 6, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (4, 4)),
    ((1, 1, 6, 8), dict(kernel_size=(3, 2), stride=(2, 3), ceil_mode=True), (3, 3)),
])
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_pool_output_shape(pool, x_shape, kw, out_hw):
    x = np.zeros(x_shape)
    y = F.max_pool2d(x, **kw)[0] if pool == "max" else F.avg_pool2d(x, **kw)
    assert y.shape == x_shape[:2] + out_hw


def test_avg_pool2d_divisors_by_hand():
    # H = W = 5, k=3, s=2, p=1, ceil: windows [-1, 2), [1, 4), [3, 6), all inside [-1, 6):
    # counted 3, 3, 3 with count_include_pad; real elements 2, 3, 2
    x = np.ones((1, 1, 5, 5))
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    y = F.avg_pool2d(x, **kw, count_include_pad=True)
    axis = np.array([2 / 3, 1.0, 2 / 3])
    np.testing.assert_allclose(y[0, 0], np.outer(axis, axis), rtol=1e-12)
    np.testing.assert_allclose(F.avg_pool2d(x, **kw, count_include_pad=False), 1.0, rtol=1e-12)
    # H=4, k=3, s=2, p=1, ceil: the last window [3, 6) is clipped to [-1, 5): divisor 2, sum 1
    x = np.ones((1, 1, 4, 1))
    kw = dict(kernel_size=(3, 1), stride=(2, 1), padding=(1, 0), ceil_mode=True)
    np.testing.assert_allclose(F.avg_pool2d(x, **kw)[0, 0, :, 0], [2 / 3, 1.0, 0.5], rtol=1e-12)
    np.testing.assert_allclose(F.avg_pool2d(x, **kw, count_include_pad=False), 1.0, rtol=1e-12)


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_divisor_override_by_hand(count_include_pad):
    # H = W = 5, k=3, s=2, p=1, ceil: the windows hold 2, 3, 2 real elements per axis, so
    # a window of ones sums to their product; every sum is divided by the override, and
    # count_include_pad changes nothing
    x = np.ones((1, 1, 5, 5))
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
              count_include_pad=count_include_pad)
    sums = np.outer([2, 3, 2], [2, 3, 2])
    for divisor in (1, 2, 7, -4):
        y = F.avg_pool2d(x, **kw, divisor_override=divisor)
        np.testing.assert_allclose(y[0, 0], sums / divisor, rtol=1e-15)
        # the gradient of each output spreads 1 / divisor over its window's real elements
        gx = F.avg_pool2d_backward(np.ones_like(y), x.shape, **kw, divisor_override=divisor)
        # windows [-1, 2), [1, 4), [3, 6) cover rows/columns 0..4 once, twice, once, ...
        covering = np.array([1, 2, 1, 2, 1])
        np.testing.assert_allclose(gx[0, 0], np.outer(covering, covering) / divisor, rtol=1e-15)
    # the 2x2, stride-2 unrolled path divides by the override too, not by 4
    y = F.avg_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2, divisor_override=3)
    np.testing.assert_allclose(y[0, 0], np.array([[10, 18], [42, 50]]) / 3, rtol=1e-15)


@pytest.mark.parametrize("forward", [True, False], ids=["forward", "backward"])
def test_avg_pool2d_divisor_override_forms(forward):
    # NumPy ints, and any int within 64 bits as torch takes, give the Python int's result
    x = np.random.default_rng(3).standard_normal((2, 2, 6, 5))
    dy = np.random.default_rng(4).standard_normal((2, 2, 4, 3))

    def run(divisor):
        kw = dict(kernel_size=2, padding=1, divisor_override=divisor)
        if forward:
            return F.avg_pool2d(x, **kw)
        return F.avg_pool2d_backward(dy, x.shape, **kw)

    for divisor, same_as in [(np.int64(3), 3), (np.int32(-2), -2), (np.uint8(5), 5)]:
        np.testing.assert_array_equal(run(divisor), run(same_as))
    for divisor in (2**63 - 1, -2**63, 2**40):
        np.testing.assert_allclose(run(divisor), run(1) / divisor, rtol=1e-15)


# ------------------------------------------------------------- ties, NaN and infinities


def first_in_bounds_taps(n, k, s, p, d, out):
    """Per output position along one axis, the first kernel tap inside [0, n)."""
    firsts = []
    for o in range(out):
        taps = [o * s - p + a * d for a in range(k)]
        firsts.append(next(t for t in taps if 0 <= t < n))
    return np.array(firsts)


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def pool_args(kw, size):
    """Kernel, stride, padding before (top, left) and dilation of a max-pool call's
    options on an input of ``size`` (H, W), as pairs."""
    k = _pair(kw["kernel_size"])
    s = k if kw.get("stride") is None else _pair(kw["stride"])
    d = _pair(kw.get("dilation", 1))
    (pt, _), (pl, _) = ref.conv_pads(kw.get("padding", 0), k, d, s, size)
    return k, s, (pt, pl), d


@pytest.mark.parametrize("fill", [1.5, -np.inf, np.inf])
@pytest.mark.parametrize("c", MAX_CASES)
def test_max_pool2d_all_equal_picks_first_in_bounds_tap(c, fill):
    kw = c["kwargs"]
    x = np.full(c["x_shape"], fill)
    y, idx = F.max_pool2d(x, **kw)
    k, s, p, d = pool_args(kw, x.shape[2:])
    H, W = x.shape[2:]
    rows = first_in_bounds_taps(H, k[0], s[0], p[0], d[0], y.shape[2])
    cols = first_in_bounds_taps(W, k[1], s[1], p[1], d[1], y.shape[3])
    expected = np.broadcast_to(rows[:, None] * W + cols[None, :], y.shape)
    np.testing.assert_array_equal(y, fill)
    np.testing.assert_array_equal(idx, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", pick(MAX_CASES, "k2", "k2_long_rows", "k3_s2_p1",
                                   "nonsquare_even", "ceil_past_padding", "overlapping_pad",
                                   "dilation_pair_pad", "dilation_ceil"))
def test_max_pool2d_nan_propagates(c, dtype, rng, assert_close):
    kw = c["kwargs"]
    x = rng.standard_normal(c["x_shape"]).astype(dtype)
    x[rng.random(x.shape) < 0.08] = np.nan
    y, idx = F.max_pool2d(x, **kw)
    # a window holds a NaN exactly where the max-pool of the NaN mask is 1
    has_nan = ref.max_pool2d(np.isnan(x).astype(np.float64), **kw)[0] == 1
    assert has_nan.any() and not has_nan.all(), "test data should mix NaN and finite windows"
    np.testing.assert_array_equal(np.isnan(y), has_nan)
    assert np.isnan(gather(x, idx)[has_nan]).all(), "a NaN output's index must point at a NaN"
    # and the exact indices follow torch's rule (update on val > max or isnan(val))
    check_max_pool(x, kw, assert_close, ref_max_oracle, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", pick(MAX_CASES, "k2", "k3_s2_p1", "ceil_past_padding",
                                   "overlapping_pad", "dilation_ceil"))
def test_max_pool2d_infinities(c, dtype, rng, assert_close):
    kw = c["kwargs"]
    x = rng.standard_normal(c["x_shape"]).astype(dtype)
    u = rng.random(x.shape)
    x[u < 0.5] = -np.inf
    x[u > 0.95] = np.inf
    x[:, 0] = -np.inf  # a whole plane of -inf: its windows have no finite maximum
    y, _ = F.max_pool2d(x, **kw)
    assert (y[:, 0] == -np.inf).all()
    check_max_pool(x, kw, assert_close, ref_max_oracle, rng)


def test_max_pool2d_backward_ties_send_gradient_to_first_maximum():
    x = np.array([[[[1.0, 2.0, 2.0, 0.0],
                    [2.0, 2.0, 0.0, 0.0]]]])
    y, idx = F.max_pool2d(x, kernel_size=2, stride=2)
    # window 1 holds 1, 2, 2, 2: the first 2 is at (0, 1); window 2 holds 2, 0, 0, 0
    np.testing.assert_array_equal(idx[0, 0], [[1, 2]])
    gx = F.max_pool2d_backward(np.array([[[[10.0, 20.0]]]]), idx, x.shape)
    np.testing.assert_array_equal(gx[0, 0], [[0, 10, 20, 0], [0, 0, 0, 0]])


# ------------------------------------------------------------ numerical gradients


GRAD_CASES = pick(MAX_CASES, "k3_s2_p1", "nonsquare_even", "ceil_past_padding", "W1",
                  "overlapping_pad", "dilation_pair_pad", "per_side_ceil", "same_stride2",
                  "same_even_kernel_odd_size")


def small(c):
    """The case with batch and channels cut to keep finite differences cheap."""
    shape = (1, min(2, c["x_shape"][1])) + c["x_shape"][2:]
    return dict(c, x_shape=shape)


@pytest.mark.parametrize("c", GRAD_CASES)
def test_max_pool2d_gradient_matches_finite_differences(c, rng, assert_close, numerical_grad):
    c = small(c)
    kw = c["kwargs"]
    x = distinct_values(c["x_shape"], rng)  # spaced 1 apart: eps never changes an argmax
    y, idx = F.max_pool2d(x, **kw)
    dy = rng.standard_normal(y.shape)
    num = numerical_grad(lambda: float(np.vdot(F.max_pool2d(x, **kw)[0], dy)), x, 1e-3)
    assert_close(F.max_pool2d_backward(dy, idx, x.shape), num, np.float64, "grad_x", rtol=1e-8)


@pytest.mark.parametrize("divisor_override", [None, 3])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("c", [p for p in GRAD_CASES if "dilation" not in p.id])
def test_avg_pool2d_gradient_matches_finite_differences(c, count_include_pad, divisor_override,
                                                        rng, assert_close, numerical_grad):
    c = small(c)
    kw = dict(c["kwargs"], count_include_pad=count_include_pad,
              divisor_override=divisor_override)
    x = rng.standard_normal(c["x_shape"])
    dy = rng.standard_normal(F.avg_pool2d(x, **kw).shape)
    num = numerical_grad(lambda: float(np.vdot(F.avg_pool2d(x, **kw), dy)), x, 1e-3)
    assert_close(F.avg_pool2d_backward(dy, x.shape, **kw), num, np.float64, "grad_x", rtol=1e-8)


# --------------------------------------------------------------------- adjoint identity


def assert_adjoint(y, dy, x, gx, dtype):
    """<y, dy> == <x, gx>, to a tolerance scaled by the sizes of the terms."""
    a = y.astype(np.float64) * dy
    b = x.astype(np.float64) * gx
    tol = (1e-5 if dtype is np.float32 else 1e-12) * max(np.abs(a).sum(), np.abs(b).sum())
    assert abs(a.sum() - b.sum()) <= tol, (a.sum(), b.sum())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", MAX_CASES)
def test_max_pool2d_backward_is_adjoint(c, dtype, rng):
    # with no ties y = x[indices] is linear in x, and backward is its transpose
    x = distinct_values(c["x_shape"], rng, dtype)
    y, idx = F.max_pool2d(x, **c["kwargs"])
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert_adjoint(y, dy, x, F.max_pool2d_backward(dy, idx, x.shape), dtype)


@pytest.mark.parametrize("divisor_override", DIVISORS)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", POOL_CASES)
def test_avg_pool2d_backward_is_adjoint(c, dtype, count_include_pad, divisor_override, rng):
    kw = dict(c["kwargs"], count_include_pad=count_include_pad,
              divisor_override=divisor_override)
    x = rng.standard_normal(c["x_shape"]).astype(dtype)
    y = F.avg_pool2d(x, **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert_adjoint(y, dy, x, F.avg_pool2d_backward(dy, x.shape, **kw), dtype)


# ----------------------------------------------------- memory layout, aliasing, dtypes


LAYOUT_CASES = pick(MAX_CASES, "k3_s2_p1", "nonsquare_even", "ceil_past_padding", "larger",
                    "dilation_pair_pad")


@pytest.mark.parametrize("c", LAYOUT_CASES)
def test_max_pool2d_any_memory_layout(c, relayout, rng, assert_close):
    kw = c["kwargs"]
    x = make_x(c["x_shape"], np.float32, rng, "ties")
    y, idx = F.max_pool2d(x, **kw)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    gx = F.max_pool2d_backward(dy, idx, x.shape)
    lx, ldy, lidx = relayout(x), relayout(dy), relayout(idx)
    if relayout.kind != "readonly":
        assert not lx.flags.c_contiguous
    ly, lidx_out = F.max_pool2d(lx, **kw)
    assert_close(ly, y, np.float32, "y", rtol=0)
    np.testing.assert_array_equal(lidx_out, idx)
    assert_close(F.max_pool2d_backward(ldy, lidx, x.shape), gx, np.float32, "grad_x")


@pytest.mark.parametrize("c", pick(POOL_CASES, "k3_s2_p1", "nonsquare_even",
                                   "ceil_past_padding", "larger"))
def test_avg_pool2d_any_memory_layout(c, relayout, rng, assert_close):
    kw = dict(c["kwargs"], count_include_pad=False)
    x = make_x(c["x_shape"], np.float32, rng, "normal")
    y = F.avg_pool2d(x, **kw)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    gx = F.avg_pool2d_backward(dy, x.shape, **kw)
    assert_close(F.avg_pool2d(relayout(x), **kw), y, np.float32, "y")
    assert_close(F.avg_pool2d_backward(relayout(dy), x.shape, **kw), gx, np.float32, "grad_x")


def test_pool_backward_argument_forms(rng, assert_close):
    # input_shape as a list or of NumPy ints; indices of any integer dtype
    x = rng.standard_normal((2, 3, 6, 5))
    y, idx = F.max_pool2d(x, 2, ceil_mode=True)
    ya = F.avg_pool2d(x, 2, ceil_mode=True)
    gx = F.max_pool2d_backward(y, idx, x.shape)
    ga = F.avg_pool2d_backward(ya, x.shape, 2, ceil_mode=True)
    for shape in (list(x.shape), tuple(np.int64(n) for n in x.shape)):
        assert_close(F.max_pool2d_backward(y, idx, shape), gx, np.float64, f"max {shape!r}")
        assert_close(F.avg_pool2d_backward(ya, shape, 2, ceil_mode=True), ga, np.float64,
                     f"avg {shape!r}")
    for int_dtype in (np.int32, np.uint16, np.intp):
        assert_close(F.max_pool2d_backward(y, idx.astype(int_dtype), x.shape), gx, np.float64,
                     f"indices {np.dtype(int_dtype)}")


def _check_fresh(results, inputs, dtypes):
    for r, dt in zip(results, dtypes):
        assert isinstance(r, np.ndarray) and r.dtype == dt
        assert r.flags.c_contiguous and r.flags.writeable
        assert not any(np.shares_memory(r, a) for a in inputs)
    for i, r in enumerate(results):
        assert not any(np.shares_memory(r, o) for o in results[i + 1:])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", pick(MAX_CASES, "k2", "ceil_past_padding", "larger",
                                   "dilation_ceil"))
def test_pools_leave_inputs_and_return_fresh_arrays(c, dtype, rng):
    kw = c["kwargs"]
    avg_kw = {k: v for k, v in kw.items() if k != "dilation"}
    x = make_x(c["x_shape"], dtype, rng, "ties")
    y_shape = ref.max_pool2d(x, **kw)[0].shape
    ya_shape = ref.avg_pool2d(x, **avg_kw).shape
    dy = rng.standard_normal(y_shape).astype(dtype)
    dya = rng.standard_normal(ya_shape).astype(dtype)
    inputs = [x, dy, dya]
    saved = [a.copy() for a in inputs]

    y, idx = F.max_pool2d(x, **kw)
    idx_saved = idx.copy()
    inputs.append(idx)
    gx = F.max_pool2d_backward(dy, idx, x.shape)
    ya = F.avg_pool2d(x, **avg_kw)
    gxa = F.avg_pool2d_backward(dya, x.shape, **avg_kw)

    for a, s in zip(inputs, saved + [idx_saved]):
        np.testing.assert_array_equal(a, s, err_msg="an input was modified")
    results = [y, idx, gx, ya, gxa]
    _check_fresh(results, [x, dy, dya], [dtype, np.int64, dtype, dtype, dtype])
    assert not np.shares_memory(gx, idx)
    # results are not views of scratch space that later calls reuse
    kept = [r.copy() for r in results]
    x2 = make_x(c["x_shape"], dtype, rng, "normal")
    _, idx2 = F.max_pool2d(x2, **kw)
    F.max_pool2d_backward(dy * 2, idx2, x.shape)
    F.avg_pool2d(x2, **avg_kw)
    F.avg_pool2d_backward(dya * 2, x.shape, **avg_kw)
    for r, k in zip(results, kept):
        np.testing.assert_array_equal(r, k, err_msg="a result changed after a later call")


# ------------------------------------------------------------------ argument checking


X = np.zeros((2, 3, 6, 6))
X32 = X.astype(np.float32)
DY = np.zeros((2, 3, 3, 3))  # the output of 2x2 pooling of X
IDX = np.zeros((2, 3, 3, 3), dtype=np.int64)


def err(case_id, call, exc, name):
    return pytest.param(call, exc, name, id=case_id)


def _both_pools(case_id, exc, name, **kw):
    """The same bad argument given to max_pool2d and to avg_pool2d."""
    return [err(f"max_{case_id}", lambda: F.max_pool2d(X, **kw), exc, name),
            err(f"avg_{case_id}", lambda: F.avg_pool2d(X, **kw), exc, name)]


POOL_ERRORS = [
    err("max_x_rank3", lambda: F.max_pool2d(X[0], 2), ValueError, r"\bx\b"),
    err("avg_x_rank3", lambda: F.avg_pool2d(X[0], 2), ValueError, r"\bx\b"),
    err("max_x_rank5", lambda: F.max_pool2d(X[None], 2), ValueError, r"\bx\b"),
    *[err(f"{pool}_x_{np.dtype(dt).name}",
          lambda f=f, dt=dt: f(X.astype(dt), 2), TypeError, r"\bx\b")
      for pool, f in (("max", F.max_pool2d), ("avg", F.avg_pool2d))
      for dt in (np.int64, np.int8, np.uint8, bool, np.float16, object)],
    *_both_pools("kernel_size_0", ValueError, r"\bkernel_size\b", kernel_size=0),
    *_both_pools("kernel_size_pair_0", ValueError, r"\bkernel_size\b", kernel_size=(2, 0)),
    *_both_pools("kernel_size_triple", ValueError, r"\bkernel_size\b", kernel_size=(2, 2, 2)),
    *_both_pools("kernel_size_float", TypeError, r"\bkernel_size\b", kernel_size=1.5),
    *_both_pools("kernel_size_str", TypeError, r"\bkernel_size\b", kernel_size="2"),
    *_both_pools("stride_0", ValueError, r"\bstride\b", kernel_size=2, stride=0),
    *_both_pools("stride_pair_negative", ValueError, r"\bstride\b", kernel_size=2,
                 stride=(1, -1)),
    *_both_pools("stride_float", TypeError, r"\bstride\b", kernel_size=2, stride=1.5),
    *_both_pools("padding_negative", ValueError, r"\bpadding\b", kernel_size=2, padding=-1),
    *_both_pools("padding_over_half_kernel", ValueError, r"\bpadding\b", kernel_size=3,
                 padding=2),
    *_both_pools("padding_over_half_kernel_h", ValueError, r"\bpadding\b", kernel_size=(3, 4),
                 padding=(2, 0)),
    *_both_pools("padding_over_half_kernel_w", ValueError, r"\bpadding\b", kernel_size=(4, 3),
                 padding=(0, 2)),
    *_both_pools("padding_k1", ValueError, r"\bpadding\b", kernel_size=1, padding=1),
    *_both_pools("padding_float", TypeError, r"\bpadding\b", kernel_size=2, padding=0.5),
    *_both_pools("kernel_larger_than_input", ValueError, "kernel", kernel_size=7),
    *_both_pools("kernel_larger_than_padded_input", ValueError, "kernel", kernel_size=(2, 10),
                 padding=(1, 1)),
    err("max_dilation_0", lambda: F.max_pool2d(X, 2, dilation=0), ValueError, r"\bdilation\b"),
    err("max_dilation_pair_0",
        lambda: F.max_pool2d(X, 2, dilation=(1, 0)), ValueError, r"\bdilation\b"),
    err("max_dilation_float",
        lambda: F.max_pool2d(X, 2, dilation=1.5), TypeError, r"\bdilation\b"),
    err("max_dilated_kernel_larger_than_input",
        lambda: F.max_pool2d(X, 3, dilation=3), ValueError, "kernel"),
    # max_pool2d_backward
    err("maxb_indices_negative",
        lambda: F.max_pool2d_backward(DY, IDX - 1, X.shape), ValueError, r"\bindices\b"),
    err("maxb_indices_very_negative",
        lambda: F.max_pool2d_backward(DY, IDX - 2**62, X.shape), ValueError, r"\bindices\b"),
    err("maxb_indices_shape",
        lambda: F.max_pool2d_backward(DY, IDX[:, :, :2], X.shape), ValueError, r"\bindices\b"),
    err("maxb_indices_float",
        lambda: F.max_pool2d_backward(DY, IDX.astype(np.float64), X.shape), TypeError,
        r"\bindices\b"),
    err("maxb_indices_bool",
        lambda: F.max_pool2d_backward(DY, IDX.astype(bool), X.shape), TypeError, r"\bindices\b"),
    err("maxb_grad_out_int",
        lambda: F.max_pool2d_backward(DY.astype(np.int64), IDX, X.shape), TypeError,
        r"\bgrad_out\b"),
    err("maxb_grad_out_float16",
        lambda: F.max_pool2d_backward(DY.astype(np.float16), IDX, X.shape), TypeError,
        r"\bgrad_out\b"),
    err("maxb_grad_out_rank",
        lambda: F.max_pool2d_backward(DY[0], IDX[0], X.shape), ValueError, r"\bgrad_out\b"),
    err("maxb_grad_out_batch_mismatch",
        lambda: F.max_pool2d_backward(DY, IDX, (3, 3, 6, 6)), ValueError,
        r"\bgrad_out\b|\binput_shape\b"),
    err("maxb_input_shape_len3",
        lambda: F.max_pool2d_backward(DY, IDX, (2, 3, 6)), ValueError, r"\binput_shape\b"),
    err("maxb_input_shape_len5",
        lambda: F.max_pool2d_backward(DY, IDX, (2, 3, 6, 6, 1)), ValueError, r"\binput_shape\b"),
    err("maxb_input_shape_negative",
        lambda: F.max_pool2d_backward(DY, IDX, (2, 3, -6, 6)), ValueError, r"\binput_shape\b"),
    err("maxb_input_shape_float",
        lambda: F.max_pool2d_backward(DY, IDX, (2, 3, 6, 6.5)), ValueError, r"\binput_shape\b"),
    # avg_pool2d_backward
    err("avgb_grad_out_shape",
        lambda: F.avg_pool2d_backward(DY[:, :, :2], X.shape, 2), ValueError, r"\bgrad_out\b"),
    err("avgb_grad_out_other_geometry",
        lambda: F.avg_pool2d_backward(DY, X.shape, 3, stride=1), ValueError, r"\bgrad_out\b"),
    err("avgb_grad_out_channels",
        lambda: F.avg_pool2d_backward(DY, (2, 4, 6, 6), 2), ValueError, r"\bgrad_out\b"),
    err("avgb_grad_out_rank",
        lambda: F.avg_pool2d_backward(DY[0], X.shape, 2), ValueError, r"\bgrad_out\b"),
    err("avgb_grad_out_int",
        lambda: F.avg_pool2d_backward(DY.astype(np.int32), X.shape, 2), TypeError,
        r"\bgrad_out\b"),
    err("avgb_input_shape_len3",
        lambda: F.avg_pool2d_backward(DY, (2, 3, 6), 2), ValueError, r"\binput_shape\b"),
    err("avgb_input_shape_negative",
        lambda: F.avg_pool2d_backward(DY, (2, -3, 6, 6), 2), ValueError, r"\binput_shape\b"),
    err("avgb_input_shape_float",
        lambda: F.avg_pool2d_backward(DY, (2.5, 3, 6, 6), 2), ValueError, r"\binput_shape\b"),
    err("avgb_padding",
        lambda: F.avg_pool2d_backward(DY, X.shape, 2, padding=2), ValueError, r"\bpadding\b"),
    err("avgb_kernel_size",
        lambda: F.avg_pool2d_backward(DY, X.shape, 0), ValueError, r"\bkernel_size\b"),
    # per side and "same": each side at most half the kernel too
    *[err(f"{name}_{case_id}", lambda call=call, p=p: call(p), exc, pattern)
      for name, call in (("max", lambda p: F.max_pool2d(X, 3, padding=p)),
                         ("avg", lambda p: F.avg_pool2d(X, 3, padding=p)),
                         ("avgb", lambda p: F.avg_pool2d_backward(DY, X.shape, 3, 1, p)))
      for case_id, p, exc, pattern in (
          ("top_over_half", ((2, 0), (0, 0)), ValueError,
           r"padding \(\(2, 0\), \(0, 0\)\) must be at most half of kernel_size"),
          ("right_over_half", [[0, 1], [1, 2]], ValueError, r"\bpadding\b.*half"),
          ("negative_side", ((0, -1), (0, 0)), ValueError, r"\bpadding\b.*>= 0"),
          ("short_side", ((0, 1), (1,)), ValueError, r"\bpadding\b.*per-side"),
          ("float_side", ((0, 1), (1, 0.5)), TypeError, r"\bpadding\b"),
          ("unknown_string", "full", ValueError, r"\bpadding\b.*'same' or 'valid'"))],
    err("max_same_dilated_over_half",
        lambda: F.max_pool2d(X, 2, 1, "same", dilation=3), ValueError,
        r"padding 'same' \(\(1, 2\) rows, \(1, 2\) columns\) must be at most half"),
    err("avgb_kernel_larger_than_input",
        lambda: F.avg_pool2d_backward(DY, X.shape, 8), ValueError, "kernel"),
    # divisor_override: torch refuses 0 ("divisor must be not zero") and anything but an
    # int (bool, float, str: "must be int"), and ints beyond 64 bits ("Overflow")
    *[err(f"{name}_divisor_override_{case_id}", lambda call=call, d=d: call(d), exc,
          rf"\bdivisor_override\b.*{shown}")
      for name, call in (("avg", lambda d: F.avg_pool2d(X, 2, divisor_override=d)),
                         ("avgb", lambda d: F.avg_pool2d_backward(DY, X.shape, 2,
                                                                  divisor_override=d)))
      for case_id, d, exc, shown in (
          ("0", 0, ValueError, "0"), ("np_int_0", np.int64(0), ValueError, "0"),
          ("true", True, TypeError, "True"), ("false", False, TypeError, "False"),
          ("np_bool", np.bool_(True), TypeError, "True"), ("float", 2.0, TypeError, "2.0"),
          ("str", "2", TypeError, "'2'"), ("array", np.array([2]), TypeError, "array"),
          ("2**63", 2**63, ValueError, str(2**63)),
          ("-2**63-1", -2**63 - 1, ValueError, str(-2**63 - 1)))],
]


@pytest.mark.parametrize("call, exc, name", POOL_ERRORS)
def test_pool_argument_errors(call, exc, name):
    with pytest.raises(exc, match=name):
        call()


def test_pool_x_float32_results_stay_float32():
    # one dtype in, the same dtype out, for every pool function
    y, idx = F.max_pool2d(X32, 2)
    assert y.dtype == np.float32 and idx.dtype == np.int64
    assert F.max_pool2d_backward(DY.astype(np.float32), IDX, X.shape).dtype == np.float32
    assert F.avg_pool2d(X32, 2).dtype == np.float32
    assert F.avg_pool2d_backward(DY.astype(np.float32), X.shape, 2).dtype == np.float32


# ---------------------------------------------------------------------------- vs torch

TORCH_SWEEP_CASES = 200  # per dtype and pooling


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool2d_matches_torch_random_sweep(kind, dtype, torch_oracle, assert_close, sweep):
    seed = {"max": 4040, "avg": 5050}[kind] + (dtype is not np.float32)
    torch_pool = getattr(torch_oracle, f"{kind}_pool2d")

    def oracle(x, dy, **kw):
        return torch_pool(x, grad_out=dy, **kw)

    pool_sweep(kind, dtype, np.random.default_rng(seed), TORCH_SWEEP_CASES, oracle,
               assert_close, sweep)


def padded_torch_oracle(torch, kind):
    """torch's pooling, without padding, of an explicitly padded copy of x: what a
    per-side or "same" padding means where no window reaches past the padding (no
    ceil_mode). Max pads with -inf and maps torch's indices back into x's plane; average
    pads with zeros and divides by what count_include_pad or divisor_override says."""
    F_t = torch.nn.functional

    def oracle(x, dy, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
        assert not ceil_mode
        k = _pair(kernel_size)
        s = k if stride is None else _pair(stride)
        d = _pair(dilation)
        (pt, pb), (pl, pr) = ref.conv_pads(padding, k, d, s, x.shape[2:])
        tx = torch.from_numpy(x.copy()).requires_grad_(True)
        fill = -np.inf if kind == "max" else 0.0
        xp = F_t.pad(tx, (pl, pr, pt, pb), value=fill)
        if kind == "max":
            ty, tidx = F_t.max_pool2d(xp, k, s, 0, d, return_indices=True)
            Wp = xp.shape[3]
            idx = (tidx.numpy() // Wp - pt) * x.shape[3] + tidx.numpy() % Wp - pl
        else:
            ty = F_t.avg_pool2d(xp, k, s, 0, divisor_override=divisor_override or 1)
            if divisor_override is None and count_include_pad:  # every tap counts
                ty = ty / (k[0] * k[1])
            elif divisor_override is None:  # the taps on x count
                inside = F_t.pad(torch.ones_like(tx), (pl, pr, pt, pb), value=0.0)
                ty = ty / F_t.avg_pool2d(inside, k, s, 0, divisor_override=1)
        ty.backward(torch.from_numpy(dy.copy()))
        y, gx = ty.detach().numpy(), tx.grad.numpy()
        return (y, idx, gx) if kind == "max" else (y, gx)

    return oracle


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_per_side_and_same_pools_equal_torch_on_a_padded_input(kind, dtype, assert_close,
                                                                sweep):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    oracle = padded_torch_oracle(torch, kind)
    check = {"max": check_max_pool, "avg": check_avg_pool}[kind]
    rng = np.random.default_rng({"max": 6060, "avg": 7070}[kind] + (dtype is np.float64))
    checked = 0
    while checked < 150:
        c = ref.random_pool_case(rng, kind, per_side=True)
        kw = c["kwargs"]
        padding = kw["padding"]
        if kw["ceil_mode"] or not (isinstance(padding, str) or (
                isinstance(padding, (tuple, list)) and isinstance(padding[0], (tuple, list)))):
            continue
        x = make_x(c["x_shape"], dtype, rng, "ties" if kind == "max" and checked % 2
                   else "normal")
        sweep.check(f"case {checked}: {c}", lambda: check(x, kw, assert_close, oracle, rng))
        checked += 1
    sweep.assert_none(checked)


@pytest.mark.parametrize("divisor_override", [1, 2, 5, -3])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", pick(POOL_CASES, "k2", "k3_s2_p1", "nonsquare_even",
                                   "stride_not_dividing", "ceil_dropped_window",
                                   "ceil_past_padding", "ceil_nonsquare", "overlapping_pad"))
def test_avg_pool2d_divisor_override_matches_torch(c, dtype, count_include_pad,
                                                   divisor_override, torch_oracle, rng,
                                                   assert_close):
    def oracle(x, dy, **kw):
        return torch_oracle.avg_pool2d(x, grad_out=dy, **kw)

    kw = dict(c["kwargs"], count_include_pad=count_include_pad,
              divisor_override=divisor_override)
    check_avg_pool(make_x(c["x_shape"], dtype, rng, "normal"), kw, assert_close, oracle, rng)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_nan_and_infinities_match_torch(dtype, torch_oracle, assert_close):
    rng = np.random.default_rng(99)
    x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
    u = rng.random(x.shape)
    x[u < 0.1] = np.nan
    x[(u >= 0.1) & (u < 0.4)] = -np.inf
    x[u > 0.97] = np.inf

    def oracle(x, dy, **kw):
        return torch_oracle.max_pool2d(x, grad_out=dy, **kw)

    for kw in [dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
               dict(kernel_size=(2, 3), stride=1, dilation=(2, 1), padding=(1, 0)),
               dict(kernel_size=2)]:
        check_max_pool(x, kw, assert_close, oracle, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", EMPTY_WINDOW_CASES)
def test_max_pool2d_empty_windows_match_torch(c, dtype, torch_oracle, rng, assert_close):
    # values -inf and indices equal torch's; torch's backward writes the gradient of an
    # index past the plane past the plane (measured with room left there), and what it
    # writes inside the plane is cynet's gradient, which drops the rest
    kw = c["kwargs"]
    x = make_x(c["x_shape"], dtype, rng, "normal")
    y, idx = F.max_pool2d(x, **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    ty, tidx, tgx, past = torch_oracle.max_pool2d_past_the_plane(x, dy, **kw)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(idx, tidx, err_msg="indices")
    assert_close(F.max_pool2d_backward(dy, idx, x.shape), tgx, dtype, "grad_x")
    N, C, H, W = x.shape
    want_past = np.zeros(past.shape)
    flat_idx, flat_dy = idx.reshape(N * C, -1), dy.reshape(N * C, -1)
    for plane in range(N * C):
        beyond = flat_idx[plane] >= H * W
        np.add.at(want_past.reshape(N * C, -1)[plane], flat_idx[plane][beyond] - H * W,
                  flat_dy[plane][beyond])
    assert_close(past, want_past, dtype, "torch's writes past the plane")
    if (idx < H * W).all():  # nothing past a plane: torch's own autograd is safe to run
        check_max_pool(x, kw, assert_close,
                       lambda x, dy, **kw: torch_oracle.max_pool2d(x, grad_out=dy, **kw), rng)


@pytest.mark.parametrize("call", [
    lambda x: F.avg_pool2d(x, 2, padding=1),
    lambda x: F.max_pool2d(x, 1),
    lambda x: F.conv2d(x, np.ones((1, 1, 1, 1)), padding=1),
], ids=["avg", "max", "conv"])
@pytest.mark.parametrize("shape", [(2, 1, 0, 0), (1, 1, 0, 3), (1, 1, 4, 0)])
def test_empty_height_or_width_is_refused_never_answered_with_garbage(call, shape):
    with pytest.raises(ValueError, match=r"\bx\b"):
        call(np.zeros(shape))


# ------------------------------------------------ windows without an input element


def test_max_pool2d_empty_windows_by_hand():
    # k=2, s=1, p=1, dilation 3: along an axis of length 2 the taps -1 and 2 both miss;
    # PyTorch starts each window at its first tap at or after 0, row 2 or column 2
    kw = dict(kernel_size=2, stride=1, padding=1, dilation=3)
    x = np.arange(6.0).reshape(1, 1, 2, 3)  # rows miss: rows 2 x columns 2, 0
    y, idx = F.max_pool2d(x, **kw)
    np.testing.assert_array_equal(y, [[[[-np.inf, -np.inf]]]])
    np.testing.assert_array_equal(idx, [[[[2 * 3 + 2, 2 * 3 + 0]]]])  # both past the plane
    gx = F.max_pool2d_backward(np.ones_like(y), idx, x.shape)
    np.testing.assert_array_equal(gx, np.zeros_like(x))
    x = np.arange(6.0).reshape(1, 1, 3, 2)  # columns miss: rows 2, 0 x column 2
    y, idx = F.max_pool2d(x, **kw)
    np.testing.assert_array_equal(y, [[[[-np.inf], [-np.inf]]]])
    np.testing.assert_array_equal(idx, [[[[2 * 2 + 2], [0 * 2 + 2]]]])
    # 6 is past the plane and passes nothing; 2 is past the end of row 0, so it names
    # element (1, 0), which receives that window's gradient, as in PyTorch
    gx = F.max_pool2d_backward(np.array([[[[1.0], [10.0]]]]), idx, x.shape)
    np.testing.assert_array_equal(gx[0, 0], [[0, 0], [10, 0], [0, 0]])


@pytest.mark.parametrize("values", ["normal", "ties"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", EMPTY_WINDOW_CASES)
def test_max_pool2d_empty_windows_match_reference(c, dtype, values, rng, assert_close):
    x = make_x(c["x_shape"], dtype, rng, values)
    assert empty_windows(x.shape, c["kwargs"]).all(), "the case should have empty windows"
    check_max_pool(x, c["kwargs"], assert_close, ref_max_oracle, rng)
    y, idx = F.max_pool2d(x, **c["kwargs"])
    assert (y == -np.inf).all()
    # the index is geometry alone: row * W + col of the first taps at or after 0
    _, s, p, d = pool_args(c["kwargs"], x.shape[2:])
    W = x.shape[3]
    rows = ref.first_taps(y.shape[2], s[0], p[0], d[0])
    cols = ref.first_taps(y.shape[3], s[1], p[1], d[1])
    np.testing.assert_array_equal(idx, np.broadcast_to(rows[:, None] * W + cols, y.shape))


@pytest.mark.parametrize("c", EMPTY_WINDOW_CASES)
def test_max_pool2d_empty_windows_do_not_depend_on_x(c, rng):
    # no input element in a window: its value and index are the same for any x (its
    # derivative is 0; torch's and cynet's backward follow the index instead, below)
    kw = c["kwargs"]
    y, idx = F.max_pool2d(make_x(c["x_shape"], np.float64, rng, "normal"), **kw)
    for values in ("ties", "distinct"):
        y2, idx2 = F.max_pool2d(make_x(c["x_shape"], np.float64, rng, values), **kw)
        np.testing.assert_array_equal(y2, y)
        np.testing.assert_array_equal(idx2, idx)


def assert_backward_is_adjoint_of_gather(dy, idx, x, dtype):
    """max_pool2d_backward is the transpose of gathering x at the indices (0 past the
    plane): <gather(x, idx), dy> == <x, backward(dy)>."""
    gx = F.max_pool2d_backward(dy, idx, x.shape)
    assert_adjoint(gather(x, idx), dy, x, gx, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", EMPTY_WINDOW_CASES + pick(MAX_CASES, "k3_s2_p1", "dilation_ceil"))
def test_max_pool2d_backward_is_adjoint_of_gather_at_the_indices(c, dtype, rng):
    x = make_x(c["x_shape"], dtype, rng, "normal")
    _, idx = F.max_pool2d(x, **c["kwargs"])
    dy = rng.standard_normal(idx.shape).astype(dtype)
    assert_backward_is_adjoint_of_gather(dy, idx, x, dtype)


def test_max_pool2d_backward_drops_indices_past_the_plane(rng, assert_close):
    # whatever lies past the plane, however far: no gradient, no write anywhere else (the
    # next plane, or past the array, where PyTorch's backward would put it)
    x = rng.standard_normal((2, 3, 4, 5))
    y, idx = F.max_pool2d(x, 2, padding=1)
    dy = rng.standard_normal(y.shape)
    want = F.max_pool2d_backward(dy, idx, x.shape)
    far = idx.copy()
    spots = rng.random(idx.shape) < 0.3
    far[spots] = rng.choice([20, 21, 25, 2**31, 2**62, 2**63 - 1], size=spots.sum())
    dropped = np.where(spots, 0.0, dy)
    got = F.max_pool2d_backward(dy, far, x.shape)
    assert_close(got, F.max_pool2d_backward(dropped, idx, x.shape), np.float64, "grad_x")
    assert not np.array_equal(got, want), "the dropped gradients should have mattered"
    assert_backward_is_adjoint_of_gather(dy, far, x, np.float64)


# --------------------------------- a ReLU fused into the max-pool (the engine's kernel)


def relu_then_pool(x, dy, **kw):
    """The two layers unfused: max-pool of max(x, 0), and the chain rule through both."""
    r = np.maximum(x, 0)
    y, idx = F.max_pool2d(r, **kw)
    gr = F.max_pool2d_backward(dy, idx, x.shape)
    return y, np.where(r > 0, gr, 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("special", ["plain", "ties", "nan", "all_negative"])
@pytest.mark.parametrize("c", pick(MAX_CASES, "k2", "k2_long_rows", "k3_s2_p1",
                                   "nonsquare_even", "ceil_past_padding", "dilation_pair_pad"))
def test_max_pool2d_with_fused_relu_equals_relu_then_pool(c, special, dtype, rng):
    kw = c["kwargs"]
    x = rng.standard_normal(c["x_shape"]).astype(dtype)
    if special == "ties":
        x = make_x(x.shape, dtype, rng, "ties")
        x[x == 0] = -0.0 if dtype == np.float64 else 0.0
    elif special == "nan":
        x[rng.random(x.shape) < 0.1] = np.nan
    elif special == "all_negative":
        x = -np.abs(x)
    geo = pool_geometry(x.shape, kw["kernel_size"], kw.get("stride"), kw.get("padding", 0),
                        kw.get("dilation", 1), kw.get("ceil_mode", False))
    y, idx = engine_pool.max_pool(x, geo, relu=True)
    dy = rng.standard_normal(y.shape).astype(dtype)
    want_y, want_gx = relu_then_pool(x, dy, **kw)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(want_y))
    gx = engine_pool.max_pool_backward(dy, idx, x.shape, relu_output=y)
    np.testing.assert_array_equal(gx, want_gx)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0, 3, 6, 5), (2, 0, 6, 5)])
def test_pooling_an_empty_batch_returns_empty_results(shape, dtype):
    """N = 0 (or C = 0), as torch: empty outputs and empty input gradients."""
    x = np.empty(shape, dtype)
    y, idx = F.max_pool2d(x, 2, padding=1, ceil_mode=True)
    assert y.shape == shape[:2] + (4, 3) and y.dtype == dtype and idx.shape == y.shape
    g = F.max_pool2d_backward(y, idx, shape)
    assert g.shape == shape and g.dtype == dtype
    a = F.avg_pool2d(x, (3, 2), stride=1, padding=1)
    assert a.shape == shape[:2] + (6, 6) and a.dtype == dtype
    g = F.avg_pool2d_backward(a, shape, (3, 2), stride=1, padding=1)
    assert g.shape == shape and g.dtype == dtype
