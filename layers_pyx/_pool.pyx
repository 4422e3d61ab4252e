"""Max and average pooling, forward and backward, one (n, c) plane per task.

Arrays are seen as stacks of planes: inputs ``(N*C, H, W)``, outputs ``(N*C, OH, OW)``.
Each task of the ``prange`` reads and writes only its own plane, so the backward
scatter-adds need no atomics. Windows start at ``o * stride - pad``; the caller checks
``pad <= kernel // 2`` and computes the output size (including ceil_mode).
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport INFINITY
from libc.stdint cimport int64_t
from libc.string cimport memset

from _max_take cimport max_take
from _parallel cimport ceil_div, check_geometry_args, team_size
from _relu cimport relu


cdef inline void _tap_range(Py_ssize_t start, Py_ssize_t dilation, Py_ssize_t size,
                            Py_ssize_t k, Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    """Taps t in [lo, hi) of a window at ``start`` land inside [0, size)."""
    lo[0] = min(k, max(<Py_ssize_t>0, ceil_div(-start, dilation)))
    hi[0] = max(lo[0], min(k, ceil_div(size - start, dilation)))


cdef inline Py_ssize_t _first_tap(Py_ssize_t start, Py_ssize_t dilation) noexcept nogil:
    """The first tap at or after 0 of a window starting at ``start``, whether or not it is
    inside the input: PyTorch's ``while (i < 0) i += dilation``. A window without an
    input element gets the index of its first taps along both axes (possibly past the
    end of a row, or of the plane), as PyTorch's does."""
    return start if start >= 0 else start + ceil_div(-start, dilation) * dilation


cdef inline void _max_window(const floating* x, Py_ssize_t W, Py_ssize_t hs, Py_ssize_t ws,
                             Py_ssize_t ilo, Py_ssize_t ihi, Py_ssize_t jlo, Py_ssize_t jhi,
                             Py_ssize_t dh, Py_ssize_t dw, floating* y,
                             int64_t* idx) noexcept nogil:
    """Max over taps [ilo, ihi) x [jlo, jhi) of the window at (hs, ws): PyTorch's rule,
    ``v > best or v != v`` from -inf, so the first maximum wins and NaN propagates."""
    cdef Py_ssize_t i, j, pos, row
    cdef int64_t best_pos = (hs + ilo * dh) * W + ws + jlo * dw
    cdef floating best = -INFINITY
    for i in range(ilo, ihi):
        row = (hs + i * dh) * W + ws
        for j in range(jlo, jhi):
            pos = row + j * dw
            max_take(x[pos], pos, &best, &best_pos)
    y[0] = best
    idx[0] = best_pos


cdef inline void _max_tap(const floating* x, Py_ssize_t off, Py_ssize_t sw,
                          Py_ssize_t ox_lo, Py_ssize_t ox_hi, floating* y,
                          int64_t* idx) noexcept nogil:
    """Fold one tap, at ``x[off + ox * sw]``, into the running maxima of a row."""
    cdef Py_ssize_t ox, pos
    for ox in range(ox_lo, ox_hi):
        pos = off + ox * sw
        max_take(x[pos], pos, &y[ox], &idx[ox])


cdef void _max_row_interior(const floating* x, Py_ssize_t W, Py_ssize_t hs,
                            Py_ssize_t ilo, Py_ssize_t ihi, Py_ssize_t kw, Py_ssize_t sw,
                            Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t ox_lo,
                            Py_ssize_t ox_hi, floating* y, int64_t* idx) noexcept nogil:
    """Windows ox_lo..ox_hi of one output row, all of whose column taps are inside.

    Tap by tap across the whole row (the taps in window order, so the first maximum
    still wins): stores are unconditional, which lets the compiler vectorise the loop.
    """
    cdef Py_ssize_t i, j, ox, off
    off = (hs + ilo * dh) * W - pw
    for ox in range(ox_lo, ox_hi):
        y[ox] = -INFINITY
        idx[ox] = off + ox * sw
    for i in range(ilo, ihi):
        for j in range(kw):
            off = (hs + i * dh) * W - pw + j * dw
            _max_tap(x, off, sw, ox_lo, ox_hi, y, idx)




cdef inline bint _is_2x2(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                         Py_ssize_t ph, Py_ssize_t pw) noexcept nogil:
    """2x2 windows, stride 2, no padding: the common pooling layer, unrolled."""
    return kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0


cdef inline void _max_row_2x2(const floating* r0, const floating* r1, floating* y,
                              int* code, Py_ssize_t cols) noexcept nogil:
    """One output row of 2x2 windows: maxima in ``y``, the winning tap (0-3, in window
    order) in ``code``. PyTorch's rule, ``v > best or v != v``, as selects rather than
    branches, so that the compiler vectorises the row."""
    cdef Py_ssize_t ox
    cdef floating best, v
    cdef int c
    cdef bint take
    for ox in range(cols):
        best = r0[2 * ox]
        c = 0
        v = r0[2 * ox + 1]
        take = (v > best) | (v != v)
        best = v if take else best
        c = 1 if take else c
        v = r1[2 * ox]
        take = (v > best) | (v != v)
        best = v if take else best
        c = 2 if take else c
        v = r1[2 * ox + 1]
        take = (v > best) | (v != v)
        best = v if take else best
        c = 3 if take else c
        y[ox] = best
        code[ox] = c


cdef void _max_plane_2x2(const floating* x, floating* y, int64_t* idx, Py_ssize_t W,
                         Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t OW) noexcept nogil:
    """2x2 windows, stride 2, no padding: the first ``rows`` x ``cols`` outputs, whose
    windows lie inside the plane (the common pooling layer)."""
    cdef Py_ssize_t oy, ox, p
    cdef int code[64]
    cdef Py_ssize_t x0, n
    for oy in range(rows):
        x0 = 0
        while x0 < cols:  # in pieces of 64 outputs (the codes stay on the stack)
            n = min(<Py_ssize_t>64, cols - x0)
            p = 2 * oy * W + 2 * x0
            _max_row_2x2(x + p, x + p + W, y + oy * OW + x0, code, n)
            for ox in range(n):
                idx[oy * OW + x0 + ox] = p + 2 * ox + (code[ox] & 1) + (code[ox] >> 1) * W
            x0 += n


cdef Py_ssize_t _max_plane(const floating* x, floating* y, int64_t* idx,
                           Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                           Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                           Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh,
                           Py_ssize_t dw) noexcept nogil:
    """Max of each window of one plane; returns the number of empty windows.

    Columns [ox_lo, ox_hi) have every tap inside the row and go through the row-wise
    interior loop; only the border columns pay for clipping their window.
    """
    cdef Py_ssize_t oy, ox, hs, ilo, ihi
    cdef Py_ssize_t empty = 0
    cdef Py_ssize_t ox_lo = min(OW, ceil_div(pw, sw))
    cdef Py_ssize_t reach = W - 1 - (kw - 1) * dw + pw  # largest ws + pw with all taps in
    cdef Py_ssize_t ox_hi = max(ox_lo, min(OW, reach // sw + 1 if reach >= 0 else 0))
    cdef Py_ssize_t first_oy = 0
    if _is_2x2(kh, kw, sh, sw, ph, pw) and dh == 1 and dw == 1:
        first_oy = min(OH, H // 2)
        _max_plane_2x2(x, y, idx, W, first_oy, min(OW, W // 2), OW)
        for oy in range(first_oy):  # a ceil_mode window past the last column
            for ox in range(min(OW, W // 2), OW):
                empty += _max_border(x, W, 2 * oy, ox, 0, 2, 2, 2, 0, 1, 1,
                                     y + oy * OW, idx + oy * OW)
    for oy in range(first_oy, OH):
        hs = oy * sh - ph
        _tap_range(hs, dh, H, kh, &ilo, &ihi)
        if ilo == ihi:  # no tap row inside the input: every window of this row is empty
            for ox in range(OW):
                y[oy * OW + ox] = -INFINITY
                idx[oy * OW + ox] = _first_tap(hs, dh) * W + _first_tap(ox * sw - pw, dw)
            empty += OW
            continue
        _max_row_interior(x, W, hs, ilo, ihi, kw, sw, pw, dh, dw, ox_lo, ox_hi,
                          y + oy * OW, idx + oy * OW)
        for ox in range(ox_lo):
            empty += _max_border(x, W, hs, ox, ilo, ihi, kw, sw, pw, dh, dw,
                                 y + oy * OW, idx + oy * OW)
        for ox in range(ox_hi, OW):
            empty += _max_border(x, W, hs, ox, ilo, ihi, kw, sw, pw, dh, dw,
                                 y + oy * OW, idx + oy * OW)
    return empty


cdef inline Py_ssize_t _max_border(const floating* x, Py_ssize_t W, Py_ssize_t hs,
                                   Py_ssize_t ox, Py_ssize_t ilo, Py_ssize_t ihi,
                                   Py_ssize_t kw, Py_ssize_t sw, Py_ssize_t pw,
                                   Py_ssize_t dh, Py_ssize_t dw, floating* y,
                                   int64_t* idx) noexcept nogil:
    """One window whose columns are clipped; returns 1 if it holds no input element
    (its tap rows [ilo, ihi) are inside, its columns not)."""
    cdef Py_ssize_t jlo, jhi, ws = ox * sw - pw
    _tap_range(ws, dw, W, kw, &jlo, &jhi)
    if jlo == jhi:
        y[ox] = -INFINITY
        idx[ox] = (hs + ilo * dh) * W + _first_tap(ws, dw)
        return 1
    _max_window(x, W, hs, ws, ilo, ihi, jlo, jhi, dh, dw, &y[ox], &idx[ox])
    return 0


cdef Py_ssize_t _max_plane_backward(const floating* gy, const int64_t* idx, floating* gx,
                                    Py_ssize_t P, Py_ssize_t HW,
                                    const floating* y) noexcept nogil:
    """Scatter-add ``gy`` to the argmax positions; returns the number of negative indices.
    With the forward output ``y`` of a fused ReLU (else NULL), only where ``y > 0``.

    An index outside the plane is skipped: a negative one is no forward's, one past the
    plane that of a window without an input element (whose output, -inf, depends on no
    input; PyTorch's backward writes such a gradient past the plane)."""
    cdef Py_ssize_t p, bad = 0
    cdef int64_t k
    cdef floating g
    memset(gx, 0, HW * sizeof(floating))
    for p in range(P):
        k = idx[p]
        g = gy[p]
        if y != NULL:
            g = g if y[p] > 0 else 0  # a select: adding +0 changes nothing
        if k < 0:
            bad += 1
        elif k < HW:
            gx[k] += g
    return bad


cdef void _relu_plane(floating* y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t p
    for p in range(n):
        y[p] = relu(y[p])


cdef inline Py_ssize_t _window(Py_ssize_t o, Py_ssize_t s, Py_ssize_t before,
                               Py_ssize_t after, Py_ssize_t k, Py_ssize_t size,
                               Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    """Clip window o to the input; return its length clipped to the padded input
    (``before`` and ``after`` it)."""
    cdef Py_ssize_t start = o * s - before
    cdef Py_ssize_t end = min(start + k, size + after)
    lo[0] = max(start, <Py_ssize_t>0)
    hi[0] = min(end, size)
    return end - start


cdef inline Py_ssize_t _avg_divisor(Py_ssize_t len_h, Py_ssize_t len_w, Py_ssize_t h0,
                                     Py_ssize_t h1, Py_ssize_t w0, Py_ssize_t w1,
                                     bint count_include_pad,
                                     Py_ssize_t divisor_override) noexcept nogil:
    """PyTorch's divisor of one window: ``divisor_override`` when it is not 0, else the
    window clipped to the padded input (count_include_pad) or to the input."""
    if divisor_override != 0:
        return divisor_override
    return len_h * len_w if count_include_pad else (h1 - h0) * (w1 - w0)


cdef inline void _avg_one(const floating* x, floating* y, Py_ssize_t oy, Py_ssize_t ox,
                          Py_ssize_t H, Py_ssize_t W, Py_ssize_t OW, Py_ssize_t kh,
                          Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt,
                          Py_ssize_t pb, Py_ssize_t pl, Py_ssize_t pr, bint count_include_pad,
                          Py_ssize_t divisor_override) noexcept nogil:
    """Mean of one window: its sum over PyTorch's divisor (``_avg_divisor``)."""
    cdef Py_ssize_t i, j, h0, h1, w0, w1, divisor
    cdef Py_ssize_t len_h = _window(oy, sh, pt, pb, kh, H, &h0, &h1)
    cdef Py_ssize_t len_w = _window(ox, sw, pl, pr, kw, W, &w0, &w1)
    cdef double acc = 0.0
    divisor = _avg_divisor(len_h, len_w, h0, h1, w0, w1, count_include_pad, divisor_override)
    for i in range(h0, h1):
        for j in range(w0, w1):
            acc = acc + x[i * W + j]
    y[oy * OW + ox] = <floating>(acc / divisor) if divisor != 0 else 0


cdef inline void _avg_one_backward(const floating* gy, floating* gx, Py_ssize_t oy,
                                   Py_ssize_t ox, Py_ssize_t H, Py_ssize_t W,
                                   Py_ssize_t OW, Py_ssize_t kh, Py_ssize_t kw,
                                   Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt,
                                   Py_ssize_t pb, Py_ssize_t pl, Py_ssize_t pr,
                                   bint count_include_pad,
                                   Py_ssize_t divisor_override) noexcept nogil:
    """Spread one output's gradient over its window."""
    cdef Py_ssize_t i, j, h0, h1, w0, w1, divisor
    cdef Py_ssize_t len_h = _window(oy, sh, pt, pb, kh, H, &h0, &h1)
    cdef Py_ssize_t len_w = _window(ox, sw, pl, pr, kw, W, &w0, &w1)
    cdef floating g
    divisor = _avg_divisor(len_h, len_w, h0, h1, w0, w1, count_include_pad, divisor_override)
    if divisor == 0:
        return
    g = gy[oy * OW + ox] / divisor
    for i in range(h0, h1):
        for j in range(w0, w1):
            gx[i * W + j] += g


cdef void _avg_plane(const floating* x, floating* y, Py_ssize_t H, Py_ssize_t W,
                     Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kh, Py_ssize_t kw,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pb,
                     Py_ssize_t pl, Py_ssize_t pr, bint count_include_pad, Py_ssize_t divisor_override) noexcept nogil:
    cdef Py_ssize_t oy, ox, p, rows = 0, cols = 0
    cdef Py_ssize_t divisor_2x2 = divisor_override if divisor_override != 0 else 4
    cdef double acc
    if _is_2x2(kh, kw, sh, sw, pt + pb, pl + pr):
        rows, cols = min(OH, H // 2), min(OW, W // 2)
        for oy in range(rows):
            for ox in range(cols):
                p = 2 * oy * W + 2 * ox
                acc = 0.0  # the same order of additions as the general path
                acc = acc + x[p]
                acc = acc + x[p + 1]
                acc = acc + x[p + W]
                acc = acc + x[p + W + 1]
                y[oy * OW + ox] = <floating>(acc / divisor_2x2)
    for oy in range(OH):  # every window the unrolled loop did not cover
        for ox in range(cols if oy < rows else 0, OW):
            _avg_one(x, y, oy, ox, H, W, OW, kh, kw, sh, sw, pt, pb, pl, pr, count_include_pad,
                     divisor_override)


cdef void _avg_plane_backward(const floating* gy, floating* gx, Py_ssize_t H, Py_ssize_t W,
                              Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kh, Py_ssize_t kw,
                              Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pb,
                              Py_ssize_t pl, Py_ssize_t pr, bint count_include_pad,
                              Py_ssize_t divisor_override) noexcept nogil:
    cdef Py_ssize_t oy, ox, p, rows = 0, cols = 0
    cdef Py_ssize_t divisor_2x2 = divisor_override if divisor_override != 0 else 4
    cdef floating g
    memset(gx, 0, H * W * sizeof(floating))
    if _is_2x2(kh, kw, sh, sw, pt + pb, pl + pr):
        rows, cols = min(OH, H // 2), min(OW, W // 2)
        for oy in range(rows):
            for ox in range(cols):
                p = 2 * oy * W + 2 * ox
                g = gy[oy * OW + ox] / divisor_2x2  # windows do not overlap: plain stores
                gx[p] = g
                gx[p + 1] = g
                gx[p + W] = g
                gx[p + W + 1] = g
    for oy in range(OH):
        for ox in range(cols if oy < rows else 0, OW):
            _avg_one_backward(gy, gx, oy, ox, H, W, OW, kh, kw, sh, sw, pt, pb, pl, pr,
                              count_include_pad, divisor_override)


cdef int _check_geometry(Py_ssize_t in_planes, Py_ssize_t out_planes, Py_ssize_t kh,
                         Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
                         Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw) except -1:
    """Guard the private kernels against a caller's mistakes (no OOB access)."""
    check_geometry_args((("kernel height", kh), ("kernel width", kw), ("stride", sh),
                         ("stride", sw), ("padding", ph), ("padding", pw), ("dilation", dh),
                         ("dilation", dw)))
    if in_planes != out_planes:
        raise ValueError(f"{in_planes} input planes but {out_planes} output planes")
    if min(kh, kw, sh, sw, dh, dw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"kernel {(kh, kw)}, stride {(sh, sw)} and dilation {(dh, dw)} "
                         f"must be positive and padding {(ph, pw)} non-negative")
    return 0


def max_pool_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                     int64_t[:, :, ::1] indices, Py_ssize_t kh, Py_ssize_t kw,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                     Py_ssize_t dh, Py_ssize_t dw, int n_threads, bint relu=False):
    """Fill ``y`` and ``indices`` (planes, OH, OW); returns the number of empty windows
    (windows holding no input element: -inf, with PyTorch's index, see ``_first_tap``).

    ``relu``: ``y = max(y, 0)`` as well, which is max-pooling of ``max(x, 0)`` (the two
    commute; the indices then point at the maximum of ``x``, and the backward, given this
    ``y``, passes no gradient where ``y <= 0``)."""
    _check_geometry(x.shape[0], y.shape[0], kh, kw, sh, sw, ph, pw, dh, dw)
    if (indices.shape[0] != y.shape[0] or indices.shape[1] != y.shape[1]
            or indices.shape[2] != y.shape[2]):
        raise ValueError("indices must have the shape of y")
    cdef Py_ssize_t t, empty = 0
    cdef Py_ssize_t H = x.shape[1], W = x.shape[2], OH = y.shape[1], OW = y.shape[2]
    if OH * OW == 0:
        return 0
    if H * W == 0:
        return y.shape[0] * OH * OW
    cdef int team = team_size(n_threads, x.shape[0])
    with nogil:
        for t in prange(x.shape[0], schedule="static", num_threads=team):
            empty += _max_plane(&x[t, 0, 0], &y[t, 0, 0], &indices[t, 0, 0], H, W, OH, OW,
                                kh, kw, sh, sw, ph, pw, dh, dw)
            if relu:
                _relu_plane(&y[t, 0, 0], OH * OW)
    return empty


def max_pool_backward(const floating[:, ::1] grad_out, const int64_t[:, ::1] indices,
                      floating[:, ::1] grad_in, int n_threads,
                      const floating[:, ::1] relu_output=None):
    """``grad_in`` (planes, H*W) = scatter-add of ``grad_out`` (planes, P) at ``indices``;
    with ``relu_output`` (the forward's ``y`` of a fused ReLU), only where it is > 0.

    Indices outside ``[0, H*W)`` are skipped; the number of negative ones (no forward
    gives those) is returned. An index past the plane is what PyTorch gives a window
    without an input element: its gradient goes nowhere (PyTorch writes it past the plane).
    """
    if indices.shape[0] != grad_out.shape[0] or indices.shape[1] != grad_out.shape[1]:
        raise ValueError("indices must have the shape of grad_out")
    if relu_output is not None and (relu_output.shape[0] != grad_out.shape[0]
                                    or relu_output.shape[1] != grad_out.shape[1]):
        raise ValueError("relu_output must have the shape of grad_out")
    if grad_in.shape[0] != grad_out.shape[0]:
        raise ValueError("grad_in and grad_out must have the same number of planes")
    cdef Py_ssize_t t, p, bad = 0, P = grad_out.shape[1], HW = grad_in.shape[1]
    cdef bint masked = relu_output is not None
    if HW == 0:  # nowhere to write: only count the negative indices
        for t in range(grad_out.shape[0]):
            for p in range(P):
                bad += indices[t, p] < 0
        return bad
    if P == 0:
        grad_in[:, :] = 0
        return 0
    cdef int team = team_size(n_threads, grad_out.shape[0])
    with nogil:
        for t in prange(grad_out.shape[0], schedule="static", num_threads=team):
            bad += _max_plane_backward(&grad_out[t, 0], &indices[t, 0], &grad_in[t, 0], P, HW,
                                       &relu_output[t, 0] if masked else NULL)
    return bad


def avg_pool_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                     Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                     Py_ssize_t pt, Py_ssize_t pb, Py_ssize_t pl, Py_ssize_t pr,
                     bint count_include_pad, int n_threads, Py_ssize_t divisor_override=0):
    """Fill ``y`` (planes, OH, OW) with window means of ``x`` (planes, H, W), padded by
    ``pt``, ``pb``, ``pl``, ``pr`` on the top, bottom, left and right; a
    ``divisor_override`` other than 0 divides every window's sum instead (PyTorch's)."""
    _check_geometry(x.shape[0], y.shape[0], kh, kw, sh, sw, min(pt, pb), min(pl, pr), 1, 1)
    check_geometry_args((("padding", pt), ("padding", pb), ("padding", pl), ("padding", pr)))
    cdef Py_ssize_t t, H = x.shape[1], W = x.shape[2], OH = y.shape[1], OW = y.shape[2]
    if OH * OW == 0 or H * W == 0:
        return
    cdef int team = team_size(n_threads, x.shape[0])
    with nogil:
        for t in prange(x.shape[0], schedule="static", num_threads=team):
            _avg_plane(&x[t, 0, 0], &y[t, 0, 0], H, W, OH, OW, kh, kw, sh, sw, pt, pb, pl,
                       pr, count_include_pad, divisor_override)


def avg_pool_backward(const floating[:, :, ::1] grad_out, floating[:, :, ::1] grad_in,
                      Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                      Py_ssize_t pt, Py_ssize_t pb, Py_ssize_t pl, Py_ssize_t pr,
                      bint count_include_pad, int n_threads, Py_ssize_t divisor_override=0):
    """Overwrite ``grad_in`` (planes, H, W) with the adjoint of average pooling (with
    the forward's padding and ``divisor_override``, 0 for none)."""
    _check_geometry(grad_in.shape[0], grad_out.shape[0], kh, kw, sh, sw, min(pt, pb),
                    min(pl, pr), 1, 1)
    check_geometry_args((("padding", pt), ("padding", pb), ("padding", pl), ("padding", pr)))
    cdef Py_ssize_t t, H = grad_in.shape[1], W = grad_in.shape[2]
    cdef Py_ssize_t OH = grad_out.shape[1], OW = grad_out.shape[2]
    if H * W == 0:
        return
    if OH * OW == 0:
        grad_in[:, :, :] = 0
        return
    cdef int team = team_size(n_threads, grad_in.shape[0])
    with nogil:
        for t in prange(grad_in.shape[0], schedule="static", num_threads=team):
            _avg_plane_backward(&grad_out[t, 0, 0], &grad_in[t, 0, 0], H, W, OH, OW,
                                kh, kw, sh, sw, pt, pb, pl, pr, count_include_pad,
                                divisor_override)
