"""The direct float32 convolution (cynet._direct), as cynet.functional uses it: the forward
and the weight gradient of layers with >= 16 output channels per group, and the input
gradient of stride-1 layers with >= 16 input channels per group.

Checked against the NumPy reference, with exact integer-valued numerical gradients (the
kernel is float32 only), the adjoint identity, shapes at the edges of its tiles and
blocks, and the guards of the private kernel. Every comparison asserts which route it
took. (test_functional_conv.py runs its float32 cases with >= 16 filters through these
kernels too on such a CPU; its float64 cases always take the im2col route.)
"""
import numpy as np
import pytest

import reference as ref
from cynet import _direct
from cynet import functional as F
from test_functional_conv import GRAD_NAMES, case, check_conv, make_inputs

pytestmark = pytest.mark.skipif(not _direct.available(),
                                reason="this CPU or build has no direct (AVX-512) kernels")


def direct_case(case_id, x_shape, w_shape, direct_gx, direct_gw=True, **kwargs):
    """A conv case (whose forward the direct kernel computes) and whether its input and
    weight gradients are computed by the direct kernels too (the weight gradient: with at
    least 16 taps per kernel row, input channels per group x kernel width)."""
    p = case(case_id, x_shape, w_shape, **kwargs)
    p.values[0].update(direct_gx=direct_gx, direct_gw=direct_gw)
    return p


# (N, C, H, W), (F, C // groups, kh, kw), direct input gradient?, [direct weight
# gradient?], options
CASES = [
    direct_case("16_filters_few_inputs", (2, 3, 7, 6), (16, 3, 3, 3), False, False,
                padding=1),
    direct_case("17_filters", (2, 16, 6, 7), (17, 16, 3, 3), True, padding=1),
    direct_case("33_filters", (1, 16, 5, 9), (33, 16, 2, 3), True, padding="same"),
    direct_case("48_filters_no_bias", (2, 20, 6, 5), (48, 20, 3, 3), True, bias=False,
                padding=(1, 0)),
    # several blocks per row, on a tile of two vectors and one of one
    direct_case("rows_of_31", (2, 16, 5, 31), (40, 16, 3, 3), True, padding=1),
    direct_case("rows_of_25", (1, 16, 3, 25), (32, 16, 1, 3), True, padding=(0, 1)),
    direct_case("one_column", (2, 16, 6, 1), (16, 16, 3, 3), True, padding=1),
    direct_case("stride_dilation", (2, 4, 11, 12), (20, 4, 3, 2), False, False, stride=(2, 3),
                dilation=(2, 1), padding=(2, 1)),
    direct_case("stride_not_dividing", (1, 16, 9, 10), (16, 16, 4, 3), False, stride=(3, 2)),
    direct_case("same_even_dilated", (1, 16, 9, 8), (16, 16, 4, 2), True, padding="same",
                dilation=2),
    direct_case("groups", (2, 32, 6, 6), (32, 16, 3, 3), True, groups=2, padding=1),
    direct_case("groups_few_inputs", (2, 8, 5, 6), (32, 4, 3, 3), False, False, groups=2,
                padding=1),
    direct_case("strided_weight_gradient", (2, 8, 9, 11), (16, 8, 3, 2), False, stride=(2, 3),
                dilation=(1, 2), padding=(1, 2)),
    # some outputs see only padding rows; others one input row
    direct_case("rows_wholly_in_padding", (2, 16, 1, 5), (16, 16, 5, 3), True,
                padding=(3, 1)),
    # padding beyond the kernel's reach: the input gradient takes the im2col route
    direct_case("padding_beyond_kernel", (1, 16, 4, 4), (16, 16, 2, 2), False, padding=2),
    direct_case("valid_kernel_equals_input", (2, 16, 5, 4), (16, 16, 5, 4), True),
    direct_case("batch1", (1, 64, 9, 9), (64, 64, 3, 3), True, padding=1),
    direct_case("simple_json_conv2", (3, 32, 14, 14), (64, 32, 5, 5), True, padding=2),
    direct_case("simple_json_conv1", (3, 1, 28, 28), (32, 1, 5, 5), False, False,
                padding="same"),
]

SMALL = ["17_filters", "33_filters", "one_column", "same_even_dilated", "groups",
         "rows_wholly_in_padding", "stride_not_dividing", "strided_weight_gradient"]


@pytest.fixture
def routes(monkeypatch):
    """Counts the direct kernels' calls: ``routes.conv`` (forward and input gradient) and
    ``routes.weight_grad``; ``routes.clear()`` resets both."""

    class Routes:
        conv = weight_grad = 0

        def clear(self):
            self.conv = self.weight_grad = 0

    counted = Routes()
    for name in ("conv", "weight_grad"):
        real = getattr(_direct, "conv_weight_grad" if name == "weight_grad" else name)

        def call(*args, name=name, real=real):
            setattr(counted, name, getattr(counted, name) + 1)
            return real(*args)

        monkeypatch.setattr(_direct, real.__name__, call)
    return counted


def _ref_backward(dy, x, w, b, **kw):
    return ref.conv2d_backward(dy, x, w, **kw)


@pytest.mark.parametrize("c", CASES)
def test_direct_conv_matches_reference(c, rng, assert_close, routes):
    check_conv(c, np.float32, rng, assert_close, ref.conv2d, _ref_backward)
    # one forward, then one backward whose input gradient is direct or not
    assert (routes.conv, routes.weight_grad) == (1 + c["direct_gx"], c["direct_gw"])


@pytest.mark.parametrize("c", [p for p in CASES if p.id in SMALL])
def test_direct_conv_integer_valued_is_exact_with_exact_numerical_gradients(c, rng, routes,
                                                                           numerical_grad):
    # small integers: every product and sum is exact in float32, so the results equal
    # the reference's, and <conv(x, w), dy> is linear in x and in w: a central
    # difference with a step of 1 is its exact gradient
    x = rng.integers(-3, 4, size=c["x_shape"]).astype(np.float32)
    w = rng.integers(-3, 4, size=c["w_shape"]).astype(np.float32)
    b = rng.integers(-3, 4, size=c["w_shape"][0]).astype(np.float32) if c["bias"] else None
    kw = c["kwargs"]
    y = F.conv2d(x, w, b, **kw)
    np.testing.assert_array_equal(y, ref.conv2d(x, w, b, **kw))
    dy = rng.integers(-3, 4, size=y.shape).astype(np.float32)
    gx, gw, _ = F.conv2d_backward(dy, x, w, **kw)
    want_gx, want_gw, _ = ref.conv2d_backward(dy, x, w, **kw)
    np.testing.assert_array_equal(gx, want_gx)
    np.testing.assert_array_equal(gw, want_gw)
    assert (routes.conv, routes.weight_grad) == (1 + c["direct_gx"], c["direct_gw"])
    routes.clear()

    def loss():
        return np.vdot(F.conv2d(x, w, b, **kw).astype(np.float64), dy)

    np.testing.assert_array_equal(gx, numerical_grad(loss, x, 1.0))
    np.testing.assert_array_equal(gw, numerical_grad(loss, w, 1.0))
    assert routes.conv == 2 * (x.size + w.size)  # every forward ran the direct kernel


@pytest.mark.parametrize("c", CASES)
def test_direct_conv_backward_is_adjoint(c, rng, routes):
    x, w, _ = make_inputs(c, np.float32, rng)
    kw = c["kwargs"]
    y = F.conv2d(x, w, **kw)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    gx, gw, _ = F.conv2d_backward(dy, x, w, bias=False, **kw)
    products = [y.astype(np.float64) * dy, x.astype(np.float64) * gx,
                w.astype(np.float64) * gw]
    sums = [p.sum() for p in products]
    scale = max(np.abs(p).sum() for p in products)
    assert abs(sums[0] - sums[1]) <= 1e-5 * scale, ("<x, dx>", sums)
    assert abs(sums[0] - sums[2]) <= 1e-5 * scale, ("<w, dw>", sums)
    # with bias=False the weight gradient checks that grad_out is finite by its own sum
    assert (routes.conv, routes.weight_grad) == (1 + c["direct_gx"], c["direct_gw"])


# several tasks (samples x groups) each, so that two threads share the work
@pytest.mark.parametrize("c", [p for p in CASES if p.id in ("simple_json_conv2", "groups",
                                                            "rows_of_31", "33_filters")])
def test_direct_conv_on_one_and_two_threads(c, rng, assert_close, routes, policy):
    # y and the input gradient: the same bits (each task computes its own outputs); the
    # weight gradient: the same bits run to run, each thread's partial sum added in order
    policy(min_parallel_direct_macs=0)
    x, w, b = make_inputs(c, np.float32, rng)
    kw = c["kwargs"]
    dy = rng.standard_normal(F.conv2d(x, w, b, **kw).shape).astype(np.float32)
    results = []
    for threads in (1, 2, 2):
        policy(num_threads=threads)
        results.append((F.conv2d(x, w, b, **kw), *F.conv2d_backward(dy, x, w, **kw)[:2]))
    (y1, gx1, gw1), (y2, gx2, gw2), (y3, gx3, gw3) = results
    for one, two, three in ((y1, y2, y3), (gx1, gx2, gx3)):
        np.testing.assert_array_equal(one, two)
        np.testing.assert_array_equal(two, three)
    np.testing.assert_array_equal(gw2, gw3)
    assert_close(gw1, gw2, np.float32, "grad_weight")
    assert (routes.conv, routes.weight_grad) == (1 + 3 * (1 + c["direct_gx"]), 3)


@pytest.mark.parametrize("c", [p for p in CASES if p.id in ("simple_json_conv2", "groups",
                                                            "33_filters")])
def test_direct_and_im2col_routes_agree(c, rng, assert_close, routes, policy):
    x, w, b = make_inputs(c, np.float32, rng)
    kw = c["kwargs"]
    dy = rng.standard_normal(F.conv2d(x, w, b, **kw).shape).astype(np.float32)
    routes.clear()
    direct = (F.conv2d(x, w, b, **kw), *F.conv2d_backward(dy, x, w, **kw))
    assert (routes.conv, routes.weight_grad) == (1 + c["direct_gx"], 1)
    policy(direct_conv=False)
    gemm = (F.conv2d(x, w, b, **kw), *F.conv2d_backward(dy, x, w, **kw))
    assert (routes.conv, routes.weight_grad) == (1 + c["direct_gx"], 1)  # no more calls
    for name, d, g in zip(("y",) + GRAD_NAMES, direct, gemm):
        assert_close(d, g, np.float32, name)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_non_finite_weights_take_the_route_that_multiplies_the_padding(bad, rng, routes):
    # an inf weight times a padding zero is NaN in the reference (and im2col); the direct
    # kernel skips padding rows, so it must not be used then
    c = CASES[[p.id for p in CASES].index("simple_json_conv2")].values[0]
    x, w, b = make_inputs(c, np.float32, rng)
    w[3, 2, 0, 1] = bad
    kw = c["kwargs"]
    with np.errstate(invalid="ignore"):  # inf * 0
        y = F.conv2d(x, w, b, **kw)
    want = ref.conv2d(x.astype(np.float64), w.astype(np.float64), b, **kw)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    gx = F.conv2d_backward(dy, x, w, **kw)[0]
    np.testing.assert_array_equal(np.isnan(gx), np.isnan(ref.conv2d_backward(dy, x, w, **kw)[0]))
    assert routes.conv == 0


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_inputs_stay_on_the_direct_route_and_propagate_like_the_reference(
        bad, rng, routes):
    # x is only read where it exists, so the skipped padding changes nothing
    c = CASES[[p.id for p in CASES].index("simple_json_conv2")].values[0]
    x, w, b = make_inputs(c, np.float32, rng)
    x[0, 3, 0, 1] = bad
    x[2, 7, 13, 13] = bad
    kw = c["kwargs"]
    with np.errstate(invalid="ignore"):
        y = F.conv2d(x, w, b, **kw)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        got = F.conv2d_backward(dy, x, w, **kw)
        want_y = ref.conv2d(x.astype(np.float64), w.astype(np.float64), b, **kw)
        want = ref.conv2d_backward(dy.astype(np.float64), x.astype(np.float64), w, **kw)
    for name, g, r in zip(("y",) + GRAD_NAMES, (y,) + got, (want_y,) + want):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(r), err_msg=name)
        np.testing.assert_array_equal(np.isinf(g), np.isinf(r), err_msg=name)
    assert not np.isfinite(y).all()
    assert (routes.conv, routes.weight_grad) == (2, 1)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_a_non_finite_grad_out_takes_the_weight_gradient_route_that_multiplies_the_padding(
        bad, bias, rng, routes):
    c = CASES[[p.id for p in CASES].index("simple_json_conv2")].values[0]
    x, w, _ = make_inputs(c, np.float32, rng)
    kw = c["kwargs"]
    dy = rng.standard_normal(F.conv2d(x, w, **kw).shape).astype(np.float32)
    dy[1, 5, 0, 3] = bad  # an output in the first row: taps above it are padding
    with np.errstate(invalid="ignore"):
        gw = F.conv2d_backward(dy, x, w, bias=bias, **kw)[1]
    want = ref.conv2d_backward(dy.astype(np.float64), x.astype(np.float64), w, **kw)[1]
    np.testing.assert_array_equal(np.isnan(gw), np.isnan(want))
    assert np.isnan(want).any()
    assert routes.weight_grad == 0


def _kernel_call(kernel, change):
    """Call the private kernel ``kernel`` on fitting arguments with ``change`` applied."""
    x = np.ones((2, 16, 5, 5), np.float32)
    args = dict(x=x, packed=np.zeros(_direct.packed_size(1, 16, 16, 3, 3), np.float32))
    if kernel == "conv":
        args.update(bias=np.empty(0, np.float32), y=np.empty((2, 16, 5, 5), np.float32))
    else:
        args.update(grad_out=np.ones((2, 16, 5, 5), np.float32))
    args.update(groups=1, kh=3, kw=3, sh=1, sw=1, pt=1, pl=1, dh=1, dw=1, n_threads=1)
    args.update(change)
    if kernel == "conv":
        return _direct.conv(**args)
    return _direct.conv_weight_grad(**args)


@pytest.mark.parametrize("kernel, change, message", [
    ("conv", dict(packed=np.zeros(5, np.float32)), "packed has 5 floats"),
    ("conv", dict(bias=np.zeros(3, np.float32)), "bias has 3 values"),
    ("conv", dict(groups=3), "groups 3 must divide"),
    ("conv", dict(y=np.empty((1, 16, 5, 5), np.float32)), "y has 1 samples"),
    ("conv", dict(pl=-1), "left padding -1"),
    ("conv", dict(kh=0), "must be positive"),
    ("weight_grad", dict(packed=np.zeros(5, np.float32)), "packed has 5 floats"),
    ("weight_grad", dict(groups=3), "groups 3 must divide"),
    ("weight_grad", dict(grad_out=np.ones((1, 16, 5, 5), np.float32)), "grad_out has 1 samples"),
    ("weight_grad", dict(pl=-1), "left padding -1"),
    ("weight_grad", dict(dw=0), "must be positive"),
])
def test_the_private_kernels_refuse_misfitting_arguments(kernel, change, message):
    _kernel_call(kernel, {})  # the unchanged arguments fit
    with pytest.raises(ValueError, match=message):
        _kernel_call(kernel, change)


def test_packing_refuses_a_wrong_size():
    w = np.ones((16, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="packed has 7 floats"):
        _direct.pack_weights(w, np.zeros(7, np.float32), 1, False)
    with pytest.raises(ValueError, match="packed has 7 floats"):
        _direct.unpack_weights(np.zeros(7, np.float32), w, 1)


def test_transposed_packing_swaps_and_flips_each_kernel(rng):
    # w'[c, f, i, j] = w[f, c, kh-1-i, kw-1-j] per group, packed like a forward's weights
    groups, shape = 2, (6, 17, 2, 3)  # F = 6 (3 per group), C/G = 17: tiles of 16 and 1
    w = rng.standard_normal(shape).astype(np.float32)
    flipped = np.concatenate([
        w[g * 3:(g + 1) * 3, :, ::-1, ::-1].transpose(1, 0, 2, 3) for g in range(groups)])
    packed = np.zeros(_direct.packed_size(groups, 17, 3, 2, 3), np.float32)
    _direct.pack_weights(w, packed, groups, True)
    want = np.zeros_like(packed)
    _direct.pack_weights(np.ascontiguousarray(flipped), want, groups, False)
    np.testing.assert_array_equal(packed, want)


def test_unpack_inverts_pack(rng):
    for shape, groups in [((17, 3, 2, 3), 1), ((96, 5, 3, 1), 2), ((16, 1, 1, 4), 16)]:
        w = rng.standard_normal(shape).astype(np.float32)
        packed = np.zeros(_direct.packed_size(groups, shape[0] // groups, shape[1], *shape[2:]),
                          np.float32)
        _direct.pack_weights(w, packed, groups, False)
        back = np.empty_like(w)
        _direct.unpack_weights(packed, back, groups)
        np.testing.assert_array_equal(back, w)
