"""The private column kernels refuse buffers that do not fit (never write out of bounds)."""
import numpy as np
import pytest

from cynet import _im2col

XP = np.zeros((2, 3, 6, 7), np.float32)        # padded chunk: B=2, C=3, Hp=6, Wp=7
COL = np.zeros((3 * 3 * 2, 2 * 4 * 7), np.float32)  # 3x2 taps, OH = 6 - 2 = 4
Y = np.zeros((2, 5, 4, 6), np.float32)          # B=2, F=5, OH=4, OW=6
ROWS = np.zeros((5, 2 * 4 * 7), np.float32)


def test_the_fitting_buffers_are_accepted():
    _im2col.im2col_wide(XP, COL, 3, 2, 1, 1, 4, 1)
    _im2col.col2im_wide(COL, XP.copy(), 3, 2, 1, 1, 4, 1)
    _im2col.wide_rows_to_batch(ROWS, Y.copy(), np.zeros(5, np.float32), 7, 1)
    _im2col.batch_to_wide_rows(Y, ROWS.copy(), 7, 1)


@pytest.mark.parametrize("call", [
    lambda: _im2col.im2col_wide(XP, COL[:-1], 3, 2, 1, 1, 4, 1),
    lambda: _im2col.im2col_wide(XP, COL[:, :-1], 3, 2, 1, 1, 4, 1),
    lambda: _im2col.im2col_wide(XP, COL, 3, 2, 1, 1, 5, 1),        # OH too large
    lambda: _im2col.im2col_wide(XP, COL, 3, 2, 2, 1, 4, 1),        # dilation: OH wrong
    lambda: _im2col.im2col_wide(XP, np.zeros((36, 56), np.float32), 3, 4, 1, 3, 4, 1),
    lambda: _im2col.im2col_wide(XP, COL, 0, 2, 1, 1, 4, 1),
    lambda: _im2col.col2im_wide(COL[:, :-7], XP.copy(), 3, 2, 1, 1, 4, 1),
    lambda: _im2col.wide_rows_to_batch(ROWS, Y.copy(), np.zeros(5, np.float32), 5, 1),
    lambda: _im2col.wide_rows_to_batch(ROWS[:, :-1], Y.copy(), np.zeros(0, np.float32), 7, 1),
    lambda: _im2col.wide_rows_to_batch(ROWS, Y.copy(), np.zeros(4, np.float32), 7, 1),
    lambda: _im2col.batch_to_wide_rows(Y, ROWS[:4].copy(), 7, 1),
    lambda: _im2col.batch_to_wide_rows(Y, ROWS.copy(), 5, 1),
], ids=["col_rows", "col_cols", "OH", "dilation_OH", "kernel_too_wide", "zero_kernel",
        "fold_cols", "Wp_below_OW", "rows_cols", "bias", "rows_F", "to_rows_Wp"])
def test_misfitting_buffers_are_refused(call):
    with pytest.raises(ValueError):
        call()


X = np.zeros((2, 3, 5, 6), np.float32)          # B=2, C=3, H=5, W=6
PLAIN = np.zeros((3 * 3 * 2, 2 * 5 * 5), np.float32)  # 3x2 taps, pad (1, 0): OH=5, OW=5
GEOMETRY = (3, 2, 1, 1, 1, 0, 1, 1, 5, 5)           # kh kw sh sw ph pw dh dw OH OW


def test_the_fitting_plain_buffers_are_accepted():
    _im2col.im2col(X, PLAIN.copy(), *GEOMETRY, 1)
    _im2col.col2im(PLAIN, X.copy(), *GEOMETRY, 1)
    # "same" padding of an even kernel reads one row more below than above
    _im2col.im2col(X, np.zeros((3 * 4, 2 * 5 * 6), np.float32), 2, 2, 1, 1, 0, 0, 1, 1, 5, 6, 1)


@pytest.mark.parametrize("fold", [False, True], ids=["im2col", "col2im"])
@pytest.mark.parametrize("change", [
    {8: 7}, {9: 7},                    # an output larger than the padded input
    {8: 9, 0: 1},                      # a kernel of 1 row, outputs still too many
    {4: -1}, {0: 0}, {2: 0}, {6: 0},   # negative padding, zero kernel, stride, dilation
], ids=["OH", "OW", "OH_matching_cols", "negative_pad", "zero_kernel", "zero_stride",
        "zero_dilation"])
def test_misfitting_plain_geometry_is_refused(fold, change):
    geometry = [change.get(i, v) for i, v in enumerate(GEOMETRY)]
    kh, kw, OH, OW = geometry[0], geometry[1], geometry[8], geometry[9]
    col = np.zeros((3 * max(kh, 0) * max(kw, 0), 2 * max(OH, 0) * max(OW, 0)), np.float32)
    with pytest.raises(ValueError):
        if fold:
            _im2col.col2im(col, X.copy(), *geometry, 1)
        else:
            _im2col.im2col(X, col, *geometry, 1)


@pytest.mark.parametrize("where", [0, 5, 10])  # in the unrolled part and in the tail
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_all_finite(dtype, bad, where):
    x = np.arange(11, dtype=dtype)
    assert _im2col.all_finite(x) and _im2col.all_finite(x[:0])
    x[where] = bad
    assert not _im2col.all_finite(x)
