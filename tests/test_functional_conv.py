"""Tests of cynet.functional.conv2d / conv2d_backward.

Each kernel is checked four ways: against the NumPy reference (tests/reference.py) on
awkward hand-picked geometries, against central-difference numerical gradients, by the
adjoint identity of forward and backward, and (where torch is installed) against
torch.nn.functional on a seeded random sweep. Layout, aliasing and argument checking
have their own tests at the end.
"""
import warnings

import numpy as np
import pytest

import reference as ref
from cynet import _im2col, functional as F
from cynet import engine
from cynet._geometry import conv_arguments, conv_geometry
from cynet.engine import conv as engine_conv

DTYPES = [np.float32, np.float64]
GRAD_NAMES = ("grad_x", "grad_weight", "grad_bias")


def case(case_id, x_shape, w_shape, bias=True, **kwargs):
    return pytest.param(dict(x_shape=x_shape, w_shape=w_shape, bias=bias, kwargs=kwargs),
                        id=case_id)


# (N, C, H, W), (F, C // groups, kh, kw), options
CASES = [
    case("3x3", (2, 3, 7, 6), (4, 3, 3, 3)),
    case("3x3_pad1_nobias", (2, 3, 7, 6), (4, 3, 3, 3), bias=False, padding=1),
    case("nonsquare_even_kernel", (2, 3, 8, 9), (5, 3, 2, 4), stride=(2, 3), padding=(1, 2)),
    case("stride_not_dividing", (1, 2, 9, 8), (3, 2, 3, 2), stride=(2, 3)),
    case("list_args", (2, 2, 7, 8), (3, 2, 3, 3), stride=[3, 2], padding=[2, 0], dilation=[1, 2]),
    case("same_odd", (2, 3, 6, 7), (2, 3, 3, 5), padding="same"),
    case("same_even", (2, 3, 6, 7), (2, 3, 2, 4), padding="same"),
    case("same_dilated", (2, 3, 8, 7), (2, 3, 3, 2), padding="same", dilation=(2, 3)),
    case("same_even_dilated", (1, 2, 9, 9), (3, 2, 4, 2), padding="same", dilation=2),
    case("same_1x1", (2, 5, 4, 5), (4, 5, 1, 1), padding="same"),
    # "same" at a stride: ceil(n / s) outputs, TensorFlow's split of the padding
    case("same_stride2_odd", (2, 3, 7, 6), (2, 3, 3, 3), padding="same", stride=2),
    case("same_stride3_even_kernel", (1, 2, 8, 9), (3, 2, 2, 4), padding="same", stride=3),
    case("same_stride_pair_dilated", (2, 2, 9, 7), (2, 2, 3, 2), padding="same",
         stride=(2, 1), dilation=(2, 3)),
    case("same_stride_beyond_kernel", (1, 2, 5, 6), (2, 2, 1, 2), padding="same", stride=4),
    case("valid", (2, 3, 5, 6), (4, 3, 3, 3), padding="valid"),
    case("valid_stride", (2, 3, 8, 7), (4, 3, 3, 2), padding="valid", stride=2),
    case("dilation", (2, 3, 9, 10), (4, 3, 3, 3), dilation=2, padding=1),
    case("dilation_pair_stride", (2, 3, 11, 9), (2, 3, 2, 3), dilation=(3, 2), stride=(2, 1)),
    case("dilated_kernel_fills_padded_input", (1, 2, 5, 5), (2, 2, 3, 3), dilation=3, padding=1),
    case("groups2", (2, 6, 7, 7), (4, 3, 3, 3), groups=2, padding=1),
    case("groups3_stride", (2, 6, 7, 8), (6, 2, 3, 3), groups=3, stride=2),
    case("depthwise", (2, 4, 7, 6), (4, 1, 3, 3), groups=4, padding=1),
    case("depthwise_multiplier", (2, 3, 7, 6), (6, 1, 3, 3), groups=3, padding=(1, 0), stride=2),
    case("depthwise_same_even", (2, 3, 6, 5), (3, 1, 2, 2), groups=3, padding="same"),
    case("batch1", (1, 3, 7, 6), (4, 3, 3, 3), padding=1),
    case("pointwise", (2, 5, 6, 7), (4, 5, 1, 1)),
    case("pointwise_nobias", (3, 5, 6, 7), (4, 5, 1, 1), bias=False),
    case("pointwise_groups", (2, 6, 6, 7), (4, 3, 1, 1), groups=2),
    case("pointwise_batch1", (1, 3, 4, 4), (2, 3, 1, 1)),
    case("1x1_stride2", (2, 5, 7, 8), (4, 5, 1, 1), stride=2),
    case("1x1_stride_pair", (2, 5, 7, 8), (4, 5, 1, 1), stride=(1, 3)),
    case("1x1_padding", (2, 5, 4, 5), (4, 5, 1, 1), padding=1),
    case("1x1_dilation", (2, 5, 4, 5), (4, 5, 1, 1), dilation=2),
    case("H1", (2, 3, 1, 9), (4, 3, 1, 3)),
    case("W1", (2, 3, 8, 1), (4, 3, 3, 1), padding=(1, 0)),
    case("1x1_input", (2, 3, 1, 1), (4, 3, 1, 1)),
    case("kernel_over_padding_only", (2, 3, 1, 1), (4, 3, 3, 3), padding=1),
    case("kernel_equals_input", (2, 3, 5, 4), (4, 3, 5, 4)),
    # some kernel columns see only padding, for every output column
    case("taps_wholly_in_padding", (2, 3, 4, 1), (2, 3, 3, 5), padding=(1, 2)),
    case("same_dilated_W1", (1, 2, 3, 1), (2, 2, 1, 3), padding="same", dilation=2),
    case("stride_larger_than_kernel", (2, 2, 9, 9), (3, 2, 2, 2), stride=4, padding=1),
    case("mixed", (3, 2, 13, 11), (3, 2, 4, 5), stride=(3, 2), padding=(2, 1), dilation=(1, 2)),
    # per side: ((top, bottom), (left, right)), as tuples or lists, zero sides included
    case("per_side", (2, 3, 7, 6), (4, 3, 3, 2), padding=((0, 2), (1, 0))),
    case("per_side_lists_stride", (1, 2, 8, 9), (3, 2, 2, 3), padding=[[2, 1], [0, 3]],
         stride=(2, 3)),
    case("per_side_bottom_only_1x1", (2, 4, 5, 5), (3, 4, 1, 1), padding=((0, 1), (0, 0))),
    case("per_side_dilated_groups", (2, 4, 6, 7), (4, 2, 2, 3), padding=((3, 0), (1, 2)),
         dilation=(2, 1), groups=2),
    # padding_mode: as torch.nn.Conv2d, at the limits of each (reflect < size, circular <= size)
    case("reflect", (2, 3, 6, 5), (4, 3, 3, 3), padding=1, padding_mode="reflect"),
    case("reflect_at_limit", (1, 2, 3, 4), (2, 2, 3, 3), padding=(2, 3), padding_mode="reflect"),
    case("reflect_same_stride_even", (2, 2, 7, 6), (3, 2, 4, 2), padding="same", stride=2,
         padding_mode="reflect"),
    case("replicate", (2, 3, 5, 6), (4, 3, 3, 2), padding=(2, 1), padding_mode="replicate"),
    case("replicate_beyond_size", (1, 2, 2, 3), (2, 2, 3, 3), padding=4,
         padding_mode="replicate"),
    case("replicate_per_side_groups", (2, 4, 5, 4), (6, 2, 3, 3), groups=2,
         padding=((0, 2), (3, 1)), padding_mode="replicate"),
    case("circular", (2, 3, 5, 6), (4, 3, 3, 3), padding=1, padding_mode="circular"),
    case("circular_at_limit", (1, 2, 3, 2), (2, 2, 3, 2), padding=(3, 2), stride=(2, 1),
         padding_mode="circular"),
    case("circular_same_dilated", (2, 3, 6, 7), (2, 3, 3, 3), padding="same", dilation=2,
         padding_mode="circular"),
    case("circular_depthwise_batch1", (1, 3, 4, 5), (3, 1, 2, 3), groups=3, padding=(1, 2),
         padding_mode="circular"),
    case("reflect_1x1", (2, 3, 4, 4), (2, 3, 1, 1), padding=1, padding_mode="reflect"),
    case("zeros_named", (2, 3, 5, 5), (2, 3, 3, 3), padding=1, padding_mode="zeros"),
    # big enough for the batch to be processed in more than one chunk
    case("multi_chunk_batch", (8, 16, 66, 66), (4, 16, 3, 3)),
    case("multi_chunk_reflect", (8, 16, 40, 40), (20, 16, 3, 3), padding=1,
         padding_mode="reflect"),
    # LeNet's layers, in several chunks
    case("lenet_conv1", (40, 1, 28, 28), (6, 1, 5, 5), padding=2),
    case("lenet_conv2", (40, 6, 14, 14), (16, 6, 5, 5)),
]

# small, varied cases for the (slow, element by element) numerical gradients
GRAD_CASES = [
    case("plain", (2, 2, 5, 4), (3, 2, 3, 2)),
    case("stride_pad", (1, 2, 6, 5), (2, 2, 3, 3), stride=2, padding=1),
    case("dilation", (1, 2, 6, 6), (2, 2, 2, 3), dilation=(2, 1), padding=(0, 1)),
    case("groups", (2, 4, 4, 4), (4, 2, 3, 3), groups=2, padding=1),
    case("depthwise_same_even", (1, 3, 5, 4), (6, 1, 2, 2), groups=3, padding="same"),
    case("pointwise", (2, 3, 3, 4), (2, 3, 1, 1)),
    case("per_side", (1, 2, 4, 5), (2, 2, 2, 3), padding=((1, 0), (2, 1)), stride=(1, 2)),
    case("reflect", (1, 2, 4, 4), (2, 2, 3, 3), padding=(3, 1), padding_mode="reflect"),
    case("replicate_same_stride", (2, 2, 5, 4), (2, 2, 3, 2), padding="same", stride=2,
         padding_mode="replicate"),
    case("circular_groups", (1, 4, 3, 4), (4, 2, 2, 3), groups=2, padding=((3, 1), (2, 4)),
         padding_mode="circular"),
]


def pick(*ids):
    """The CASES with these ids."""
    found = [p for p in CASES if p.id in ids]
    assert len(found) == len(ids), ids
    return found


def make_inputs(c, dtype, rng):
    x = rng.standard_normal(c["x_shape"]).astype(dtype)
    w = rng.standard_normal(c["w_shape"]).astype(dtype)
    b = rng.standard_normal(c["w_shape"][0]).astype(dtype) if c["bias"] else None
    return x, w, b


def check_conv(c, dtype, rng, compare, oracle_forward, oracle_backward, bias=None,
               input_grad=True):
    """The comparison helper of the conv family: cynet's forward and backward against an
    oracle (the reference or torch), with every result checked by ``compare``."""
    x, w, b = make_inputs(c, dtype, rng)
    kw = c["kwargs"]
    y = F.conv2d(x, w, b, **kw)
    compare(y, oracle_forward(x, w, b, **kw), dtype, "y")
    dy = rng.standard_normal(y.shape).astype(dtype)
    with_bias = b is not None if bias is None else bias
    got = F.conv2d_backward(dy, x, w, bias=with_bias, input_grad=input_grad, **kw)
    want = oracle_backward(dy, x, w, b, **kw)
    assert isinstance(got, tuple) and len(got) == 3
    expect_none = (not input_grad, False, not with_bias)
    for name, g, r, none in zip(GRAD_NAMES, got, want, expect_none):
        if none:
            assert g is None, f"{name} should be None"
        else:
            compare(g, r, dtype, name)


def _ref_backward(dy, x, w, b, **kw):
    return ref.conv2d_backward(dy, x, w, **kw)


# -------------------------------------------------------------------- vs the reference


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", CASES)
def test_conv2d_matches_reference(c, dtype, rng, assert_close):
    check_conv(c, dtype, rng, assert_close, ref.conv2d, _ref_backward)


@pytest.mark.parametrize("where", ["x", "weight"])
@pytest.mark.parametrize("bad", [np.inf, np.nan])
@pytest.mark.parametrize("c", pick("lenet_conv2", "same_even", "3x3_pad1_nobias"))
def test_conv2d_backward_non_finite_values_propagate_like_the_reference(c, bad, where, rng):
    # inf / NaN in x or the weights reach exactly the gradients the reference gives them
    # (no 0 * inf = NaN from padding or scratch columns where the true gradient is inf).
    x, w, _ = make_inputs(c, np.float64, rng)
    x, w = np.abs(x) + 0.5, np.abs(w) + 0.5
    target = x if where == "x" else w
    target[(0,) * (target.ndim - 1) + (-1,)] = bad  # last column: seen by extra columns
    kw = c["kwargs"]
    with np.errstate(invalid="ignore"):  # inf * 0 (padding) is NaN in any layout
        dy = np.abs(rng.standard_normal(F.conv2d(x, w, **kw).shape)) + 0.5
        got = F.conv2d_backward(dy, x, w, bias=False, **kw)[:2]
        want = ref.conv2d_backward(dy, x, w, **kw)[:2]
    for name, g, r in zip(GRAD_NAMES, got, want):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(r), err_msg=name)
        np.testing.assert_array_equal(np.isinf(g), np.isinf(r), err_msg=name)
        finite = np.isfinite(r)
        np.testing.assert_allclose(g[finite], r[finite], rtol=1e-10, err_msg=name)


@pytest.mark.parametrize("bias, input_grad", [(False, True), (True, False), (False, False)])
@pytest.mark.parametrize("c", pick("3x3_pad1_nobias", "same_even", "depthwise", "pointwise",
                                   "1x1_padding", "multi_chunk_batch"))
def test_conv2d_backward_optional_outputs(c, bias, input_grad, rng, assert_close):
    # bias=False / input_grad=False give None in that slot and leave the rest unchanged
    check_conv(c, np.float64, rng, assert_close, ref.conv2d, _ref_backward,
               bias=bias, input_grad=input_grad)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_random_sweep_matches_reference(dtype, assert_close, sweep):
    rng = np.random.default_rng(11 if dtype is np.float32 else 12)
    n = 100
    for i in range(n):
        c = ref.random_conv_case(rng)
        sweep.check(f"case {i}: {c}", lambda: check_conv(
            c, dtype, rng, assert_close, ref.conv2d, _ref_backward))
    sweep.assert_none(n)


def test_conv2d_integer_valued_exact(rng):
    # small integers: every product and sum is exact in float32, so results must be too
    x = rng.integers(-4, 5, size=(2, 4, 7, 6)).astype(np.float32)
    w = rng.integers(-4, 5, size=(6, 2, 3, 2)).astype(np.float32)
    b = rng.integers(-4, 5, size=6).astype(np.float32)
    kw = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    y = F.conv2d(x, w, b, **kw)
    np.testing.assert_array_equal(y, ref.conv2d(x, w, b, **kw))
    dy = rng.integers(-4, 5, size=y.shape).astype(np.float32)
    for g, r in zip(F.conv2d_backward(dy, x, w, **kw), ref.conv2d_backward(dy, x, w, **kw)):
        np.testing.assert_array_equal(g, r)


def test_conv2d_argument_forms_agree(rng, assert_close):
    # an int, a tuple, a list and NumPy integers all mean the same geometry
    x = rng.standard_normal((2, 3, 9, 8))
    w = rng.standard_normal((4, 3, 3, 3))
    base = F.conv2d(x, w, stride=2, padding=1, dilation=2)
    for form in [dict(stride=(2, 2), padding=(1, 1), dilation=(2, 2)),
                 dict(stride=[2, 2], padding=[1, 1], dilation=[2, 2]),
                 dict(stride=np.int64(2), padding=(np.int32(1), 1), dilation=np.int16(2))]:
        assert_close(F.conv2d(x, w, **form), base, np.float64, str(form))
    assert_close(F.conv2d(x, w, padding="valid"), F.conv2d(x, w, padding=0), np.float64, "valid")
    assert_close(F.conv2d(x, w, padding="same"), F.conv2d(x, w, padding=1), np.float64, "same")


# ------------------------------------------------------------ numerical gradients


@pytest.mark.parametrize("c", GRAD_CASES)
def test_conv2d_gradients_match_finite_differences(c, rng, assert_close, numerical_grad):
    x, w, _ = make_inputs(c, np.float64, rng)
    b = rng.standard_normal(c["w_shape"][0])
    kw = c["kwargs"]
    dy = rng.standard_normal(F.conv2d(x, w, b, **kw).shape)

    def loss():
        return float(np.vdot(F.conv2d(x, w, b, **kw), dy))

    gx, gw, gb = F.conv2d_backward(dy, x, w, **kw)
    # the loss is linear in each argument, so central differences are exact up to rounding
    for name, got, arg in (("grad_x", gx, x), ("grad_weight", gw, w), ("grad_bias", gb, b)):
        assert_close(got, numerical_grad(loss, arg, 1e-3), np.float64, name, rtol=1e-7)


# --------------------------------------------------------------------- adjoint identity


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", CASES)
def test_conv2d_backward_is_adjoint(c, dtype, rng):
    # <conv(x, w), dy> = <x, dx> = <w, dw>: conv is bilinear and backward is its transpose
    x, w, _ = make_inputs(c, dtype, rng)
    kw = c["kwargs"]
    y = F.conv2d(x, w, **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    gx, gw, _ = F.conv2d_backward(dy, x, w, bias=False, **kw)
    products = [y.astype(np.float64) * dy, x.astype(np.float64) * gx,
                w.astype(np.float64) * gw]
    sums = [p.sum() for p in products]
    scale = max(np.abs(p).sum() for p in products)
    tol = (1e-5 if dtype is np.float32 else 1e-12) * scale
    assert abs(sums[0] - sums[1]) <= tol, ("<x, dx>", sums)
    assert abs(sums[0] - sums[2]) <= tol, ("<w, dw>", sums)


# ----------------------------------------------------- memory layout, aliasing, dtypes


@pytest.mark.parametrize("c", pick("nonsquare_even_kernel", "same_even_dilated", "depthwise",
                                   "pointwise", "1x1_stride_pair", "mixed"))
def test_conv2d_any_memory_layout(c, relayout, rng, assert_close):
    dtype = np.float32
    x, w, b = make_inputs(c, dtype, rng)
    kw = c["kwargs"]
    y = F.conv2d(x, w, b, **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    grads = F.conv2d_backward(dy, x, w, **kw)
    lx, lw, lb, ldy = (relayout(a) for a in (x, w, b, dy))
    if relayout.kind != "readonly":
        assert not lx.flags.c_contiguous
    assert_close(F.conv2d(lx, lw, lb, **kw), y, dtype, "y")
    for name, got, want in zip(GRAD_NAMES, F.conv2d_backward(ldy, lx, lw, **kw), grads):
        assert_close(got, want, dtype, name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", pick("3x3", "dilation", "depthwise", "pointwise",
                                   "multi_chunk_batch"))
def test_conv2d_leaves_inputs_and_returns_fresh_arrays(c, dtype, rng):
    x, w, b = make_inputs(c, dtype, rng)
    kw = c["kwargs"]
    dy = rng.standard_normal(ref.conv2d(x, w, **kw).shape).astype(dtype)
    inputs = (x, w, b, dy)
    saved = [a.copy() for a in inputs]
    y = F.conv2d(x, w, b, **kw)
    grads = F.conv2d_backward(dy, x, w, **kw)
    for a, s in zip(inputs, saved):
        np.testing.assert_array_equal(a, s, err_msg="an input was modified")
    results = (y,) + grads
    for r in results:
        assert r.dtype == dtype and r.flags.c_contiguous and r.flags.writeable
        assert not any(np.shares_memory(r, a) for a in inputs)
    for i, r in enumerate(results):
        assert not any(np.shares_memory(r, o) for o in results[i + 1:])
    # results are not views of scratch space that later calls reuse
    kept = [r.copy() for r in results]
    x2, w2, b2 = make_inputs(c, dtype, rng)
    F.conv2d(x2, w2, b2, **kw)
    F.conv2d_backward(dy * 3, x2, w2, **kw)
    for r, k in zip(results, kept):
        np.testing.assert_array_equal(r, k, err_msg="a result changed after a later call")


# ------------------------------------------------------------------ argument checking


X = np.zeros((2, 4, 6, 6))
W = np.zeros((6, 4, 3, 3))
B = np.zeros(6)
DY = np.zeros((2, 6, 4, 4))  # conv2d(X, W) output
X32, W32 = X.astype(np.float32), W.astype(np.float32)


def err(case_id, call, exc, name):
    return pytest.param(call, exc, name, id=case_id)


CONV_ERRORS = [
    err("x_rank3", lambda: F.conv2d(X[0], W), ValueError, r"\bx\b"),
    err("x_0d", lambda: F.conv2d(np.float64(1), W), ValueError, r"\bx\b.*\(\)"),
    err("bias_0d_one_channel", lambda: F.conv2d(X, W[:1], np.float64(1)), ValueError, r"\bbias\b"),
    err("x_rank5", lambda: F.conv2d(X[None], W), ValueError, r"\bx\b"),
    err("weight_rank3", lambda: F.conv2d(X, W[0]), ValueError, r"\bweight\b"),
    err("x_int", lambda: F.conv2d(X.astype(np.int64), W), TypeError, r"\bx\b"),
    err("x_int32", lambda: F.conv2d(X.astype(np.int32), W.astype(np.int32)), TypeError, r"\bx\b"),
    err("x_bool", lambda: F.conv2d(X.astype(bool), W), TypeError, r"\bx\b"),
    err("x_float16", lambda: F.conv2d(X.astype(np.float16), W), TypeError, r"\bx\b"),
    err("x_object", lambda: F.conv2d(X.astype(object), W), TypeError, r"\bx\b"),
    err("x32_weight64", lambda: F.conv2d(X32, W), TypeError, r"\bweight\b"),
    err("x64_weight32", lambda: F.conv2d(X, W32), TypeError, r"\bweight\b"),
    err("weight_int", lambda: F.conv2d(X, W.astype(np.int64)), TypeError, r"\bweight\b"),
    err("bias_dtype", lambda: F.conv2d(X32, W32, B), TypeError, r"\bbias\b"),
    err("bias_shape", lambda: F.conv2d(X, W, np.zeros(5)), ValueError, r"\bbias\b"),
    err("bias_2d", lambda: F.conv2d(X, W, B[:, None]), ValueError, r"\bbias\b"),
    err("channels", lambda: F.conv2d(X, np.zeros((6, 3, 3, 3))), ValueError, r"\bweight\b"),
    err("channels_groups", lambda: F.conv2d(X, W, groups=2), ValueError, r"\bweight\b"),
    err("groups_not_dividing_out",
        lambda: F.conv2d(X, np.zeros((5, 2, 3, 3)), groups=2), ValueError, r"\bgroups\b"),
    err("groups_0", lambda: F.conv2d(X, W, groups=0), ValueError, r"\bgroups\b"),
    err("groups_negative", lambda: F.conv2d(X, W, groups=-1), ValueError, r"\bgroups\b"),
    err("weight_zero_kh", lambda: F.conv2d(X, np.zeros((6, 4, 0, 3))), ValueError, r"\bweight\b"),
    err("weight_zero_kw", lambda: F.conv2d(X, np.zeros((6, 4, 3, 0))), ValueError, r"\bweight\b"),
    err("stride_0", lambda: F.conv2d(X, W, stride=0), ValueError, r"\bstride\b"),
    err("stride_pair_0", lambda: F.conv2d(X, W, stride=(1, 0)), ValueError, r"\bstride\b"),
    err("stride_negative", lambda: F.conv2d(X, W, stride=-2), ValueError, r"\bstride\b"),
    err("stride_triple", lambda: F.conv2d(X, W, stride=(1, 1, 1)), ValueError, r"\bstride\b"),
    err("stride_float", lambda: F.conv2d(X, W, stride=1.5), TypeError, r"\bstride\b"),
    err("stride_str", lambda: F.conv2d(X, W, stride="2"), TypeError, r"\bstride\b"),
    err("stride_pair_float", lambda: F.conv2d(X, W, stride=(1, 1.5)), TypeError, r"\bstride\b"),
    err("dilation_0", lambda: F.conv2d(X, W, dilation=0), ValueError, r"\bdilation\b"),
    err("dilation_pair_0", lambda: F.conv2d(X, W, dilation=[0, 1]), ValueError, r"\bdilation\b"),
    err("dilation_float", lambda: F.conv2d(X, W, dilation=1.5), TypeError, r"\bdilation\b"),
    err("padding_negative", lambda: F.conv2d(X, W, padding=-1), ValueError, r"\bpadding\b"),
    err("padding_pair_negative",
        lambda: F.conv2d(X, W, padding=(0, -1)), ValueError, r"\bpadding\b"),
    err("padding_float", lambda: F.conv2d(X, W, padding=1.5), TypeError, r"\bpadding\b"),
    err("padding_unknown_string",
        lambda: F.conv2d(X, W, padding="full"), ValueError, r"\bpadding\b"),
    err("padding_per_side_short",
        lambda: F.conv2d(X, W, padding=((1, 2), (1,))), ValueError, r"\bpadding\b"),
    err("padding_per_side_triple",
        lambda: F.conv2d(X, W, padding=((1, 2, 3), (1, 1))), ValueError, r"\bpadding\b"),
    err("padding_per_side_negative",
        lambda: F.conv2d(X, W, padding=((0, 1), (-1, 0))), ValueError, r"\bpadding\b"),
    err("padding_per_side_float",
        lambda: F.conv2d(X, W, padding=((0, 1.5), (1, 0))), TypeError, r"\bpadding\b"),
    err("padding_mode_unknown",
        lambda: F.conv2d(X, W, padding_mode="mirror"), ValueError, r"\bpadding_mode\b"),
    err("padding_mode_case",
        lambda: F.conv2d(X, W, padding_mode="Reflect"), ValueError, "did you mean 'reflect'"),
    err("padding_mode_not_str",
        lambda: F.conv2d(X, W, padding_mode=0), TypeError, r"\bpadding_mode\b"),
    err("padding_mode_none",
        lambda: F.conv2d(X, W, padding_mode=None), TypeError, r"\bpadding_mode\b"),
    # PyTorch's limits: reflect copies no edge twice (pad < size), circular wraps once
    err("reflect_pad_equals_height",
        lambda: F.conv2d(X, W, padding=(6, 0), padding_mode="reflect"), ValueError,
        r"padding \(6, 0\) with padding_mode 'reflect' must be smaller .* 6 rows"),
    err("reflect_per_side_right",
        lambda: F.conv2d(X, W, padding=((0, 0), (0, 6)), padding_mode="reflect"), ValueError,
        r"\bpadding\b.*6 columns"),
    err("reflect_same_on_a_short_input",
        lambda: F.conv2d(X[:, :, :1], np.zeros((6, 4, 3, 1)), padding="same",
                         padding_mode="reflect"), ValueError, r"'same' .*x has 1 rows"),
    err("circular_pad_beyond_width",
        lambda: F.conv2d(X, W, padding=(0, 7), padding_mode="circular"), ValueError,
        r"padding \(0, 7\) with padding_mode 'circular' must be at most .* 6 columns"),
    err("bwd_padding_mode",
        lambda: F.conv2d_backward(DY, X, W, padding_mode="edge"), ValueError,
        r"\bpadding_mode\b"),
    err("bwd_reflect_limit",
        lambda: F.conv2d_backward(np.zeros((2, 6, 16, 4)), X, W, padding=(7, 0),
                                  padding_mode="reflect"), ValueError, r"\bpadding\b"),
    err("kernel_larger_than_input",
        lambda: F.conv2d(X, np.zeros((6, 4, 7, 3))), ValueError, "kernel"),
    err("kernel_larger_than_padded_input",
        lambda: F.conv2d(X, np.zeros((6, 4, 3, 9)), padding=1), ValueError, "kernel"),
    err("dilated_kernel_larger_than_input",
        lambda: F.conv2d(X, W, dilation=(1, 3)), ValueError, "kernel"),
    # backward: the same checks, plus grad_out
    err("bwd_grad_out_shape",
        lambda: F.conv2d_backward(DY[:, :, :3], X, W), ValueError, r"\bgrad_out\b"),
    err("bwd_grad_out_channels",
        lambda: F.conv2d_backward(DY[:, :5], X, W), ValueError, r"\bgrad_out\b"),
    err("bwd_grad_out_rank",
        lambda: F.conv2d_backward(DY[0], X, W), ValueError, r"\bgrad_out\b"),
    err("bwd_grad_out_for_other_stride",
        lambda: F.conv2d_backward(DY, X, W, stride=2), ValueError, r"\bgrad_out\b"),
    err("bwd_grad_out_dtype",
        lambda: F.conv2d_backward(DY, X32, W32), TypeError, r"\bgrad_out\b"),
    err("bwd_grad_out_int",
        lambda: F.conv2d_backward(DY.astype(np.int64), X, W), TypeError, r"\bgrad_out\b"),
    err("bwd_x_int", lambda: F.conv2d_backward(DY, X.astype(np.int64), W), TypeError, r"\bx\b"),
    err("bwd_weight_dtype", lambda: F.conv2d_backward(DY, X, W32), TypeError, r"\bweight\b"),
    err("bwd_x_rank", lambda: F.conv2d_backward(DY, X[0], W), ValueError, r"\bx\b"),
    err("bwd_channels",
        lambda: F.conv2d_backward(DY, X, np.zeros((6, 2, 3, 3))), ValueError, r"\bweight\b"),
    err("bwd_groups", lambda: F.conv2d_backward(DY, X, W, groups=0), ValueError, r"\bgroups\b"),
    err("bwd_stride", lambda: F.conv2d_backward(DY, X, W, stride=0), ValueError, r"\bstride\b"),
    err("bwd_padding",
        lambda: F.conv2d_backward(DY, X, W, padding="full"), ValueError, r"\bpadding\b"),
    err("bwd_kernel",
        lambda: F.conv2d_backward(DY, X, W, dilation=4), ValueError, "kernel"),
]


@pytest.mark.parametrize("call, exc, name", CONV_ERRORS)
def test_conv2d_argument_errors(call, exc, name):
    with pytest.raises(exc, match=name):
        call()


# ---------------------------------------------------------------------------- vs torch

SWEEP_CASES = 200  # per sweep

# float32 with 16 or more filters per group: the direct kernels' layers where the CPU has
# them (every forward there is direct, input and weight gradients where they fit)
SWEEPS = [pytest.param(np.float32, False, id="float32"),
          pytest.param(np.float64, False, id="float64"),
          pytest.param(np.float32, True, id="float32-wide")]


def run_sweep(seed, dtype, wide, sweep, check):
    rng = np.random.default_rng(seed)
    direct = engine_conv.direct_forward_fits
    reached = 0
    for i in range(SWEEP_CASES):
        c = ref.random_conv_case(rng, wide=wide)
        geo = conv_geometry(c["x_shape"], c["w_shape"], **c["kwargs"])
        reached += direct(engine.current(), geo, np.zeros(1, dtype))
        sweep.check(f"case {i}: {c}", lambda: check(c, rng))
    sweep.assert_none(SWEEP_CASES)
    if wide and engine.current().direct_conv:
        assert reached == SWEEP_CASES


@pytest.mark.parametrize("dtype, wide", SWEEPS)
def test_conv2d_matches_reference_random_sweep(dtype, wide, assert_close, sweep):
    run_sweep(2023 + wide, dtype, wide, sweep, lambda c, rng: check_conv(
        c, dtype, rng, assert_close, ref.conv2d, _ref_backward))


@pytest.mark.parametrize("dtype, wide", SWEEPS)
def test_conv2d_matches_torch_random_sweep(dtype, wide, torch_oracle, assert_close, sweep):
    def torch_backward(dy, x, w, b, **kw):
        return torch_oracle.conv2d(x, w, b, grad_out=dy, **kw)[1:]

    run_sweep(2024 + wide if dtype is np.float32 else 2025, dtype, wide, sweep,
              lambda c, rng: check_conv(c, dtype, rng, assert_close, torch_oracle.conv2d,
                                        torch_backward))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding, stride", [(1, 1), ((2, 1), (2, 1)), ("same", 1),
                                             (3, 2)])
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_conv2d_padding_mode_equals_torch_nn_conv2d(mode, padding, stride, dtype, rng,
                                                    assert_close):
    # the module itself, not F.pad: "exactly torch.nn.Conv2d(padding_mode=...)"
    torch = pytest.importorskip("torch")
    tdtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "same" with an even kernel
        m = torch.nn.Conv2d(4, 6, (3, 4), stride=stride, padding=padding, groups=2,
                            padding_mode=mode, dtype=tdtype)
    x = rng.standard_normal((2, 4, 5, 7)).astype(dtype)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = m(tx)
    dy = rng.standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.from_numpy(dy))
    w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
    kw = dict(stride=stride, padding=padding, groups=2, padding_mode=mode)
    assert_close(F.conv2d(x, w, b, **kw), ty.detach().numpy(), dtype, "y")
    gx, gw, gb = F.conv2d_backward(dy, x, w, **kw)
    assert_close(gx, tx.grad.numpy(), dtype, "grad_x")
    assert_close(gw, m.weight.grad.numpy(), dtype, "grad_weight")
    assert_close(gb, m.bias.grad.numpy(), dtype, "grad_bias")


def test_concurrent_calls_from_several_threads_agree_with_serial_results(rng):
    """The thread pool and the per-thread workspaces are shared by concurrent callers."""
    from concurrent.futures import ThreadPoolExecutor

    cases = []
    for seed in range(6):
        r = np.random.default_rng(seed)
        x = r.standard_normal((9, 4, 11, 10)).astype(np.float32)
        w = r.standard_normal((6, 4, 3, 3)).astype(np.float32)
        gy = r.standard_normal((9, 6, 11, 10)).astype(np.float32)
        cases.append((x, w, gy))

    def run(case):
        x, w, gy = case
        return F.conv2d(x, w, padding=1), F.conv2d_backward(gy, x, w, padding=1)

    serial = [run(c) for c in cases]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            for got, want in zip(pool.map(run, cases), serial):
                np.testing.assert_array_equal(got[0], want[0])
                for g, w in zip(got[1], want[1]):
                    np.testing.assert_array_equal(g, w)


def test_zero_dimensional_arrays_work_as_int_arguments(rng):
    x = rng.standard_normal((1, 2, 7, 7))
    w = rng.standard_normal((2, 2, 3, 3))
    np.testing.assert_array_equal(F.conv2d(x, w, stride=np.array(2), padding=np.array(1)),
                                  F.conv2d(x, w, stride=2, padding=1))


@pytest.mark.parametrize("c", CASES)
def test_weight_gradient_in_column_pieces_matches_reference(c, rng, assert_close, policy):
    # force the weight-gradient GEMM into pieces of a few columns (ragged last piece)
    w_shape = c["w_shape"]
    policy(small_gemm=7 * w_shape[0] * w_shape[1] * w_shape[2] * w_shape[3],
           min_weight_grad_piece=1)
    check_conv(c, np.float64, rng, assert_close, ref.conv2d, _ref_backward)


# --------------------------------- a layer's backward reuses its forward's last columns


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("c", CASES)
def test_reused_columns_give_the_same_gradients_to_the_bit(c, threads, rng, policy):
    policy(num_threads=threads)
    x, w, b = make_inputs(c, np.float32, rng)
    kw = c["kwargs"]
    dy = rng.standard_normal(F.conv2d(x, w, b, **kw).shape).astype(np.float32)
    want = F.conv2d_backward(dy, x, w, **kw)
    F.conv2d(x, w, b, **kw)  # leaves its last chunk's columns in this thread's buffer
    got = reusing_backward(dy, x, w, **kw)
    for name, g, r in zip(GRAD_NAMES, got, want):
        np.testing.assert_array_equal(g, r, err_msg=name)


def reusing_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1,
                     padding_mode="zeros"):
    """The backward a Conv2D layer runs: it may reuse the columns its forward left."""
    x, w, _, dy, geo = conv_arguments(x, w, None, stride, padding, dilation, groups,
                                      grad_out=dy, padding_mode=padding_mode)
    return engine_conv.backward(dy, x, w, geo, reuse_columns=True)


LENET_CONV2 = pick("lenet_conv2")[0].values[0]


@pytest.mark.parametrize("between", ["other_input", "other_layer", "backward"])
def test_columns_are_not_reused_once_the_buffer_holds_something_else(between, rng,
                                                                      assert_close):
    x, w, b = make_inputs(LENET_CONV2, np.float64, rng)
    dy = rng.standard_normal(F.conv2d(x, w, b).shape)  # leaves x's columns in the buffer
    if between == "other_input":      # same layer geometry, another array
        F.conv2d(rng.standard_normal(x.shape), w, b)
    elif between == "other_layer":
        F.conv2d(rng.standard_normal((5, 3, 9, 8)), rng.standard_normal((4, 3, 3, 3)))
    else:                             # a backward overwrites the buffer with dcol
        reusing_backward(dy, x, w)
    got = reusing_backward(dy, x, w)
    for name, g, r in zip(GRAD_NAMES, got, ref.conv2d_backward(dy, x, w)):
        assert_close(g, r, np.float64, name)


def test_a_converted_input_is_never_taken_for_the_original(rng, assert_close):
    # a non-contiguous x is copied for the kernels: its columns belong to the copy
    x, w, b = make_inputs(LENET_CONV2, np.float64, rng)
    xs = np.asfortranarray(x)
    dy = rng.standard_normal(F.conv2d(xs, w, b).shape)
    xs[0, 0, 0, 0] += 1.0  # the caller breaks its promise on the original: still exact
    got = reusing_backward(dy, xs, w)
    for name, g, r in zip(GRAD_NAMES, got, ref.conv2d_backward(dy, xs, w)):
        assert_close(g, r, np.float64, name)


@pytest.mark.parametrize("threads", [1, 2])
def test_the_last_chunk_is_not_unrolled_again(threads, rng, monkeypatch, policy):
    policy(num_threads=threads, direct_conv=False)  # the im2col route keeps its columns
    x, w, b = make_inputs(LENET_CONV2, np.float32, rng)
    calls = []
    real = _im2col.im2col
    monkeypatch.setattr(_im2col, "im2col", lambda *a: calls.append(1) or real(*a))
    dy = rng.standard_normal(F.conv2d(x, w, b).shape).astype(np.float32)
    chunks = len(calls)
    calls.clear()
    reusing_backward(dy, x, w)
    # the calling thread's last chunk is reused; so is each pool thread's, when the
    # same pool thread runs the same worker's chunks again (not promised)
    assert chunks - threads <= len(calls) <= chunks - 1
    calls.clear()
    F.conv2d_backward(dy, x, w)  # the public function never reuses
    assert len(calls) == chunks


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("route", ["im2col", "direct"])
@pytest.mark.parametrize("w_shape, kwargs", [
    ((32, 16, 3, 3), dict(padding=1)),                  # direct when the CPU has it
    ((32, 4, 3, 3), dict(stride=2, groups=4)),
    ((8, 16, 1, 1), {}),                                # pointwise
    ((32, 16, 2, 3), dict(padding="same", dilation=2)),
])
def test_conv2d_on_an_empty_batch_returns_empty_results(w_shape, kwargs, route, dtype, rng,
                                                        policy):
    """N = 0, as torch: an empty output, an empty input gradient, zero weight and bias
    gradients, on every route (the im2col route raised IndexError)."""
    if route == "im2col":
        policy(direct_conv=False)
    C = w_shape[1] * kwargs.get("groups", 1)
    x = np.empty((0, C, 9, 8), dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    y = F.conv2d(x, w, b, **kwargs)
    expected = F.conv2d(np.zeros((1,) + x.shape[1:], dtype), w, b, **kwargs).shape
    assert y.shape == (0,) + expected[1:] and y.dtype == dtype
    gx, gw, gb = F.conv2d_backward(y, x, w, **kwargs)
    assert gx.shape == x.shape and gx.dtype == dtype
    assert gw.shape == w.shape and gw.dtype == dtype and not gw.any()
    assert gb.shape == b.shape and gb.dtype == dtype and not gb.any()
    gx, gw, gb = F.conv2d_backward(y, x, w, bias=False, input_grad=False, **kwargs)
    assert gx is None and gb is None and not gw.any()
