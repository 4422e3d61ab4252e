"""Direct float32 convolution on CPUs with AVX-512 (the micro-kernel: _direct_conv.h).

Output channels are the vector lanes: a tile of 16 or 32 channels times a block of up to
14 pixels of one output row stays in registers while the kernel runs over input channels
and taps. Weights are packed once per call into tiles, ``(G, tiles, C/G, kh, kw, lanes)``
with zero lanes past the last channel; a task is one (sample, group), which copies its
input channels into a zero-bordered per-thread scratch (column padding) and skips input
rows that fall in the padding. The input gradient of a stride-1 convolution is the same
kernel run on ``grad_out`` with the weights swapped (in <-> out) and flipped. The weight
gradient keeps a tile of channels times the taps of one kernel row in registers over
every pixel of a sample, from ``grad_out`` transposed to channels-innermost, and adds it
into a packed gradient that :func:`unpack_weights` turns back into ``(F, C/G, kh, kw)``.

The caller checks that :func:`available` is true before calling :func:`conv`.
"""
from cython.parallel cimport prange
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy

from _parallel cimport checked_add, checked_mul, check_geometry_args, omp_get_thread_num, team_size


cdef extern from "_direct_conv.h" nogil:
    int cynet_direct_conv_available()
    void cynet_dc_tile(const float *xs, Py_ssize_t C, Py_ssize_t H, Py_ssize_t Wp,
                       const float *w, int tv, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                       Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t dh, Py_ssize_t dw,
                       Py_ssize_t OH, Py_ssize_t OW, float *out, const float *bias,
                       Py_ssize_t nv)
    void cynet_dcw_tile(const float *xs, Py_ssize_t C, Py_ssize_t H, Py_ssize_t Wp,
                        const float *dyT, Py_ssize_t ld, int tv, Py_ssize_t kh, Py_ssize_t kw,
                        Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t dh,
                        Py_ssize_t dw, Py_ssize_t OH, Py_ssize_t OW, float *gw)


def available():
    """True when this build and this CPU run the direct kernels."""
    return cynet_direct_conv_available() != 0


cdef inline Py_ssize_t _tile_lanes(Py_ssize_t remaining) noexcept nogil:
    """Lanes of the tile that starts with ``remaining`` channels left: two vectors while
    more than one is needed, then one."""
    return 32 if remaining > 16 else 16


def packed_size(Py_ssize_t groups, Py_ssize_t out_per_group, Py_ssize_t in_per_group,
                Py_ssize_t kh, Py_ssize_t kw):
    """Floats in the packed weights: full tiles of 32 lanes, the last of 16 or 32."""
    if min(groups, out_per_group, in_per_group, kh, kw) < 1:
        raise ValueError(f"groups {groups}, channels {(out_per_group, in_per_group)} and "
                         f"kernel {(kh, kw)} must be positive")
    cdef Py_ssize_t taps = checked_mul(checked_mul(in_per_group, kh, "packed weights"), kw,
                                       "packed weights")
    cdef Py_ssize_t full = (out_per_group - 1) // 32  # tiles before the last one
    cdef Py_ssize_t lanes = full * 32 + _tile_lanes(out_per_group - full * 32)
    return checked_mul(checked_mul(groups, lanes, "packed weights"), taps, "packed weights")


cdef int _transfer(float* packed, Py_ssize_t packed_len, float* w, Py_ssize_t F,
                   Py_ssize_t Cg, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t groups,
                   bint transposed, bint into_packed) except -1:
    """Copy between ``w`` (F, Cg, kh, kw) and its packed tiles, either way."""
    if groups < 1 or F % groups:
        raise ValueError(f"groups {groups} must divide the {F} filters")
    cdef Py_ssize_t Fg = F // groups
    cdef Py_ssize_t n_out = Cg if transposed else Fg   # per group, lanes
    cdef Py_ssize_t n_in = Fg if transposed else Cg
    cdef Py_ssize_t group_size = packed_size(1, n_out, n_in, kh, kw)
    cdef Py_ssize_t g, o, k, i, j, lanes, tile_base, at, w_at
    if packed_len != groups * group_size:
        raise ValueError(f"packed has {packed_len} floats, expected {groups * group_size}")
    with nogil:
        for g in range(groups):
            for o in range(n_out):
                lanes = _tile_lanes(n_out - (o // 32) * 32)
                tile_base = g * group_size + (o // 32) * 32 * n_in * kh * kw
                for k in range(n_in):
                    for i in range(kh):
                        for j in range(kw):
                            at = tile_base + ((k * kh + i) * kw + j) * lanes + o % 32
                            if transposed:
                                w_at = (((g * Fg + k) * Cg + o) * kh + kh - 1 - i) * kw + kw - 1 - j
                            else:
                                w_at = (((g * Fg + o) * Cg + k) * kh + i) * kw + j
                            if into_packed:
                                packed[at] = w[w_at]
                            else:
                                w[w_at] = packed[at]
    return 0


def pack_weights(const float[:, :, :, ::1] w, float[::1] packed, Py_ssize_t groups,
                 bint transposed):
    """Pack ``w`` (F, C/G, kh, kw) into ``packed`` (zeroed by the caller).

    ``transposed``: the weights of the input gradient, a convolution from F/G to C/G
    channels per group with each kernel flipped, ``w'[c, f, i, j] = w[f, c, kh-1-i, kw-1-j]``.
    """
    if w.shape[0] * w.shape[1] * w.shape[2] * w.shape[3] == 0:
        raise ValueError(f"w of shape {(w.shape[0], w.shape[1], w.shape[2], w.shape[3])} is empty")
    _transfer(&packed[0] if packed.shape[0] else NULL, packed.shape[0], <float*>&w[0, 0, 0, 0],
              w.shape[0], w.shape[1], w.shape[2], w.shape[3], groups, transposed, True)


def unpack_weights(const float[::1] packed, float[:, :, :, ::1] w, Py_ssize_t groups):
    """The inverse of ``pack_weights(w, packed, groups, False)``: fills ``w``."""
    if w.shape[0] * w.shape[1] * w.shape[2] * w.shape[3] == 0:
        raise ValueError(f"w of shape {(w.shape[0], w.shape[1], w.shape[2], w.shape[3])} is empty")
    _transfer(<float*>(&packed[0] if packed.shape[0] else NULL), packed.shape[0],
              &w[0, 0, 0, 0], w.shape[0], w.shape[1], w.shape[2], w.shape[3], groups, False,
              False)


cdef int _check_call(str other, Py_ssize_t other_n, Py_ssize_t N, Py_ssize_t C, Py_ssize_t F,
                     Py_ssize_t groups, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                     Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t pt,
                     Py_ssize_t pl, Py_ssize_t packed_len) except -1:
    """Guard the kernels against a caller's mistakes (no out-of-bounds access, no
    AVX-512 instruction on a CPU without it)."""
    if not cynet_direct_conv_available():
        raise RuntimeError("the direct convolution kernels need a CPU with AVX-512 "
                           "(cynet._direct.available() is False here)")
    if other_n != N:
        raise ValueError(f"{other} has {other_n} samples, x has {N}")
    if groups < 1 or C % groups or F % groups:
        raise ValueError(f"groups {groups} must divide the {C} input and {F} output channels")
    check_geometry_args((("kernel height", kh), ("kernel width", kw), ("stride", sh),
                         ("stride", sw), ("dilation", dh), ("dilation", dw),
                         ("left padding", pl), ("top padding", abs(pt))))
    if min(kh, kw, sh, sw, dh, dw) < 1 or pl < 0:
        raise ValueError(f"kernel {(kh, kw)}, stride {(sh, sw)} and dilation {(dh, dw)} "
                         f"must be positive, left padding {pl} >= 0")
    cdef Py_ssize_t size = packed_size(groups, F // groups, C // groups, kh, kw)
    if packed_len != size:
        raise ValueError(f"packed has {packed_len} floats, expected {size}")
    return 0


cdef inline Py_ssize_t _row_width(Py_ssize_t W, Py_ssize_t pl, Py_ssize_t OW, Py_ssize_t sw,
                                  Py_ssize_t kw, Py_ssize_t dw) noexcept nogil:
    """Values per row that the kernels read: the input after the left padding, and up to
    the last output's last tap (zeros past the input)."""
    return max(W + pl, (OW - 1) * sw + (kw - 1) * dw + 1)


cdef const float* _rows(const float* x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                        Py_ssize_t Wp, Py_ssize_t pl, float* own) noexcept nogil:
    """C planes of (H, W) with rows of Wp values, the left padding ``pl`` applied: a copy
    into ``own`` (whose borders stay zero) when ``Wp != W``, else ``x`` itself."""
    cdef Py_ssize_t c, r
    if Wp == W:
        return x
    for c in range(C):
        for r in range(H):
            memcpy(own + (c * H + r) * Wp + pl, x + (c * H + r) * W, W * sizeof(float))
    return own


def conv(const float[:, :, :, ::1] x, const float[::1] packed, const float[::1] bias,
         float[:, :, :, ::1] y, Py_ssize_t groups, Py_ssize_t kh, Py_ssize_t kw,
         Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh,
         Py_ssize_t dw, int n_threads):
    """``y = conv2d(x, w) + bias`` with ``w`` packed by :func:`pack_weights`; ``bias``
    may be empty. Padding ``pt`` may be of any sign (rows outside ``x`` are skipped),
    ``pl >= 0``; the output size is ``y``'s."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t F = y.shape[1], OH = y.shape[2], OW = y.shape[3]
    _check_call("y", y.shape[0], N, C, F, groups, kh, kw, sh, sw, dh, dw, pt, pl,
                packed.shape[0])
    cdef Py_ssize_t Cg = C // groups, Fg = F // groups
    cdef bint has_bias = bias.shape[0] > 0
    if has_bias and bias.shape[0] != F:
        raise ValueError(f"bias has {bias.shape[0]} values, expected {F}")
    if N == 0 or F == 0 or OH == 0 or OW == 0:
        return
    if C == 0 or H == 0 or W == 0:
        raise ValueError(f"x of shape {(N, C, H, W)} has no values for a non-empty output")
    cdef Py_ssize_t Wp = _row_width(W, pl, OW, sw, kw, dw)
    cdef bint copy = Wp != W
    cdef Py_ssize_t plane = checked_mul(checked_mul(Cg, H, "an input copy"), Wp,
                                        "an input copy")
    cdef Py_ssize_t group_size = packed.shape[0] // groups
    cdef Py_ssize_t taps = Cg * kh * kw
    cdef float* scratch = NULL
    cdef int team = team_size(n_threads, N * groups)
    if copy:
        checked_mul(checked_mul(team, plane, "the input copies"), sizeof(float),
                    "the input copies' bytes")
        scratch = <float*>calloc(team * plane, sizeof(float))
        if scratch == NULL:
            raise MemoryError(f"no memory for {team} input copies of {plane} floats")
    cdef Py_ssize_t task, n, g, f0, nv
    cdef const float* xs
    try:
        with nogil:
            for task in prange(N * groups, schedule="static", num_threads=team):
                n = task // groups
                g = task % groups
                xs = _rows(&x[n, g * Cg, 0, 0], Cg, H, W, Wp, pl,
                           scratch + omp_get_thread_num() * plane if copy else NULL)
                f0 = 0
                while f0 < Fg:
                    nv = min(Fg - f0, 32)
                    cynet_dc_tile(xs, Cg, H, Wp, &packed[g * group_size + f0 * taps],
                                  _tile_lanes(Fg - f0) // 16, kh, kw, sh, sw, pt, dh, dw,
                                  OH, OW, &y[n, g * Fg + f0, 0, 0],
                                  &bias[g * Fg + f0] if has_bias else NULL, nv)
                    f0 = f0 + 32
    finally:
        free(scratch)


def conv_weight_grad(const float[:, :, :, ::1] x, const float[:, :, :, ::1] grad_out,
                     float[::1] packed, Py_ssize_t groups, Py_ssize_t kh, Py_ssize_t kw,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
                     Py_ssize_t dh, Py_ssize_t dw, int n_threads):
    """Add the weight gradient of ``y = conv2d(x, w)`` given ``grad_out`` = dL/dy into
    ``packed`` (zeroed by the caller; laid out as :func:`pack_weights` packs ``w``).
    With several threads each sums its own samples, then the partial sums are added in
    thread order: the same result on every run with the same team of threads (OpenMP may
    give fewer threads than asked, e.g. with OMP_DYNAMIC, and then the sums differ in
    rounding)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t F = grad_out.shape[1], OH = grad_out.shape[2], OW = grad_out.shape[3]
    _check_call("grad_out", grad_out.shape[0], N, C, F, groups, kh, kw, sh, sw, dh, dw, pt,
                pl, packed.shape[0])
    cdef Py_ssize_t Cg = C // groups, Fg = F // groups, size = packed.shape[0]
    if N == 0 or F == 0 or OH == 0 or OW == 0 or C == 0:
        return
    if H == 0 or W == 0:
        raise ValueError(f"x of shape {(N, C, H, W)} has no values for a non-empty output")
    cdef Py_ssize_t Wp = _row_width(W, pl, OW, sw, kw, dw)
    cdef bint copy = Wp != W
    cdef Py_ssize_t plane = checked_mul(checked_mul(Cg, H, "an input copy"), Wp,
                                        "an input copy")
    cdef Py_ssize_t P = OH * OW, taps = Cg * kh * kw
    cdef Py_ssize_t group_size = size // groups
    cdef Py_ssize_t ld = group_size // taps  # lanes of all the tiles of a group
    cdef int team = team_size(n_threads, N * groups)
    # per thread: the input copy, the transposed gradient (lanes past Fg stay zero) and,
    # with several threads, its own partial sums
    cdef Py_ssize_t own_size = checked_mul(P, ld, "a transposed gradient")
    own_size = checked_add(checked_add(own_size, plane if copy else 0, "a work area"),
                           size if team > 1 else 0, "a work area")
    checked_mul(checked_mul(team, own_size, "the work areas"), sizeof(float),
                "the work areas' bytes")
    cdef float* scratch = <float*>calloc(team * own_size, sizeof(float))
    if scratch == NULL:
        raise MemoryError(f"no memory for {team} work areas of {own_size} floats")
    cdef Py_ssize_t task, n, g, f, p, f0, t, e
    cdef float* own
    cdef float* dyT
    cdef float* acc
    cdef const float* xs
    cdef const float* src
    try:
        with nogil:
            for task in prange(N * groups, schedule="static", num_threads=team):
                n = task // groups
                g = task % groups
                own = scratch + omp_get_thread_num() * own_size
                dyT = own + (plane if copy else 0)
                acc = dyT + P * ld if team > 1 else &packed[0]
                xs = _rows(&x[n, g * Cg, 0, 0], Cg, H, W, Wp, pl, own)
                for f in range(Fg):
                    src = &grad_out[n, g * Fg + f, 0, 0]
                    for p in range(P):
                        dyT[p * ld + f] = src[p]
                f0 = 0
                while f0 < Fg:
                    cynet_dcw_tile(xs, Cg, H, Wp, dyT + f0, ld, _tile_lanes(Fg - f0) // 16,
                                   kh, kw, sh, sw, pt, dh, dw, OH, OW,
                                   acc + g * group_size + f0 * taps)
                    f0 = f0 + 32
            if team > 1:
                for t in range(team):
                    acc = scratch + t * own_size + (plane if copy else 0) + P * ld
                    for e in range(size):
                        packed[e] += acc[e]
    finally:
        free(scratch)
