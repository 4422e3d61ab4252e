"""Tests of the padding modes' index maps (cynet.engine.padding) and their kernels
(cynet._pad): the maps copy what np.pad's reflect / edge / wrap copy, the fold is the
gather's adjoint, and a map that points outside the input is refused before any read."""
import numpy as np
import pytest

from cynet import _pad
from cynet.engine.padding import index_map

NP_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}
# the largest pad PyTorch takes per mode, for an axis of n elements
MOST = {"reflect": lambda n: n - 1, "replicate": lambda n: 2 * n + 3, "circular": lambda n: n}


def _axes():
    for mode in NP_MODES:
        for n in (1, 2, 3, 5, 8):
            for before in range(MOST[mode](n) + 1):
                for after in sorted({0, before, MOST[mode](n)}):
                    yield mode, n, before, after


@pytest.mark.parametrize("mode, n, before, after", list(_axes()))
def test_index_map_copies_what_np_pad_copies(mode, n, before, after):
    want = np.pad(np.arange(n), (before, after), mode=NP_MODES[mode])
    got = index_map(n, before, after, mode)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.int64 and not got.flags.writeable


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("mode", list(NP_MODES))
def test_gather_pads_and_scatter_add_is_its_adjoint(mode, threads, dtype, rng):
    P, H, W = 5, 4, 6
    pads = ((min(3, H - 1), 1), (2, min(W - 1, 4)))
    x = rng.standard_normal((P, H, W)).astype(dtype)
    rows = index_map(H, *pads[0], mode)
    cols = index_map(W, *pads[1], mode)
    out = np.full((P, len(rows), len(cols)), np.nan, dtype)
    _pad.gather(x, out, rows, cols, threads)
    np.testing.assert_array_equal(out, np.pad(x, ((0, 0),) + pads, mode=NP_MODES[mode]))

    g = rng.standard_normal(out.shape).astype(dtype)
    gx = np.full(x.shape, np.nan, dtype)
    _pad.scatter_add(g, gx, rows, cols, threads)
    # the obviously-right fold: each padded element's gradient onto the element it copies
    source = rows[:, None] * W + cols[None, :]
    want = np.zeros((P, H * W))
    np.add.at(want, (slice(None), source.ravel()), g.reshape(P, -1).astype(np.float64))
    tol = 1e-6 if dtype == np.float32 else 1e-14  # (float32 sums of a few terms)
    np.testing.assert_allclose(gx, want.reshape(x.shape), rtol=tol, atol=tol)
    lhs, rhs = np.vdot(out.astype(np.float64), g), np.vdot(x.astype(np.float64), gx)
    assert np.isclose(lhs, rhs, rtol=1e-5 if dtype == np.float32 else 1e-12)


def _arrays(P=2, H=3, W=4, Hp=5, Wp=6):
    return (np.zeros((P, H, W)), np.zeros((P, Hp, Wp)),
            np.zeros(Hp, np.int64), np.zeros(Wp, np.int64))


@pytest.mark.parametrize("kernel", ["gather", "scatter_add"])
@pytest.mark.parametrize("change, message", [
    (lambda a: (a[0][:1],) + a[1:], "planes"),
    (lambda a: a[:2] + (a[2][:4], a[3]), "maps of 4 rows"),
    (lambda a: a[:3] + (a[3][:5],), "5 columns"),
    (lambda a: a[:2] + (np.array([0, 1, 2, 3, 0]), a[3]), r"rows\[3\] = 3 is outside the 3"),
    (lambda a: a[:2] + (np.array([0, 1, -1, 0, 0]), a[3]), r"rows\[2\] = -1"),
    (lambda a: a[:3] + (np.array([0, 0, 0, 0, 0, 4]),), r"cols\[5\] = 4 is outside the 4"),
    (lambda a: a[:3] + (np.array([0, -2**62, 0, 0, 0, 0]),), r"cols\[1\]"),
])
def test_maps_outside_the_input_or_of_the_wrong_length_are_refused(kernel, change, message):
    x, padded, rows, cols = change(_arrays())
    if kernel == "gather":
        args = (x, padded, rows, cols)
    else:  # (grad of the padded shape, gx of the input's)
        args = (padded, x, rows, cols)
    with pytest.raises(ValueError, match=message):
        getattr(_pad, kernel)(*args, 1)


def test_empty_planes_are_a_no_op():
    x, padded, rows, cols = _arrays(P=0)
    _pad.gather(x, padded, rows, cols, 2)
    _pad.scatter_add(padded, x, rows, cols, 2)
    assert x.size == padded.size == 0
