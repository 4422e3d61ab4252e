"""The private column kernels refuse buffers that do not fit (never write out of bounds)."""
import numpy as np
import pytest

from cynet import _im2col

X = np.zeros((2, 3, 5, 6), np.float32)          # B=2, C=3, H=5, W=6
PLAIN = np.zeros((3 * 3 * 2, 2 * 5 * 5), np.float32)  # 3x2 taps, pad (1, 0): OH=5, OW=5
GEOMETRY = (3, 2, 1, 1, 1, 1, 0, 0, 1, 1, 5, 5)  # kh kw sh sw pt pb pl pr dh dw OH OW


def test_the_fitting_plain_buffers_are_accepted():
    _im2col.im2col(X, PLAIN.copy(), *GEOMETRY, 1)
    _im2col.col2im(PLAIN, X.copy(), *GEOMETRY, 1)
    # "same" padding of an even kernel reads one row more below than above
    _im2col.im2col(X, np.zeros((3 * 4, 2 * 5 * 6), np.float32), 2, 2, 1, 1, 0, 1, 0, 1, 1, 1,
                   5, 6, 1)


@pytest.mark.parametrize("fold", [False, True], ids=["im2col", "col2im"])
@pytest.mark.parametrize("change", [
    {10: 7}, {11: 7},                  # an output larger than the padded input
    {10: 9, 0: 1},                     # a kernel of 1 row, outputs still too many
    {5: 0}, {7: -1},                   # too little padding at the bottom, at the right
    {4: -1}, {0: 0}, {2: 0}, {8: 0},   # negative padding, zero kernel, stride, dilation
], ids=["OH", "OW", "OH_matching_cols", "short_bottom", "short_right", "negative_pad",
        "zero_kernel", "zero_stride", "zero_dilation"])
def test_misfitting_plain_geometry_is_refused(fold, change):
    geometry = [change.get(i, v) for i, v in enumerate(GEOMETRY)]
    kh, kw, OH, OW = geometry[0], geometry[1], geometry[10], geometry[11]
    col = np.zeros((3 * max(kh, 0) * max(kw, 0), 2 * max(OH, 0) * max(OW, 0)), np.float32)
    with pytest.raises(ValueError, match="must be positive|does not fit|col has shape"):
        if fold:
            _im2col.col2im(col, X.copy(), *geometry, 1)
        else:
            _im2col.im2col(X, col, *geometry, 1)
