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
from hypothesis import assume, given
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
    if kind == "same":  # PyTorch allows "same" only with stride 1
        s = (1, 1)
    else:
        s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
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
    if kind == "max" and max(d) > 1:
        # a dilated window may hold padding only; cynet refuses that (a separate property)
        assume(all(ref._pool_axis_ok(n, *args, ceil_mode, True)
                   for n, args in zip((H, W), zip(k, s, p, d))))
    kwargs = dict(kernel_size=size_arg(draw, *k),
                  stride=None if default_stride else size_arg(draw, *s),
                  padding=size_arg(draw, *p), ceil_mode=ceil_mode)
    if kind == "max":
        kwargs["dilation"] = size_arg(draw, *d)
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
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
