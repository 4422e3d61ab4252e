"""Tests of cynet.functional.conv_transpose2d / conv_transpose2d_backward.

Each kernel is checked four ways, on every route the engine may take (im2col, and the
direct float32 kernels where the CPU has them): against the NumPy reference
(tests/reference.py) on awkward hand-picked geometries, against central-difference
numerical gradients, by the adjoint identity (and by its relation to conv2d, whose input
gradient it is), and, where torch is installed, against torch.nn.functional on the same
cases and on seeded random sweeps. Layout, aliasing, empty batches and argument checking
have their own tests at the end.
"""
import numpy as np
import pytest

import reference as ref
from cynet import engine, functional as F
from cynet._args import ArgumentError
from cynet._geometry import MAX_EXTENT, conv_transpose_geometry
from cynet.engine import conv as engine_conv

DTYPES = [np.float32, np.float64]
GRAD_NAMES = ("grad_x", "grad_weight", "grad_bias")
ROUTES = ["im2col", "direct"]


def case(case_id, x_shape, w_shape, bias=True, **kwargs):
    return pytest.param(dict(x_shape=x_shape, w_shape=w_shape, bias=bias, kwargs=kwargs),
                        id=case_id)


# (N, C_in, H, W), (C_in, C_out // groups, kh, kw), options
CASES = [
    case("3x3", (2, 3, 5, 4), (3, 4, 3, 3)),
    case("3x3_pad1_nobias", (2, 3, 5, 4), (3, 4, 3, 3), bias=False, padding=1),
    case("stride2_output_padding", (2, 3, 4, 5), (3, 2, 3, 3), stride=2, padding=1,
         output_padding=1),
    case("nonsquare_even_kernel", (2, 3, 4, 5), (3, 5, 2, 4), stride=(2, 3), padding=(1, 2)),
    case("stride_not_dividing", (1, 2, 5, 4), (2, 3, 3, 2), stride=(2, 3)),
    case("output_padding_pair", (2, 2, 3, 4), (2, 3, 3, 2), stride=(3, 2),
         output_padding=(2, 1)),
    case("output_padding_one_axis", (2, 2, 4, 3), (2, 2, 2, 2), stride=(2, 1),
         output_padding=(1, 0)),
    case("output_padding_beyond_padding", (1, 2, 3, 3), (2, 2, 3, 3), stride=3,
         output_padding=2),
    case("output_padding_below_dilation", (2, 2, 4, 5), (2, 3, 3, 2), dilation=(3, 2),
         output_padding=(2, 1)),
    case("output_padding_below_dilation_strided", (2, 2, 4, 4), (2, 3, 2, 3), stride=2,
         dilation=3, output_padding=2, padding=1),
    case("list_args", (2, 2, 4, 5), (2, 3, 3, 3), stride=[3, 2], padding=[2, 0],
         output_padding=[1, 0], dilation=[1, 2]),
    case("dilation", (2, 3, 5, 6), (3, 4, 3, 3), dilation=2, padding=1),
    case("dilation_pair_stride", (2, 3, 5, 4), (3, 2, 2, 3), dilation=(3, 2), stride=(2, 1)),
    case("padding_crops_to_one", (1, 2, 3, 3), (2, 2, 3, 3), padding=2),
    case("padding_larger_than_kernel", (2, 2, 6, 5), (2, 3, 2, 2), stride=3, padding=3),
    case("groups2", (2, 6, 5, 5), (6, 2, 3, 3), groups=2, padding=1),
    case("groups3_stride", (2, 6, 4, 5), (6, 2, 3, 3), groups=3, stride=2, output_padding=1),
    case("depthwise", (2, 4, 5, 4), (4, 1, 3, 3), groups=4, padding=1),
    case("depthwise_multiplier", (2, 3, 4, 5), (3, 2, 3, 3), groups=3, padding=(1, 0),
         stride=2, output_padding=(0, 1)),
    case("batch1", (1, 3, 5, 4), (3, 4, 3, 3), padding=1, stride=2, output_padding=1),
    case("pointwise", (2, 5, 4, 6), (5, 4, 1, 1)),
    case("pointwise_nobias", (3, 5, 4, 6), (5, 4, 1, 1), bias=False),
    case("pointwise_groups", (2, 6, 4, 5), (6, 2, 1, 1), groups=2),
    case("1x1_stride2", (2, 5, 4, 3), (5, 4, 1, 1), stride=2),
    case("1x1_stride2_output_padding", (2, 5, 4, 3), (5, 4, 1, 1), stride=2, output_padding=1),
    case("1x1_dilation_output_padding", (2, 3, 4, 3), (3, 2, 1, 1), dilation=2,
         output_padding=1),
    case("H1", (2, 3, 1, 6), (3, 4, 1, 3)),
    case("W1", (2, 3, 5, 1), (3, 4, 3, 1), padding=(1, 0), stride=(1, 2)),
    case("1x1_input", (2, 3, 1, 1), (3, 4, 1, 1)),
    case("1x1_input_3x3", (2, 3, 1, 1), (3, 4, 3, 3), stride=2, output_padding=1),
    case("stride_larger_than_kernel", (2, 2, 4, 4), (2, 3, 2, 2), stride=4, padding=1,
         output_padding=3),
    case("mixed", (3, 2, 5, 4), (2, 3, 4, 5), stride=(3, 2), padding=(2, 1),
         output_padding=(1, 1), dilation=(1, 2)),
    # the decoder layers of a segmentation net: 2x upsampling, in several chunks
    case("upsample_2x", (4, 16, 16, 16), (16, 8, 4, 4), stride=2, padding=1),
    case("upsample_2x_3x3", (4, 8, 15, 15), (8, 16, 3, 3), stride=2, padding=1,
         output_padding=1),
    case("multi_chunk_batch", (8, 16, 33, 33), (16, 4, 3, 3), padding=1),
    # 16 or more channels per group on both sides: the direct float32 kernels' layers
    case("wide", (2, 32, 7, 6), (32, 16, 3, 3), padding=1),
    case("wide_dilated_output_padding", (2, 16, 6, 7), (16, 32, 3, 2), dilation=2,
         output_padding=1, padding=(1, 0)),
    case("wide_strided", (2, 16, 5, 6), (16, 32, 3, 3), stride=2, padding=1, output_padding=1),
    case("wide_groups", (2, 32, 5, 5), (32, 16, 2, 3), groups=2, padding=(0, 1)),
]

# small, varied cases for the (slow, element by element) numerical gradients
GRAD_CASES = [
    case("plain", (2, 2, 4, 3), (2, 3, 3, 2)),
    case("stride_pad_output_padding", (1, 2, 3, 4), (2, 2, 3, 3), stride=2, padding=1,
         output_padding=1),
    case("dilation_output_padding", (1, 2, 4, 3), (2, 2, 2, 3), dilation=(2, 3),
         output_padding=(1, 2), padding=(0, 1)),
    case("groups", (2, 4, 3, 3), (4, 2, 3, 3), groups=2, padding=1, stride=(1, 2)),
    case("depthwise_even", (1, 3, 4, 3), (3, 2, 2, 2), groups=3, stride=2),
    case("pointwise", (2, 3, 3, 4), (3, 2, 1, 1)),
]


def pick(*ids):
    """The CASES with these ids."""
    found = [p for p in CASES if p.id in ids]
    assert len(found) == len(ids), ids
    return found


def out_channels(c):
    return c["w_shape"][1] * c["kwargs"].get("groups", 1)


def make_inputs(c, dtype, rng):
    x = rng.standard_normal(c["x_shape"]).astype(dtype)
    w = rng.standard_normal(c["w_shape"]).astype(dtype)
    b = rng.standard_normal(out_channels(c)).astype(dtype) if c["bias"] else None
    return x, w, b


@pytest.fixture(params=ROUTES)
def route(request, policy):
    """Each test runs on the im2col route and on the direct kernels (skipped where the
    CPU or build has none); the cases decide which of them fit."""
    if request.param == "direct":
        if not engine.current().direct_conv:
            pytest.skip("no direct convolution kernels here (AVX-512)")
    else:
        policy(direct_conv=False)
    return request.param


def check_conv_transpose(c, dtype, rng, compare, oracle_forward, oracle_backward, bias=None,
                         input_grad=True):
    """The comparison helper of the transposed-convolution family: cynet's forward and
    backward against an oracle (the reference or torch), with every result checked by
    ``compare``."""
    x, w, b = make_inputs(c, dtype, rng)
    kw = c["kwargs"]
    y = F.conv_transpose2d(x, w, b, **kw)
    compare(y, oracle_forward(x, w, b, **kw), dtype, "y")
    dy = rng.standard_normal(y.shape).astype(dtype)
    with_bias = b is not None if bias is None else bias
    got = F.conv_transpose2d_backward(dy, x, w, bias=with_bias, input_grad=input_grad, **kw)
    want = oracle_backward(dy, x, w, b, **kw)
    assert isinstance(got, tuple) and len(got) == 3
    expect_none = (not input_grad, False, not with_bias)
    for name, g, r, none in zip(GRAD_NAMES, got, want, expect_none):
        if none:
            assert g is None, f"{name} should be None"
        else:
            compare(g, r, dtype, name)


def _ref_backward(dy, x, w, b, **kw):
    return ref.conv_transpose2d_backward(dy, x, w, **kw)


# -------------------------------------------------------------------- vs the reference


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", CASES)
def test_conv_transpose2d_matches_reference(c, dtype, route, rng, assert_close):
    check_conv_transpose(c, dtype, rng, assert_close, ref.conv_transpose2d, _ref_backward)


@pytest.mark.parametrize("bias, input_grad", [(False, True), (True, False), (False, False)])
@pytest.mark.parametrize("c", pick("3x3_pad1_nobias", "stride2_output_padding", "depthwise",
                                   "pointwise", "1x1_dilation_output_padding",
                                   "multi_chunk_batch", "wide"))
def test_conv_transpose2d_backward_optional_outputs(c, bias, input_grad, route, rng,
                                                    assert_close):
    # bias=False / input_grad=False give None in that slot and leave the rest unchanged
    check_conv_transpose(c, np.float64, rng, assert_close, ref.conv_transpose2d,
                         _ref_backward, bias=bias, input_grad=input_grad)


@pytest.mark.parametrize("dtype, wide", [(np.float32, False), (np.float64, False),
                                         (np.float32, True)])
def test_conv_transpose2d_random_sweep_matches_reference(dtype, wide, assert_close, sweep):
    rng = np.random.default_rng(31 + wide if dtype is np.float32 else 33)
    n = 100
    for i in range(n):
        c = ref.random_conv_transpose_case(rng, wide=wide)
        sweep.check(f"case {i}: {c}", lambda: check_conv_transpose(
            c, dtype, rng, assert_close, ref.conv_transpose2d, _ref_backward))
    sweep.assert_none(n)


def test_conv_transpose2d_integer_valued_exact(rng):
    # small integers: every product and sum is exact in float32, so results must be too
    x = rng.integers(-4, 5, size=(2, 4, 4, 5)).astype(np.float32)
    w = rng.integers(-4, 5, size=(4, 3, 3, 2)).astype(np.float32)
    b = rng.integers(-4, 5, size=6).astype(np.float32)
    kw = dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), dilation=(1, 2), groups=2)
    y = F.conv_transpose2d(x, w, b, **kw)
    np.testing.assert_array_equal(y, ref.conv_transpose2d(x, w, b, **kw))
    dy = rng.integers(-4, 5, size=y.shape).astype(np.float32)
    for g, r in zip(F.conv_transpose2d_backward(dy, x, w, **kw),
                    ref.conv_transpose2d_backward(dy, x, w, **kw)):
        np.testing.assert_array_equal(g, r)


def test_output_padding_rows_hold_the_bias_alone(rng):
    # stride 3, kernel 2, output_padding 2: the taps reach rows and columns up to 10, so
    # the last two (11, 12) are the bias, exactly
    x = rng.standard_normal((2, 3, 4, 4))
    w = rng.standard_normal((3, 2, 2, 2))
    b = np.array([1.5, -2.0])
    y = F.conv_transpose2d(x, w, b, stride=3, output_padding=2)
    assert y.shape == (2, 2, 13, 13)
    bias_only = b[None, :, None, None]
    for part in (np.s_[:, :, 11:, :], np.s_[:, :, :, 11:],
                 np.s_[:, :, 2::3, :]):  # and the rows between the taps (2 of every 3)
        np.testing.assert_array_equal(y[part], np.broadcast_to(bias_only, y[part].shape))


def test_conv_transpose2d_argument_forms_agree(rng, assert_close):
    # an int, a tuple, a list and NumPy integers all mean the same geometry
    x = rng.standard_normal((2, 3, 5, 4))
    w = rng.standard_normal((3, 4, 3, 3))
    base = F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1, dilation=2)
    for form in [dict(stride=(2, 2), padding=(1, 1), output_padding=(1, 1), dilation=(2, 2)),
                 dict(stride=[2, 2], padding=[1, 1], output_padding=[1, 1], dilation=[2, 2]),
                 dict(stride=np.int64(2), padding=(np.int32(1), 1), output_padding=np.array(1),
                      dilation=np.int16(2))]:
        assert_close(F.conv_transpose2d(x, w, **form), base, np.float64, str(form))


@pytest.mark.parametrize("c, expected", [
    (pick("wide")[0], ["transposed", "forward", "weight_grad"]),
    (pick("wide_dilated_output_padding")[0], ["transposed", "forward", "weight_grad"]),
    (pick("wide_groups")[0], ["transposed", "forward", "weight_grad"]),
    # stride 2: the transposed pass is col2im (the direct kernel would skip taps)
    (pick("wide_strided")[0], ["forward", "weight_grad"]),
], ids=["wide", "wide_dilated_output_padding", "wide_groups", "wide_strided"])
def test_wide_layers_take_the_direct_kernels(c, expected, rng, monkeypatch, assert_close):
    # the direct cases above really run the direct kernels: convT's forward as the
    # transposed direct convolution, its input gradient as the direct forward
    if not engine.current().direct_conv:
        pytest.skip("no direct convolution kernels here (AVX-512)")
    calls = []
    conv, weight_grad = engine_conv._direct_conv, engine_conv._direct_weight_grad
    monkeypatch.setattr(engine_conv, "_direct_conv", lambda *a, transposed=False: calls.append(
        "transposed" if transposed else "forward") or conv(*a, transposed=transposed))
    monkeypatch.setattr(engine_conv, "_direct_weight_grad", lambda *a: calls.append(
        "weight_grad") or weight_grad(*a))
    check_conv_transpose(c.values[0], np.float32, rng, assert_close, ref.conv_transpose2d,
                         _ref_backward)
    assert calls == expected


# ------------------------------------------------------------ numerical gradients


@pytest.mark.parametrize("c", GRAD_CASES)
def test_conv_transpose2d_gradients_match_finite_differences(c, rng, assert_close,
                                                             numerical_grad):
    x, w, _ = make_inputs(c, np.float64, rng)
    b = rng.standard_normal(out_channels(c))
    kw = c["kwargs"]
    dy = rng.standard_normal(F.conv_transpose2d(x, w, b, **kw).shape)

    def loss():
        return float(np.vdot(F.conv_transpose2d(x, w, b, **kw), dy))

    gx, gw, gb = F.conv_transpose2d_backward(dy, x, w, **kw)
    # the loss is linear in each argument, so central differences are exact up to rounding
    for name, got, arg in (("grad_x", gx, x), ("grad_weight", gw, w), ("grad_bias", gb, b)):
        assert_close(got, numerical_grad(loss, arg, 1e-3), np.float64, name, rtol=1e-7)


# ------------------------------------------------- adjoint identity, relation to conv2d


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", CASES)
def test_conv_transpose2d_backward_is_adjoint(c, dtype, route, rng):
    # <convT(x, w), dy> = <x, dx> = <w, dw>: bilinear, and backward is its transpose
    x, w, _ = make_inputs(c, dtype, rng)
    kw = c["kwargs"]
    y = F.conv_transpose2d(x, w, **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    gx, gw, _ = F.conv_transpose2d_backward(dy, x, w, bias=False, **kw)
    products = [y.astype(np.float64) * dy, x.astype(np.float64) * gx,
                w.astype(np.float64) * gw]
    sums = [p.sum() for p in products]
    scale = max(np.abs(p).sum() for p in products)
    tol = (1e-5 if dtype is np.float32 else 1e-12) * scale
    assert abs(sums[0] - sums[1]) <= tol, ("<x, dx>", sums)
    assert abs(sums[0] - sums[2]) <= tol, ("<w, dw>", sums)


def _conv_kwargs(kw):
    return {k: v for k, v in kw.items() if k != "output_padding"}


@pytest.mark.parametrize("c", [p for p in CASES
                               if "output_padding" not in p.values[0]["kwargs"]])
def test_conv_transpose2d_is_the_input_gradient_of_conv2d(c, route, rng, assert_close):
    # without output_padding, conv2d maps convT's output shape back to x's: then convT's
    # forward is conv2d's input gradient, convT's input gradient conv2d's forward, and
    # convT's weight gradient conv2d's weight gradient with input and output swapped
    x, w, _ = make_inputs(c, np.float64, rng)
    kw = c["kwargs"]
    y = F.conv_transpose2d(x, w, **kw)
    dy = rng.standard_normal(y.shape)
    assert F.conv2d(dy, w, **_conv_kwargs(kw)).shape == x.shape
    conv_gx, _, _ = F.conv2d_backward(x, y, w, bias=False, **_conv_kwargs(kw))
    assert_close(y, conv_gx, np.float64, "forward = conv2d's input gradient")
    gx, gw, _ = F.conv_transpose2d_backward(dy, x, w, bias=False, **kw)
    assert_close(gx, F.conv2d(dy, w, **_conv_kwargs(kw)), np.float64,
                 "input gradient = conv2d's forward")
    _, conv_gw, _ = F.conv2d_backward(x, dy, w, bias=False, input_grad=False,
                                      **_conv_kwargs(kw))
    assert_close(gw, conv_gw, np.float64, "weight gradient = conv2d's, roles swapped")


# ---------------------------------------------------------------------------- vs torch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", CASES)
def test_conv_transpose2d_matches_torch(c, dtype, route, torch_oracle, assert_close, rng):
    check_conv_transpose(c, dtype, rng, assert_close, torch_oracle.conv_transpose2d,
                         _torch_backward(torch_oracle))


def _torch_backward(torch_oracle):
    def backward(dy, x, w, b, **kw):
        return torch_oracle.conv_transpose2d(x, w, b, grad_out=dy, **kw)[1:]
    return backward


SWEEP_CASES = 150
SWEEPS = [pytest.param(np.float32, False, id="float32"),
          pytest.param(np.float64, False, id="float64"),
          pytest.param(np.float32, True, id="float32-wide")]


@pytest.mark.parametrize("dtype, wide", SWEEPS)
def test_conv_transpose2d_matches_torch_random_sweep(dtype, wide, torch_oracle, assert_close,
                                                     sweep):
    rng = np.random.default_rng(4040 + wide if dtype is np.float32 else 4042)
    backward = _torch_backward(torch_oracle)
    for i in range(SWEEP_CASES):
        c = ref.random_conv_transpose_case(rng, wide=wide)
        sweep.check(f"case {i}: {c}", lambda: check_conv_transpose(
            c, dtype, rng, assert_close, torch_oracle.conv_transpose2d, backward))
    sweep.assert_none(SWEEP_CASES)


# ------------------------------------------------------ memory layout, aliasing, N = 0


@pytest.mark.parametrize("c", pick("nonsquare_even_kernel", "output_padding_below_dilation",
                                   "depthwise", "pointwise", "mixed", "wide"))
def test_conv_transpose2d_any_memory_layout(c, relayout, rng, assert_close):
    dtype = np.float32
    x, w, b = make_inputs(c, dtype, rng)
    kw = c["kwargs"]
    y = F.conv_transpose2d(x, w, b, **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    grads = F.conv_transpose2d_backward(dy, x, w, **kw)
    lx, lw, lb, ldy = (relayout(a) for a in (x, w, b, dy))
    if relayout.kind != "readonly":
        assert not lx.flags.c_contiguous
    assert_close(F.conv_transpose2d(lx, lw, lb, **kw), y, dtype, "y")
    for name, got, want in zip(GRAD_NAMES, F.conv_transpose2d_backward(ldy, lx, lw, **kw),
                               grads):
        assert_close(got, want, dtype, name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", pick("stride2_output_padding", "depthwise", "pointwise",
                                   "multi_chunk_batch", "wide"))
def test_conv_transpose2d_leaves_inputs_and_returns_fresh_arrays(c, dtype, route, rng):
    x, w, b = make_inputs(c, dtype, rng)
    kw = c["kwargs"]
    dy = rng.standard_normal(ref.conv_transpose2d(x, w, **kw).shape).astype(dtype)
    inputs = (x, w, b, dy)
    saved = [a.copy() for a in inputs]
    y = F.conv_transpose2d(x, w, b, **kw)
    grads = F.conv_transpose2d_backward(dy, x, w, **kw)
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
    F.conv_transpose2d(x2, w2, b2, **kw)
    F.conv_transpose2d_backward(dy * 3, x2, w2, **kw)
    for r, k in zip(results, kept):
        np.testing.assert_array_equal(r, k, err_msg="a result changed after a later call")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("c", pick("stride2_output_padding", "pointwise", "wide_strided",
                                   "wide_dilated_output_padding", "groups3_stride"))
def test_conv_transpose2d_on_an_empty_batch_returns_empty_results(c, dtype, route, rng):
    """N = 0, as torch: an empty output, an empty input gradient, zero weight and bias
    gradients."""
    _, w, b = make_inputs(c, dtype, rng)
    kw = c["kwargs"]
    x = np.empty((0,) + c["x_shape"][1:], dtype)
    y = F.conv_transpose2d(x, w, b, **kw)
    one = ref.conv_transpose2d(np.zeros((1,) + x.shape[1:], dtype), w, b, **kw)
    assert y.shape == (0,) + one.shape[1:] and y.dtype == dtype
    gx, gw, gb = F.conv_transpose2d_backward(y, x, w, **kw)
    assert gx.shape == x.shape and gx.dtype == dtype
    assert gw.shape == w.shape and gw.dtype == dtype and not gw.any()
    assert gb.shape == b.shape and gb.dtype == dtype and not gb.any()
    gx, gw, gb = F.conv_transpose2d_backward(y, x, w, bias=False, input_grad=False, **kw)
    assert gx is None and gb is None and not gw.any()


# ------------------------------------------------------------------ argument checking


X = np.zeros((2, 4, 5, 5))
W = np.zeros((4, 3, 3, 3))  # (C_in, C_out // groups, kh, kw)
B = np.zeros(3)
DY = np.zeros((2, 3, 7, 7))  # conv_transpose2d(X, W) output
X32, W32 = X.astype(np.float32), W.astype(np.float32)


def err(case_id, call, exc, name):
    return pytest.param(call, exc, name, id=case_id)


convt, convt_bwd = F.conv_transpose2d, F.conv_transpose2d_backward

CONV_TRANSPOSE_ERRORS = [
    err("x_rank3", lambda: convt(X[0], W), ValueError, r"\bx\b"),
    err("x_rank5", lambda: convt(X[None], W), ValueError, r"\bx\b"),
    err("x_empty_plane", lambda: convt(X[:, :, :0], W), ValueError, r"\bx\b"),
    err("weight_rank3", lambda: convt(X, W[0]), ValueError, r"\bweight\b"),
    err("x_int", lambda: convt(X.astype(np.int64), W), TypeError, r"\bx\b"),
    err("x_float16", lambda: convt(X.astype(np.float16), W), TypeError, r"\bx\b"),
    err("x32_weight64", lambda: convt(X32, W), TypeError, r"\bweight\b"),
    err("x64_weight32", lambda: convt(X, W32), TypeError, r"\bweight\b"),
    err("weight_none", lambda: convt(X, None), TypeError, r"\bweight\b"),
    err("bias_dtype", lambda: convt(X32, W32, B), TypeError, r"\bbias\b"),
    # the bias has one value per *output* channel: weight.shape[1] * groups, not C_in
    err("bias_shape_in_channels", lambda: convt(X, W, np.zeros(4)), ValueError, r"\bbias\b"),
    err("bias_2d", lambda: convt(X, W, B[:, None]), ValueError, r"\bbias\b"),
    err("weight_in_conv_layout", lambda: convt(X, np.zeros((3, 4, 3, 3))), ValueError,
        r"\bweight\b"),
    err("groups_not_dividing_in",
        lambda: convt(X, W, groups=3), ValueError, r"\bgroups\b"),
    err("groups_0", lambda: convt(X, W, groups=0), ValueError, r"\bgroups\b"),
    err("groups_float", lambda: convt(X, W, groups=2.0), TypeError, r"\bgroups\b"),
    err("weight_zero_kh", lambda: convt(X, np.zeros((4, 3, 0, 3))), ValueError, r"\bweight\b"),
    err("weight_zero_out", lambda: convt(X, np.zeros((4, 0, 3, 3))), ValueError, r"\bweight\b"),
    err("stride_0", lambda: convt(X, W, stride=0), ValueError, r"\bstride\b"),
    err("stride_pair_0", lambda: convt(X, W, stride=(1, 0)), ValueError, r"\bstride\b"),
    err("stride_triple", lambda: convt(X, W, stride=(1, 1, 1)), ValueError, r"\bstride\b"),
    err("stride_float", lambda: convt(X, W, stride=1.5), TypeError, r"\bstride\b"),
    err("dilation_0", lambda: convt(X, W, dilation=0), ValueError, r"\bdilation\b"),
    err("dilation_float", lambda: convt(X, W, dilation=[1, 1.5]), TypeError, r"\bdilation\b"),
    err("padding_negative", lambda: convt(X, W, padding=-1), ValueError, r"\bpadding\b"),
    err("padding_float", lambda: convt(X, W, padding=0.5), TypeError, r"\bpadding\b"),
    err("padding_same", lambda: convt(X, W, padding="same"), TypeError, r"\bpadding\b.*'same'"),
    err("padding_removes_everything", lambda: convt(X, W, padding=4), ValueError,
        r"\bpadding\b.*-1x-1"),
    err("output_padding_negative", lambda: convt(X, W, output_padding=-1), ValueError,
        r"\boutput_padding\b"),
    err("output_padding_float", lambda: convt(X, W, stride=2, output_padding=0.5), TypeError,
        r"\boutput_padding\b"),
    err("output_padding_not_below_stride", lambda: convt(X, W, output_padding=1), ValueError,
        r"output_padding.*\(1, 1\).*stride=\(1, 1\).*dilation=\(1, 1\)"),
    err("output_padding_equal_to_stride", lambda: convt(X, W, stride=2, output_padding=(1, 2)),
        ValueError, r"output_padding.*\(1, 2\)"),
    err("output_padding_not_below_dilation",
        lambda: convt(X, W, dilation=(2, 3), output_padding=(2, 1)), ValueError,
        r"output_padding.*\(2, 1\)"),
    # backward: the same checks, plus grad_out
    err("bwd_grad_out_shape", lambda: convt_bwd(DY[:, :, :6], X, W), ValueError,
        r"\bgrad_out\b"),
    err("bwd_grad_out_without_output_padding",
        lambda: convt_bwd(np.zeros((2, 3, 10, 10)), X, W, stride=2, padding=1), ValueError,
        r"\bgrad_out\b.*\(2, 3, 9, 9\)"),
    err("bwd_grad_out_channels", lambda: convt_bwd(DY[:, :2], X, W), ValueError,
        r"\bgrad_out\b"),
    err("bwd_grad_out_rank", lambda: convt_bwd(DY[0], X, W), ValueError, r"\bgrad_out\b"),
    err("bwd_grad_out_dtype", lambda: convt_bwd(DY, X32, W32), TypeError, r"\bgrad_out\b"),
    err("bwd_grad_out_none", lambda: convt_bwd(None, X, W), TypeError, r"\bgrad_out\b"),
    err("bwd_x_int", lambda: convt_bwd(DY, X.astype(np.int64), W), TypeError, r"\bx\b"),
    err("bwd_weight_dtype", lambda: convt_bwd(DY, X, W32), TypeError, r"\bweight\b"),
    err("bwd_channels", lambda: convt_bwd(DY, X, np.zeros((2, 3, 3, 3))), ValueError,
        r"\bweight\b"),
    err("bwd_output_padding", lambda: convt_bwd(DY, X, W, output_padding=1), ValueError,
        r"\boutput_padding\b"),
    err("bwd_bias_flag", lambda: convt_bwd(DY, X, W, bias=1), TypeError, r"\bbias\b"),
    err("bwd_input_grad_flag", lambda: convt_bwd(DY, X, W, input_grad="no"), TypeError,
        r"\binput_grad\b"),
]


@pytest.mark.parametrize("call, exc, name", CONV_TRANSPOSE_ERRORS)
def test_conv_transpose2d_argument_errors(call, exc, name):
    with pytest.raises(exc, match=name):
        call()


HUGE = 2**31 - 1

SIZE_ERRORS = [  # (x shape, weight shape, options, the argument blamed)
    ((1, 1, 3, 3), (1, 1, 3, 3), dict(stride=HUGE), "stride"),
    ((1, 1, 2, 2), (1, 1, 3, 3), dict(stride=2**30, padding=1), "stride"),
    ((1, 1, 3, 3), (1, 1, 3, 3), dict(dilation=HUGE), "dilation"),
    ((1, 1, 3, 3), (1, 1, 3, 3), dict(dilation=2**30, output_padding=1), "dilation"),
    ((1, 1, 3, 3), (1, 1, 3, 3), dict(stride=HUGE, padding=HUGE), "stride"),
    # no axis too long, but a plane of 2**40 elements
    ((1, 1, 2, 2), (1, 1, 1, 1), dict(stride=2**20), "stride"),
    # a call's output of more than 2**40 elements: 2**13 samples of 2**14 channels
    ((2**13, 1, 2, 2), (1, 2**14, 3, 3), dict(stride=2**7), "stride"),
    ((2**11, 1, 1, 1), (1, 2**14, 2**10, 2**9), {}, "weight"),
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs, argument", SIZE_ERRORS)
def test_sizes_beyond_the_limits_are_refused_in_closed_form(x_shape, w_shape, kwargs,
                                                            argument):
    # checked on the shapes alone (Python ints), before any array is made
    with pytest.raises(ArgumentError, match=rf"\b{argument}\b") as info:
        conv_transpose_geometry(x_shape, w_shape, kwargs.get("stride", 1),
                                kwargs.get("padding", 0), kwargs.get("output_padding", 0),
                                kwargs.get("dilation", 1), 1)
    assert info.value.argument == argument


def test_huge_stride_is_refused_by_the_public_function_before_allocating():
    x = np.ones((1, 1, 3, 3), np.float32)
    w = np.ones((1, 1, 3, 3), np.float32)
    with pytest.raises(ValueError, match=rf"more than {MAX_EXTENT} rows or columns; reduce stride"):
        F.conv_transpose2d(x, w, stride=2**30)


@pytest.mark.parametrize("which", ["forward", "backward"])
def test_a_memory_error_of_the_scratch_names_the_argument(which, monkeypatch, policy):
    # the machine cannot give the columns: an error about the transposed convolution
    # naming the argument that made them large, not a bare MemoryError
    policy(direct_conv=False)

    def no_memory(self, b, dtype):
        raise MemoryError("test")

    monkeypatch.setattr(engine_conv.Columns, "buffers", no_memory)
    x = np.ones((2, 3, 4, 4), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    with pytest.raises(ArgumentError, match=r"transposed convolution with output 9x9 from an "
                                            r"input of 4x4 \(test\); reduce stride") as info:
        if which == "forward":
            F.conv_transpose2d(x, w, stride=2)
        else:
            F.conv_transpose2d_backward(np.ones((2, 2, 9, 9), np.float32), x, w, stride=2)
    assert info.value.argument == "stride"
