"""Property-based tests of cynet.functional (hypothesis).

Two properties per op family:

* on randomly drawn *valid* arguments (shapes, groups, kernels, strides, paddings,
  dilations, pooling modes, float32/float64) the forward and backward results equal
  those of the NumPy reference, through the same comparison helpers as the hand-picked
  cases in test_functional_conv.py / test_functional_pool.py;
* on randomly drawn *invalid* arguments every call raises ValueError or TypeError whose
  message names the offending argument: nothing else, and never a crash of the process.

The geometry is constructed to be valid (input sizes derived from the wanted output
sizes) rather than filtered, and kept small so that each example takes milliseconds.
How many examples run is set by the hypothesis profiles in conftest.py.
"""
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference as ref
from cynet import functional as F
from test_functional_conv import DTYPES, _ref_backward, check_conv
from test_functional_pool import (
    check_avg_pool,
    check_max_pool,
    make_x,
    ref_avg_oracle,
    ref_max_oracle,
)

dtypes = st.sampled_from(DTYPES)
seeds = st.integers(0, 2**32 - 1)  # of the generator that fills the arrays


# ------------------------------------------------------------------ valid arguments


def size_arg(draw, h, w):
    """An (h, w) pair in one of the forms a caller may write it."""
    forms = [(h, w), [h, w], (np.int64(h), np.int32(w))]
    if h == w:
        forms += [h, np.int64(h)]
    return draw(st.sampled_from(forms))


def max_dilation(k):
    """Dilations keep the effective kernel d * (k - 1) + 1 at most 7."""
    return 3 if k <= 3 else 2


def input_size(draw, eff, pad, stride):
    """An input length giving 1 to 4 windows of extent ``eff`` after ``pad`` total padding
    (plus up to stride - 1 positions that a floor-mode window does not reach), at most 12
    for the extents drawn here."""
    out = draw(st.integers(1, max(1, 5 - stride)))
    return max(1, (out - 1) * stride + eff - pad + draw(st.integers(0, stride - 1)))


@st.composite
def conv_cases(draw):
    """dict(x_shape, w_shape, bias, kwargs) of a valid conv2d call, like check_conv takes."""
    groups = draw(st.integers(1, 3))
    cg = draw(st.integers(1, 6 // groups))
    fg = draw(st.integers(1, 6 // groups))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    d = tuple(draw(st.integers(1, max_dilation(kk))) for kk in k)
    kind = draw(st.sampled_from(["int", "pair", "same", "valid"]))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))  # "same" at any stride too
    if kind == "int":
        padding = draw(st.integers(0, 3))
    elif kind == "pair":
        padding = size_arg(draw, draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    else:
        padding = kind
    pads = ref.conv_pads(padding, k, d)
    H, W = (input_size(draw, dd * (kk - 1) + 1, sum(pp), ss)
            for kk, dd, pp, ss in zip(k, d, pads, s))
    return dict(
        x_shape=(draw(st.integers(1, 3)), cg * groups, H, W),
        w_shape=(fg * groups, cg, *k),
        bias=draw(st.booleans()),
        kwargs=dict(stride=size_arg(draw, *s), padding=padding, dilation=size_arg(draw, *d),
                    groups=groups),
    )


@st.composite
def pool_cases(draw, kind):
    """dict(x_shape, kwargs) of a valid max_pool2d (kind="max") or avg_pool2d call."""
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    p = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    d = (tuple(draw(st.integers(1, max_dilation(kk))) for kk in k) if kind == "max"
         else (1, 1))
    default_stride = draw(st.booleans())
    s = k if default_stride else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    ceil_mode = draw(st.booleans())
    # ceil mode only adds windows here: with padding <= k // 2 none of the floor-mode
    # windows starts in the end padding, so the output is never empty
    H, W = (input_size(draw, dd * (kk - 1) + 1, 2 * pp, ss)
            for kk, dd, pp, ss in zip(k, d, p, s))
    # a dilated window may hold no input element: -inf with PyTorch's index, like any other
    kwargs = dict(kernel_size=size_arg(draw, *k),
                  stride=None if default_stride else size_arg(draw, *s),
                  padding=size_arg(draw, *p), ceil_mode=ceil_mode)
    if kind == "max":
        kwargs["dilation"] = size_arg(draw, *d)
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
        # PyTorch's divisor_override: None or any non-zero int of 64 bits
        kwargs["divisor_override"] = draw(st.one_of(
            st.none(), st.integers(-5, 9).filter(bool), st.sampled_from([2**63 - 1, -2**63])))
    return dict(x_shape=(draw(st.integers(1, 3)), draw(st.integers(1, 6)), H, W),
                kwargs=kwargs)


@given(c=conv_cases(), dtype=dtypes, seed=seeds, bias=st.booleans(),
       input_grad=st.booleans())
def test_conv2d_matches_reference(c, dtype, seed, bias, input_grad, assert_close):
    check_conv(c, dtype, np.random.default_rng(seed), assert_close, ref.conv2d,
               _ref_backward, bias=bias, input_grad=input_grad)


@given(c=pool_cases("max"), dtype=dtypes, seed=seeds,
       values=st.sampled_from(["ties", "normal", "distinct"]))
def test_max_pool2d_matches_reference(c, dtype, seed, values, assert_close):
    # "ties": integers in [-2, 2], so most windows hold several equal maxima and the
    # indices must follow the reference's (PyTorch's) first-maximum rule
    rng = np.random.default_rng(seed)
    x = make_x(c["x_shape"], dtype, rng, values)
    check_max_pool(x, c["kwargs"], assert_close, ref_max_oracle, rng)


@given(c=pool_cases("avg"), dtype=dtypes, seed=seeds)
def test_avg_pool2d_matches_reference(c, dtype, seed, assert_close):
    rng = np.random.default_rng(seed)
    x = make_x(c["x_shape"], dtype, rng, "normal")
    check_avg_pool(x, c["kwargs"], assert_close, ref_avg_oracle, rng)


# ---------------------------------------------------------------- invalid arguments
# Each strategy draws a valid call (from the strategies above) and spoils one thing
# about it. The call is made in this process: a crash would take pytest down with it.


def _describe(value):
    if isinstance(value, np.ndarray):
        layout = "" if value.flags.c_contiguous else " non-contiguous"
        return f"<{value.dtype} array {value.shape}{layout}>"
    return repr(value)


class Call:
    """A call of a cynet.functional function; ``names`` are the argument names of which
    the error message must mention one. Printed readably in hypothesis's reports."""

    def __init__(self, names, fn, *args, **kwargs):
        self.names, self.fn, self.args, self.kwargs = names, fn, args, kwargs

    def __call__(self):
        return self.fn(*self.args, **self.kwargs)

    def __repr__(self):
        parts = [_describe(a) for a in self.args]
        parts += [f"{k}={_describe(v)}" for k, v in self.kwargs.items()]
        return f"{self.fn.__name__}({', '.join(parts)})  # bad {' / '.join(self.names)}"


def assert_refused(call):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    message = str(info.value)
    assert any(re.search(rf"\b{name}\b", message) for name in call.names), (
        f"the message does not name {call.names}: {message!r}")


# values for int-or-pair arguments


def not_ints():
    """Values that are not ints, integral floats included (PyTorch refuses those too)."""
    return st.one_of(
        st.floats(), st.text(max_size=3), st.none(), st.booleans(),
        st.complex_numbers(max_magnitude=4),
        st.sampled_from([np.float64(2.0), np.float32(1.5), np.bool_(True), np.array(1.5),
                         np.array([[1], [2]]), b"2", {}, object()]),
    )


def bad_size_args(minimum):
    """Invalid values of an int-or-(h, w) argument whose ints must be >= ``minimum``."""
    bad_int = st.one_of(st.integers(-2**40, minimum - 1),
                        st.integers(2**31, 2**70), st.integers(-2**70, -2**31))
    scalar = bad_int | not_ints()
    good = st.integers(max(minimum, 1), 3)
    return st.one_of(
        scalar,
        st.tuples(good, scalar),
        st.tuples(scalar, good).map(list),
        st.lists(good, max_size=4).filter(lambda v: len(v) != 2).map(tuple),
        st.tuples(st.tuples(good, good), good),
    )


def bad_flags():
    """Values for True/False arguments that are neither (PyTorch refuses 0 and 1 too)."""
    return st.one_of(st.none(), st.integers(), st.text(max_size=5), st.floats(),
                     st.sampled_from([[True], np.array([True, False])]))


# arrays

BAD_DTYPES = [np.int8, np.int32, np.int64, np.uint8, np.bool_, np.float16, np.longdouble,
              np.complex64, np.complex128, object, "U1"]
RAGGED = [[1.0, 2.0], [3.0]]
NOT_ARRAYS = [None, "x", {}, RAGGED, object()]


def other_float(dtype):
    return np.float64 if dtype == np.float32 else np.float32


def bad_arrays(shape, none=True):
    """Something in place of a float array of ``shape``: an array of another dtype, or
    not an array at all (``none``: None among them)."""
    not_arrays = [v for v in NOT_ARRAYS if none or v is not None]
    return st.one_of(
        st.sampled_from(BAD_DTYPES).map(lambda t: np.zeros(shape, t)),
        st.sampled_from(not_arrays),
    )


@st.composite
def laid_out(draw, shape, dtype):
    """Zeros of ``shape`` in C order, Fortran order, or as a strided or transposed view."""
    kind = draw(st.sampled_from(["C", "F", "strided", "transposed"]))
    if kind == "strided":
        return np.zeros(tuple(shape[:-1]) + (2 * shape[-1],), dtype)[..., ::2]
    if kind == "transposed":
        return np.zeros(tuple(shape[::-1]), dtype).T
    return np.zeros(shape, dtype, order=kind)


@st.composite
def wrong_shapes(draw, shape):
    """A 4-D shape different from ``shape`` in one dimension (possibly 0)."""
    axis = draw(st.integers(0, 3))
    new = list(shape)
    new[axis] = max(0, new[axis] + draw(st.sampled_from([-1, 1, 2])))
    return tuple(new)


def wrong_ndims():
    return st.lists(st.integers(1, 3), max_size=6).filter(lambda s: len(s) != 4).map(tuple)


@st.composite
def empty_hw(draw, shape):
    """``shape`` with a zero height, width or both."""
    h, w = draw(st.sampled_from([(0, shape[3]), (shape[2], 0), (0, 0)]))
    return tuple(shape[:2]) + (h, w)


# ----------------------------------------------------------------- invalid conv2d


@st.composite
def conv_bases(draw):
    """A valid conv2d / conv2d_backward call as a dict of its arguments."""
    c = draw(conv_cases())
    dtype = draw(dtypes)
    x, w = np.zeros(c["x_shape"], dtype), np.zeros(c["w_shape"], dtype)
    return dict(c["kwargs"], x=x, weight=w, bias=np.zeros(w.shape[0], dtype),
                grad_out=np.zeros(ref.conv2d(x, w, **c["kwargs"]).shape, dtype),
                bias_flag=draw(st.booleans()), input_grad=draw(st.booleans()),
                backward=draw(st.booleans()), dtype=dtype)


def conv_call(base, names, **changes):
    """The call of ``base`` with ``changes``, to conv2d or conv2d_backward."""
    a = dict(base, **changes)
    geometry = {k: a[k] for k in ("stride", "padding", "dilation", "groups")}
    if a["backward"]:
        return Call(names, F.conv2d_backward, a["grad_out"], a["x"], a["weight"], **geometry,
                    bias=a["bias_flag"], input_grad=a["input_grad"])
    return Call(names, F.conv2d, a["x"], a["weight"], a["bias"], **geometry)


def conv_bad_size_arg(draw, b):
    name, minimum = draw(st.sampled_from([("stride", 1), ("padding", 0), ("dilation", 1)]))
    return conv_call(b, [name], **{name: draw(bad_size_args(minimum))})


def conv_bad_padding_string(draw, b):
    word = draw(st.sampled_from(["full", "SAME", "Same", " same", "valid ", "", "causal"]))
    return conv_call(b, ["padding"], padding=word)


def conv_bad_groups(draw, b):
    groups = draw(st.one_of(
        st.integers(-2**40, 0), st.integers(2**31, 2**70), not_ints(),
        # any other int >= 1: then weight.shape[1] * groups is not x's channel count
        st.integers(1, 8).filter(lambda g: g != b["groups"]),
    ))
    return conv_call(b, ["groups"], groups=groups)


def conv_groups_not_dividing_out_channels(draw, b):
    groups = draw(st.integers(2, 3))
    cg = b["weight"].shape[1]
    out_channels = draw(st.integers(1, 8).filter(lambda f: f % groups))
    x = np.zeros((b["x"].shape[0], cg * groups) + b["x"].shape[2:], b["dtype"])
    w = np.zeros((out_channels,) + b["weight"].shape[1:], b["dtype"])
    return conv_call(b, ["groups"], groups=groups, x=x, weight=w,
                     bias=np.zeros(out_channels, b["dtype"]))


def conv_channels_mismatch(draw, b):
    cg = draw(st.integers(1, 6).filter(lambda c: c * b["groups"] != b["x"].shape[1]))
    return conv_call(b, ["weight"], weight=np.zeros(
        (b["weight"].shape[0], cg) + b["weight"].shape[2:], b["dtype"]))


def conv_bad_array(draw, b):
    names = ["grad_out", "x", "weight"] if b["backward"] else ["x", "weight", "bias"]
    name = draw(st.sampled_from(names))
    bad = bad_arrays(b[name].shape, none=name != "bias")  # None: no bias, a valid one
    return conv_call(b, [name], **{name: draw(bad)})


def conv_mixed_float_dtypes(draw, b):
    # the message names the array that disagrees with the first one
    name = draw(st.sampled_from(["grad_out", "x", "weight"] if b["backward"]
                                else ["x", "weight", "bias"]))
    array = b[name].astype(other_float(b["dtype"]))
    return conv_call(b, ["x", "weight", "bias", "grad_out"], **{name: array})


def conv_wrong_ndim(draw, b):
    names = ["x", "weight", "grad_out"] if b["backward"] else ["x", "weight"]
    name = draw(st.sampled_from(names))
    return conv_call(b, [name], **{name: np.zeros(draw(wrong_ndims()), b["dtype"])})


def conv_empty_input(draw, b):
    return conv_call(b, ["x"], x=np.zeros(draw(empty_hw(b["x"].shape)), b["dtype"]))


def conv_empty_weight(draw, b):
    shape = list(b["weight"].shape)
    shape[draw(st.integers(0, 3))] = 0
    return conv_call(b, ["weight"], weight=np.zeros(shape, b["dtype"]))


def conv_kernel_larger_than_input(draw, b):
    # with padding p on both sides of an H-row input, a kernel of H + 2p + 1 rows cannot fit
    axis = draw(st.integers(0, 1))
    p = draw(st.integers(0, 2))
    shape = list(b["weight"].shape)
    shape[2 + axis] = b["x"].shape[2 + axis] + 2 * p + draw(st.integers(1, 3))
    return conv_call(b, ["kernel"], padding=p, weight=np.zeros(shape, b["dtype"]))


def conv_bad_bias(draw, b):
    n = b["weight"].shape[0]
    # a 0-d bias is taken as a 1-element one (np.ascontiguousarray makes it 1-D): with
    # one output channel that is accepted, so () is a wrong shape only for n > 1
    shapes = [(n + 1,), (n - 1,), (n, 1), (1, n)] + ([()] if n > 1 else [])
    shape = draw(st.sampled_from(shapes))
    return conv_call(b, ["bias"], backward=False, bias=np.zeros(shape, b["dtype"]))


def conv_bad_grad_out(draw, b):
    shape = draw(wrong_shapes(b["grad_out"].shape))
    return conv_call(b, ["grad_out"], backward=True,
                     grad_out=draw(laid_out(shape, b["dtype"])))


def conv_bad_backward_flag(draw, b):
    name = draw(st.sampled_from(["bias", "input_grad"]))
    return conv_call(b, [name], backward=True, **{
        "bias_flag" if name == "bias" else name: draw(bad_flags())})


CONV_SPOILERS = [
    conv_bad_size_arg, conv_bad_padding_string, conv_bad_groups,
    conv_groups_not_dividing_out_channels, conv_channels_mismatch, conv_bad_array,
    conv_mixed_float_dtypes, conv_wrong_ndim, conv_empty_input, conv_empty_weight,
    conv_kernel_larger_than_input, conv_bad_bias, conv_bad_grad_out, conv_bad_backward_flag,
]


@st.composite
def invalid_conv_calls(draw):
    spoil = draw(st.sampled_from(CONV_SPOILERS))
    return spoil(draw, draw(conv_bases()))


@given(call=invalid_conv_calls())
def test_conv2d_invalid_arguments_raise_value_or_type_error(call):
    assert_refused(call)


# ---------------------------------------------------------------- invalid pooling


@st.composite
def pool_bases(draw):
    """A valid call of one of the four pooling functions as a dict of its arguments."""
    kind = draw(st.sampled_from(["max", "avg"]))
    c = draw(pool_cases(kind))
    dtype = draw(dtypes)
    x = np.zeros(c["x_shape"], dtype)
    if kind == "max":
        y, indices = ref.max_pool2d(x, **c["kwargs"])
    else:
        y, indices = ref.avg_pool2d(x, **c["kwargs"]), None
    return dict(c["kwargs"], kind=kind, backward=draw(st.booleans()), dtype=dtype, x=x,
                grad_out=np.zeros(y.shape, dtype), indices=indices, input_shape=x.shape)


def pool_call(base, names, **changes):
    """The call of ``base`` with ``changes``: max_pool2d, avg_pool2d or their backward."""
    a = dict(base, **changes)
    options = ["kernel_size", "stride", "padding", "ceil_mode"]
    if a["kind"] == "max":
        options.append("dilation")
    else:
        options += ["count_include_pad", "divisor_override"]
    kw = {k: a[k] for k in options}
    if a["kind"] == "max":
        if a["backward"]:
            return Call(names, F.max_pool2d_backward, a["grad_out"], a["indices"],
                        a["input_shape"])
        return Call(names, F.max_pool2d, a["x"], **kw)
    if a["backward"]:
        return Call(names, F.avg_pool2d_backward, a["grad_out"], a["input_shape"], **kw)
    return Call(names, F.avg_pool2d, a["x"], **kw)


def with_options(b):
    """``b`` as a call that takes the pooling options (max_pool2d_backward does not)."""
    return dict(b, backward=False) if b["kind"] == "max" else b


def resolved(b):
    """Kernel, stride, padding and dilation of ``b`` as (h, w) pairs of ints."""
    k = ref._pair(b["kernel_size"])
    s = k if b["stride"] is None else ref._pair(b["stride"])
    return k, s, ref._pair(b["padding"]), ref._pair(b.get("dilation", 1))


def pool_bad_size_arg(draw, b):
    args = [("kernel_size", 1), ("stride", 1), ("padding", 0)]
    args += [("dilation", 1)] if b["kind"] == "max" else []
    name, minimum = draw(st.sampled_from(args))
    values = bad_size_args(minimum)
    if name == "stride":  # None is the default
        values = values.filter(lambda v: v is not None)
    return pool_call(with_options(b), [name], **{name: draw(values)})


def pool_padding_over_half_kernel(draw, b):
    k, _, p, _ = resolved(b)
    axis = draw(st.integers(0, 1))
    p = list(p)
    p[axis] = k[axis] // 2 + draw(st.integers(1, 3))
    return pool_call(with_options(b), ["padding"], padding=tuple(p))


def pool_bad_flag(draw, b):
    flags = ["ceil_mode"] + (["count_include_pad"] if b["kind"] == "avg" else [])
    name = draw(st.sampled_from(flags))
    return pool_call(with_options(b), [name], **{name: draw(bad_flags())})


def avg_pool_bad_divisor_override(draw, b):
    # torch refuses 0, anything but an int (bool and integral floats too), and ints past
    # 64 bits
    divisor = draw(st.one_of(
        not_ints().filter(lambda v: v is not None), st.sampled_from([0, np.int64(0)]),
        st.integers(2**63, 2**70), st.integers(-2**70, -2**63 - 1)))
    return pool_call(b, ["divisor_override"], divisor_override=divisor)


def pool_bad_x(draw, b):
    shape = b["x"].shape
    x = draw(st.one_of(
        bad_arrays(shape),
        wrong_ndims().map(lambda s: np.zeros(s, b["dtype"])),
        empty_hw(shape).map(lambda s: np.zeros(s, b["dtype"])),
    ))
    return pool_call(b, ["x"], backward=False, x=x)


def pool_kernel_larger_than_input(draw, b):
    # unpadded along one axis of length n, no window fits: a kernel longer than n, and in
    # ceil mode (where a window may hang over the end by up to stride - 1) longer than
    # n + stride - 1
    k, s, p, _ = (list(v) for v in resolved(b))
    axis = draw(st.integers(0, 1))
    overhang = s[axis] - 1 if b["ceil_mode"] else 0
    k[axis] = b["x"].shape[2 + axis] + overhang + draw(st.integers(1, 3))
    p[axis] = 0
    return pool_call(with_options(b), ["kernel_size"], kernel_size=tuple(k), stride=tuple(s),
                     padding=tuple(p))


def pool_bad_grad_out(draw, b):
    shape = b["grad_out"].shape
    names = ["grad_out", "indices"] if b["kind"] == "max" else ["grad_out"]
    grad_out = draw(st.one_of(
        bad_arrays(shape),
        wrong_ndims().map(lambda s: np.zeros(s, b["dtype"])),
        wrong_shapes(shape).flatmap(lambda s: laid_out(s, b["dtype"])),
    ))
    return pool_call(b, names, backward=True, grad_out=grad_out)


def bad_shape4s():
    good = st.integers(1, 4)
    return st.one_of(
        st.lists(good, max_size=6).filter(lambda v: len(v) != 4).map(tuple),
        st.tuples(good, st.integers(-2**40, -1), good, good),
        st.tuples(good, good, good, not_ints()),
        st.sampled_from([None, "1234", 4, 4.0, {}]),
    )


def pool_bad_input_shape(draw, b):
    return pool_call(b, ["input_shape"], backward=True, input_shape=draw(bad_shape4s()))


def pool_input_shape_other_planes(draw, b):
    # N or C different from grad_out's
    shape = draw(wrong_shapes(b["input_shape"]).filter(lambda s: s[2:] == b["x"].shape[2:]))
    return pool_call(b, ["grad_out", "input_shape"], backward=True, input_shape=shape)


def pool_empty_input_shape(draw, b):
    names = ["input_shape", "indices"] if b["kind"] == "max" else ["input_shape"]
    return pool_call(b, names, backward=True, input_shape=draw(empty_hw(b["input_shape"])))


def max_pool_bad_indices(draw, b):
    shape = b["grad_out"].shape
    indices = draw(st.one_of(
        bad_arrays(shape).filter(
            lambda a: not (isinstance(a, np.ndarray) and a.dtype.kind in "iu")),
        st.sampled_from([np.float32, np.float64]).map(lambda t: np.zeros(shape, t)),
        wrong_shapes(shape).flatmap(lambda s: laid_out(s, np.int64)),
    ))
    return pool_call(b, ["indices"], kind="max", backward=True, indices=indices)


def max_pool_impossible_indices(draw, b):
    # negative, or past int64 (an index past the plane is not refused: it is what PyTorch
    # gives a window without an input element, and passes no gradient)
    indices = b["indices"].astype(draw(st.sampled_from([np.int64, np.int32, np.uint64])))
    if indices.dtype == np.uint64:
        value = draw(st.integers(2**63, 2**64 - 1))
    else:
        value = draw(st.integers(-2**31 if indices.dtype == np.int32 else -2**63, -1))
    indices.reshape(-1)[draw(st.integers(0, indices.size - 1))] = value
    return pool_call(b, ["indices"], kind="max", backward=True, indices=indices)


POOL_SPOILERS = [
    pool_bad_size_arg, pool_padding_over_half_kernel, pool_bad_flag, pool_bad_x,
    pool_kernel_larger_than_input, pool_bad_grad_out, pool_bad_input_shape,
    pool_input_shape_other_planes, pool_empty_input_shape,
]
AVG_POOL_SPOILERS = [avg_pool_bad_divisor_override]
MAX_POOL_SPOILERS = [max_pool_bad_indices, max_pool_impossible_indices]


@st.composite
def invalid_pool_calls(draw):
    b = draw(pool_bases())
    spoilers = POOL_SPOILERS + (MAX_POOL_SPOILERS if b["kind"] == "max" else AVG_POOL_SPOILERS)
    return draw(st.sampled_from(spoilers))(draw, b)


@given(call=invalid_pool_calls())
def test_pool_invalid_arguments_raise_value_or_type_error(call):
    assert_refused(call)
