"""im2col / col2im and the batch <-> rows transposes around convolution's GEMMs.

A chunk of B samples is unrolled into a column matrix ``col`` of shape
``(C * kh * kw, B * OH * OW)``: row ``(c * kh + i) * kw + j`` holds input channel ``c``
seen through kernel tap ``(i, j)``, and the columns of sample ``b`` are the block
``[b * P, (b + 1) * P)`` with ``P = OH * OW``. The rows of one group of channels are
contiguous, so a grouped convolution is a batched matmul over ``(G, K / G, B * P)``.

Every kernel runs a ``prange`` over (sample, channel) planes; a task writes only its own
plane or its own block of rows, so no atomics are needed. A padded plane is first copied
into a zero-bordered per-thread scratch plane, so that every row of every tap is the same
fixed-length copy (or add) without bounds checks.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset

from _parallel cimport checked_mul, check_geometry_args, omp_get_thread_num, team_size
from _rows cimport add_row, copy_row


cdef void _pad_plane(const floating* x, Py_ssize_t H, Py_ssize_t W, floating* xp,
                     Py_ssize_t Wp, Py_ssize_t pt, Py_ssize_t pl) noexcept nogil:
    """Copy an (H, W) plane into the interior of the zero-bordered plane ``xp``."""
    cdef Py_ssize_t y
    for y in range(H):
        copy_row(xp + (y + pt) * Wp + pl, x + y * W, W)


cdef void _gather_row(floating* dst, const floating* src, Py_ssize_t n,
                      Py_ssize_t stride) noexcept nogil:
    """dst[:n] = src[::stride][:n]."""
    cdef Py_ssize_t k
    for k in range(n):
        dst[k] = src[k * stride]


cdef void _im2col_plane(const floating* xp, Py_ssize_t Wp, floating* col, Py_ssize_t ld,
                        Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                        Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t OH,
                        Py_ssize_t OW) noexcept nogil:
    """Unroll one padded plane (row stride ``Wp``) into kh * kw rows of ``col``."""
    cdef Py_ssize_t i, j, oy, ox
    cdef floating* dst
    cdef const floating* src
    for i in range(kh):
        for j in range(kw):
            dst = col + (i * kw + j) * ld
            src = xp + i * dh * Wp + j * dw
            if sw == 1:
                for oy in range(OH):
                    copy_row(dst + oy * OW, src + oy * sh * Wp, OW)
            else:
                for oy in range(OH):
                    _gather_row(dst + oy * OW, src + oy * sh * Wp, OW, sw)


cdef void _col2im_plane(const floating* col, floating* xp, Py_ssize_t Wp, Py_ssize_t ld,
                        Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                        Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t OH,
                        Py_ssize_t OW) noexcept nogil:
    """Add one plane's kh * kw rows of ``col`` into the padded plane ``xp``."""
    cdef Py_ssize_t i, j, oy, ox
    cdef const floating* src
    cdef floating* dst
    for i in range(kh):
        for j in range(kw):
            src = col + (i * kw + j) * ld
            dst = xp + i * dh * Wp + j * dw
            for oy in range(OH):
                if sw == 1:
                    add_row(dst, src, OW)
                else:
                    for ox in range(OW):
                        dst[ox * sw] += src[ox]
                src += OW
                dst += sh * Wp


cdef int _check_col(Py_ssize_t B, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                    Py_ssize_t rows, Py_ssize_t cols,
                    Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                    Py_ssize_t pt, Py_ssize_t pb, Py_ssize_t pl, Py_ssize_t pr,
                    Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t OH, Py_ssize_t OW) except -1:
    """Guard the private kernels against a caller's shape mistakes (no OOB access)."""
    check_geometry_args((("kernel height", kh), ("kernel width", kw), ("stride", sh),
                         ("stride", sw), ("padding", pt), ("padding", abs(pb)),
                         ("padding", pl), ("padding", abs(pr)), ("dilation", dh),
                         ("dilation", dw), ("output height", OH), ("output width", OW)))
    if min(kh, kw, sh, sw, dh, dw, OH, OW) < 1 or min(pt, pl) < 0:
        raise ValueError(f"kernel {(kh, kw)}, stride {(sh, sw)}, dilation {(dh, dw)} "
                         f"and output {(OH, OW)} must be positive, top and left padding "
                         f"{(pt, pl)} >= 0")
    # the last output reads padded row (OH-1)*sh + (kh-1)*dh, which the padded input must
    # hold (the bottom/right padding is negative where no output reaches the last rows,
    # as in the input gradient of a transposed convolution with output_padding)
    if ((OH - 1) * sh + (kh - 1) * dh >= H + pt + pb
            or (OW - 1) * sw + (kw - 1) * dw >= W + pl + pr):
        raise ValueError(f"output {(OH, OW)} does not fit an input of {(H, W)} with padding "
                         f"{((pt, pb), (pl, pr))}, kernel {(kh, kw)}, stride {(sh, sw)}, "
                         f"dilation {(dh, dw)}")
    cdef Py_ssize_t K = checked_mul(checked_mul(C, kh, "col"), kw, "col")
    cdef Py_ssize_t P = checked_mul(checked_mul(B, OH, "col"), OW, "col")
    if rows != K or cols != P:
        raise ValueError(f"col has shape {(rows, cols)}, expected {(C * kh * kw, B * OH * OW)}")
    return 0


cdef class _Planes:
    """One zero-bordered (Hp, Wp) scratch plane per thread for an im2col / col2im call.

    Reading from (or adding into) a padded copy makes every row of every tap the same
    fixed-length copy: no per-row bounds, no edge fills, bookkeeping that costs more than
    the data on short rows (benchmark case a: LeNet conv1).
    """
    cdef void* mem
    cdef Py_ssize_t Hp, Wp, size
    cdef bint padded

    def __cinit__(self, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                  Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                  Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t OH, Py_ssize_t OW,
                  int team, Py_ssize_t itemsize):
        # rows/columns actually read: up to the last output's last tap
        self.Hp = max(H + ph, (OH - 1) * sh + (kh - 1) * dh + 1)
        self.Wp = max(W + pw, (OW - 1) * sw + (kw - 1) * dw + 1)
        self.padded = ph > 0 or pw > 0 or self.Hp > H or self.Wp > W
        self.size = checked_mul(self.Hp, self.Wp, "a padded plane")
        self.mem = NULL
        if self.padded:
            checked_mul(checked_mul(team, self.size, "the padded planes"), itemsize,
                        "the padded planes' bytes")
            self.mem = calloc(team * self.size, itemsize)
            if self.mem == NULL:
                raise MemoryError(f"no memory for {team} padded planes of "
                                  f"{(self.Hp, self.Wp)}")

    def __dealloc__(self):
        free(self.mem)


def im2col(const floating[:, :, :, ::1] x, floating[:, ::1] col,
           Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
           Py_ssize_t pt, Py_ssize_t pb, Py_ssize_t pl, Py_ssize_t pr,
           Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t OH, Py_ssize_t OW, int n_threads):
    """Unroll the chunk ``x`` (B, C, H, W) into ``col`` (C*kh*kw, B*OH*OW)."""
    cdef Py_ssize_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    _check_col(B, C, H, W, col.shape[0], col.shape[1], kh, kw, sh, sw, pt, pb, pl, pr, dh,
               dw, OH, OW)
    cdef Py_ssize_t t, b, c, ld = col.shape[1]
    if B * C == 0 or H * W == 0:
        return
    cdef int team = team_size(n_threads, B * C)
    cdef _Planes planes = _Planes(H, W, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW, team,
                                  sizeof(floating))
    cdef Py_ssize_t Wp = planes.Wp if planes.padded else W
    cdef floating* xp
    with nogil:
        for t in prange(B * C, schedule="static", num_threads=team):
            b = t // C
            c = t % C
            if planes.padded:
                xp = <floating*>planes.mem + omp_get_thread_num() * planes.size
                _pad_plane(&x[b, c, 0, 0], H, W, xp, Wp, pt, pl)
            else:
                xp = <floating*>&x[b, c, 0, 0]
            _im2col_plane(xp, Wp, &col[c * kh * kw, b * OH * OW], ld,
                          kh, kw, sh, sw, dh, dw, OH, OW)


def col2im(const floating[:, ::1] col, floating[:, :, :, ::1] x,
           Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
           Py_ssize_t pt, Py_ssize_t pb, Py_ssize_t pl, Py_ssize_t pr,
           Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t OH, Py_ssize_t OW, int n_threads):
    """Fold ``col`` (C*kh*kw, B*OH*OW) back into ``x`` (B, C, H, W), overwriting it."""
    cdef Py_ssize_t B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    _check_col(B, C, H, W, col.shape[0], col.shape[1], kh, kw, sh, sw, pt, pb, pl, pr, dh,
               dw, OH, OW)
    cdef Py_ssize_t t, b, c, y, ld = col.shape[1]
    if B * C == 0 or H * W == 0:
        return
    cdef int team = team_size(n_threads, B * C)
    cdef _Planes planes = _Planes(H, W, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW, team,
                                  sizeof(floating))
    cdef Py_ssize_t Wp = planes.Wp if planes.padded else W
    cdef floating* xp
    with nogil:
        for t in prange(B * C, schedule="static", num_threads=team):
            b = t // C
            c = t % C
            if planes.padded:
                xp = <floating*>planes.mem + omp_get_thread_num() * planes.size
                memset(xp, 0, planes.size * sizeof(floating))
            else:
                xp = &x[b, c, 0, 0]
                memset(xp, 0, H * W * sizeof(floating))
            _col2im_plane(&col[c * kh * kw, b * OH * OW], xp, Wp, ld,
                          kh, kw, sh, sw, dh, dw, OH, OW)
            if planes.padded:
                for y in range(H):
                    copy_row(&x[b, c, y, 0], xp + (y + pt) * Wp + pl, W)


def rows_to_batch(const floating[:, ::1] rows, floating[:, :, ::1] out,
                  const floating[::1] bias, int n_threads):
    """``out[b, f, :] = rows[f, b*P:(b+1)*P] + bias[f]`` (bias may be empty)."""
    cdef Py_ssize_t B = out.shape[0], F = out.shape[1], P = out.shape[2]
    cdef Py_ssize_t t, b, f, p
    cdef bint has_bias = bias.shape[0] > 0
    cdef floating beta
    if rows.shape[0] != F or rows.shape[1] != B * P:
        raise ValueError(f"rows has shape {(rows.shape[0], rows.shape[1])}, expected {(F, B * P)}")
    if has_bias and bias.shape[0] != F:
        raise ValueError(f"bias has shape {(bias.shape[0],)}, expected {(F,)}")
    if P == 0:
        return
    cdef int team = team_size(n_threads, B * F)
    with nogil:
        for t in prange(B * F, schedule="static", num_threads=team):
            b = t // F
            f = t % F
            if has_bias:
                beta = bias[f]
                for p in range(P):
                    out[b, f, p] = rows[f, b * P + p] + beta
            else:
                memcpy(&out[b, f, 0], &rows[f, b * P], P * sizeof(floating))


def batch_to_rows(const floating[:, :, ::1] batch, floating[:, ::1] rows, int n_threads):
    """``rows[f, b*P:(b+1)*P] = batch[b, f, :]``: (B, F, P) -> (F, B*P)."""
    cdef Py_ssize_t B = batch.shape[0], F = batch.shape[1], P = batch.shape[2]
    cdef Py_ssize_t t, b, f
    if rows.shape[0] != F or rows.shape[1] != B * P:
        raise ValueError(f"rows has shape {(rows.shape[0], rows.shape[1])}, expected {(F, B * P)}")
    if P == 0:
        return
    cdef int team = team_size(n_threads, B * F)
    with nogil:
        for t in prange(B * F, schedule="static", num_threads=team):
            b = t // F
            f = t % F
            memcpy(&rows[f, b * P], &batch[b, f, 0], P * sizeof(floating))


cdef double _plane_sum(const floating* x, Py_ssize_t n) noexcept nogil:
    """Sum in double with eight independent accumulators: one chain of dependent adds
    runs at one element per add latency; eight overlap, and the compiler packs them
    into vector adds (benchmark case a: the bias gradient of LeNet conv1)."""
    cdef double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0
    cdef Py_ssize_t i = 0
    while i + 8 <= n:
        a0 += x[i]
        a1 += x[i + 1]
        a2 += x[i + 2]
        a3 += x[i + 3]
        a4 += x[i + 4]
        a5 += x[i + 5]
        a6 += x[i + 6]
        a7 += x[i + 7]
        i += 8
    while i < n:
        a0 += x[i]
        i += 1
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))


def channel_sums(const floating[:, :, ::1] x, floating[::1] out, int n_threads):
    """``out[c] = x[:, c, :].sum()`` accumulated in double (the bias gradient)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], P = x.shape[2]
    cdef Py_ssize_t c, n
    cdef double acc
    if out.shape[0] != C:
        raise ValueError(f"out has shape {(out.shape[0],)}, expected {(C,)}")
    if N * C * P == 0:
        out[:] = 0
        return
    cdef int team = team_size(n_threads, C)
    with nogil:
        for c in prange(C, schedule="static", num_threads=team):
            acc = 0.0
            for n in range(N):
                acc = acc + _plane_sum(&x[n, c, 0], P)
            out[c] = <floating>acc
