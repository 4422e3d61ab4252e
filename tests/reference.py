"""Slow, plain NumPy reference implementations of ``cynet.functional``.

These are the oracle for the kernel tests: same signatures and semantics as the
public functions (PyTorch's conv2d / max_pool2d / avg_pool2d), written for
clarity rather than speed. Everything is computed in float64 and cast back to the
dtype of the input. Batch, channel and output positions are vectorised; the loops run
over the kernel taps (and convolution groups), reading each tap through a strided slice.

No argument checking beyond what the computation itself needs: the tests only call
these with valid arguments.
"""
import numpy as np

__all__ = [
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "conv_transpose_output_size",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv_pads",
    "pool_output_size",
    "random_conv_case",
    "random_conv_transpose_case",
    "random_pool_case",
]


# ----------------------------------------------------------------------------- geometry


def _pair(v):
    if isinstance(v, (tuple, list)):
        a, b = v
        return int(a), int(b)
    return int(v), int(v)


def _sides(padding):
    """((top, bottom), (left, right)) of an int, an (h, w) pair or a pair of pairs."""
    if isinstance(padding, (tuple, list)) and isinstance(padding[0], (tuple, list)):
        (pt, pb), (pl, pr) = padding
        return (int(pt), int(pb)), (int(pl), int(pr))
    ph, pw = _pair(padding)
    return (ph, ph), (pw, pw)


def conv_pads(padding, kernel, dilation, stride=(1, 1), size=None):
    """((top, bottom), (left, right)) padding of a convolution or a pooling, from an int,
    an (h, w) pair, a per-side pair of pairs, "valid" or "same".

    ``"same"`` (TensorFlow's rule, at any stride): the output is ``ceil(n / s)`` per axis,
    from a total padding of ``max((out - 1) * s + d * (k - 1) + 1 - n, 0)``, ``total // 2``
    before and the rest (one more for an odd total) after. At stride 1 that total is
    ``d * (k - 1)``, whatever the size.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        assert padding == "same", padding
        pads = []
        for axis, (k, d, s) in enumerate(zip(kernel, dilation, stride)):
            if s == 1:
                total = d * (k - 1)
            else:
                n = size[axis]
                out = -(-n // s)
                total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    return _sides(padding)


def pool_output_size(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling output length along one axis; ``p`` is the padding of both
    ends or a (before, after) pair."""
    before, after = (p, p) if np.isscalar(p) else p
    span = size + before + after - d * (k - 1) - 1
    if ceil_mode:
        out = -(-span // s) + 1
        # a last window that would start inside the end padding is dropped
        if (out - 1) * s >= size + before:
            out -= 1
    else:
        out = span // s + 1
    return out


def _tap(start, step, count):
    """Slice picking ``count`` positions ``start, start + step, ...``."""
    return slice(start, start + step * (count - 1) + 1, step)


# -------------------------------------------------------------------------- convolution


def _conv_setup(x_shape, w_shape, stride, padding, dilation):
    _, _, H, W = x_shape
    _, _, kh, kw = w_shape
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    (pt, pb), (pl, pr) = conv_pads(padding, (kh, kw), (dh, dw), (sh, sw), (H, W))
    OH = (H + pt + pb - dh * (kh - 1) - 1) // sh + 1
    OW = (W + pl + pr - dw * (kw - 1) - 1) // sw + 1
    return (kh, kw), (sh, sw), (dh, dw), ((pt, pb), (pl, pr)), (OH, OW)


# padding_mode -> np.pad's mode: the border copies the same input elements
_NP_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                 "circular": "wrap"}


def _pad_input(x, pads, padding_mode):
    return np.pad(x, ((0, 0), (0, 0)) + pads, mode=_NP_PAD_MODES[padding_mode])


def _fold_padding(gxp, shape, pads, padding_mode):
    """The gradient of :func:`_pad_input`: each padded element's gradient added to the
    input element it copies, found by padding the elements' own flat indices."""
    N, C, H, W = shape
    if padding_mode == "zeros":  # the zeros copy nothing: keep the interior only
        (pt, _), (pl, _) = pads
        return gxp[:, :, pt:pt + H, pl:pl + W]
    source = np.pad(np.arange(H * W).reshape(H, W), pads, mode=_NP_PAD_MODES[padding_mode])
    gx = np.zeros((N, C, H * W))
    np.add.at(gx, (slice(None), slice(None), source.ravel()), gxp.reshape(N, C, -1))
    return gx.reshape(shape)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros"):
    """y[n, f, i, j] = bias[f]
    + sum over c, a, b of xpad[n, g(f)*Cg + c, i*sh + a*dh, j*sw + b*dw] * weight[f, c, a, b],
    where g(f) is the group of output channel f and xpad x padded by ``padding_mode``
    (zeros; reflect, replicate, circular: np.pad's reflect, edge, wrap)."""
    dtype = np.asarray(x).dtype
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    N, C, H, W = x.shape
    F, Cg, _, _ = w.shape
    (kh, kw), (sh, sw), (dh, dw), pads, (OH, OW) = _conv_setup(
        x.shape, w.shape, stride, padding, dilation)
    xp = _pad_input(x, pads, padding_mode)
    Fg = F // groups
    y = np.zeros((N, F, OH, OW))
    for g in range(groups):
        xg = xp[:, g * Cg:(g + 1) * Cg]
        wg = w[g * Fg:(g + 1) * Fg]
        yg = y[:, g * Fg:(g + 1) * Fg]
        for a in range(kh):
            for b in range(kw):
                patch = xg[:, :, _tap(a * dh, sh, OH), _tap(b * dw, sw, OW)]
                yg += np.einsum("ncij,fc->nfij", patch, wg[:, :, a, b])
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return y.astype(dtype)


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1,
                    bias=True, input_grad=True, padding_mode="zeros"):
    """(dL/dx or None, dL/dweight, dL/dbias or None) of conv2d given dL/dy."""
    dtype = np.asarray(x).dtype
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    dy = np.asarray(grad_out, dtype=np.float64)
    N, C, H, W = x.shape
    F, Cg, _, _ = w.shape
    (kh, kw), (sh, sw), (dh, dw), pads, (OH, OW) = _conv_setup(
        x.shape, w.shape, stride, padding, dilation)
    assert dy.shape == (N, F, OH, OW), (dy.shape, (N, F, OH, OW))
    xp = _pad_input(x, pads, padding_mode)
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    Fg = F // groups
    for g in range(groups):
        xg = xp[:, g * Cg:(g + 1) * Cg]
        gxg = gxp[:, g * Cg:(g + 1) * Cg]
        wg = w[g * Fg:(g + 1) * Fg]
        dyg = dy[:, g * Fg:(g + 1) * Fg]
        for a in range(kh):
            for b in range(kw):
                rows, cols = _tap(a * dh, sh, OH), _tap(b * dw, sw, OW)
                gw[g * Fg:(g + 1) * Fg, :, a, b] = np.einsum(
                    "nfij,ncij->fc", dyg, xg[:, :, rows, cols])
                # within one tap the strided positions are distinct, so += is safe
                gxg[:, :, rows, cols] += np.einsum("nfij,fc->ncij", dyg, wg[:, :, a, b])
    gx = _fold_padding(gxp, x.shape, pads, padding_mode).astype(dtype) if input_grad else None
    gb = dy.sum(axis=(0, 2, 3)).astype(dtype) if bias else None
    return gx, gw.astype(dtype), gb


# ----------------------------------------------------------------- transposed convolution


def conv_transpose_output_size(size, k, s, p, op, d):
    """PyTorch's output length of a transposed convolution along one axis."""
    return (size - 1) * s - 2 * p + d * (k - 1) + op + 1


def _conv_transpose_setup(x_shape, w_shape, stride, padding, output_padding, dilation):
    _, _, H, W = x_shape
    _, _, kh, kw = w_shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = (
        _pair(v) for v in (stride, padding, output_padding, dilation))
    OH = conv_transpose_output_size(H, kh, sh, ph, oph, dh)
    OW = conv_transpose_output_size(W, kw, sw, pw, opw, dw)
    return (kh, kw), (sh, sw), (ph, pw), (dh, dw), (OH, OW)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1,
                     groups=1):
    """Scatter form: through each tap (a, b), every input element ``x[n, c, i, j]`` adds
    ``x[n, c, i, j] * weight[c, f, a, b]`` to the uncropped output at
    ``(i*sh + a*dh, j*sw + b*dw)`` of output channel ``g*Fg + f``, where g is the group
    of input channel c. The uncropped output (``OH + 2*ph`` rows) is then cut by
    ``padding`` on each side; ``output_padding`` rows and columns at its bottom/right lie
    beyond the last tap and receive nothing but the bias."""
    dtype = np.asarray(x).dtype
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    N, C, H, W = x.shape
    _, Fg, _, _ = w.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (OH, OW) = _conv_transpose_setup(
        x.shape, w.shape, stride, padding, output_padding, dilation)
    Cg = C // groups
    full = np.zeros((N, Fg * groups, OH + 2 * ph, OW + 2 * pw))
    for g in range(groups):
        xg = x[:, g * Cg:(g + 1) * Cg]
        wg = w[g * Cg:(g + 1) * Cg]
        yg = full[:, g * Fg:(g + 1) * Fg]
        for a in range(kh):
            for b in range(kw):
                # within one tap the strided positions are distinct, so += is safe
                yg[:, :, _tap(a * dh, sh, H), _tap(b * dw, sw, W)] += np.einsum(
                    "ncij,cf->nfij", xg, wg[:, :, a, b])
    y = full[:, :, ph:ph + OH, pw:pw + OW]
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return y.astype(dtype)


def conv_transpose2d_backward(grad_out, x, weight, stride=1, padding=0, output_padding=0,
                              dilation=1, groups=1, bias=True, input_grad=True):
    """(dL/dx or None, dL/dweight, dL/dbias or None) of conv_transpose2d given dL/dy:
    each input element and weight tap gathers the output gradient at the positions the
    forward scattered it to."""
    dtype = np.asarray(x).dtype
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    dy = np.asarray(grad_out, dtype=np.float64)
    N, C, H, W = x.shape
    _, Fg, _, _ = w.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (OH, OW) = _conv_transpose_setup(
        x.shape, w.shape, stride, padding, output_padding, dilation)
    assert dy.shape == (N, Fg * groups, OH, OW), (dy.shape, (N, Fg * groups, OH, OW))
    full = np.zeros((N, Fg * groups, OH + 2 * ph, OW + 2 * pw))
    full[:, :, ph:ph + OH, pw:pw + OW] = dy  # the cropped rows have no gradient
    Cg = C // groups
    gx = np.zeros_like(x)
    gw = np.zeros_like(w)
    for g in range(groups):
        xg = x[:, g * Cg:(g + 1) * Cg]
        dyg = full[:, g * Fg:(g + 1) * Fg]
        wg = w[g * Cg:(g + 1) * Cg]
        for a in range(kh):
            for b in range(kw):
                patch = dyg[:, :, _tap(a * dh, sh, H), _tap(b * dw, sw, W)]
                gx[:, g * Cg:(g + 1) * Cg] += np.einsum("nfij,cf->ncij", patch, wg[:, :, a, b])
                gw[g * Cg:(g + 1) * Cg, :, a, b] = np.einsum("nfij,ncij->cf", patch, xg)
    gb = dy.sum(axis=(0, 2, 3)).astype(dtype) if bias else None
    return (gx.astype(dtype) if input_grad else None), gw.astype(dtype), gb


# ------------------------------------------------------------------------------ pooling


def _pool_setup(x_shape, kernel_size, stride, padding, dilation, ceil_mode):
    """k, s, d and the output size per axis, and the padding per axis as
    (before, after)."""
    H, W = x_shape[2], x_shape[3]
    k = _pair(kernel_size)
    s = k if stride is None else _pair(stride)
    d = _pair(dilation)
    p = conv_pads(padding, k, d, s, (H, W))
    out = tuple(pool_output_size(n, *args, ceil_mode)
                for n, args in zip((H, W), zip(k, s, p, d)))
    return k, s, p, d, out


def first_taps(out, s, p, d):
    """Per output position along one axis, PyTorch's first tap: the window's first
    position at or after 0 (``while (i < 0) i += d``), inside the input or not."""
    start = np.arange(out) * s - p
    return np.where(start >= 0, start, start + (-start + d - 1) // d * d)


def has_empty_window(n, k, s, p, d, ceil_mode):
    """Whether a window along an axis of length ``n`` has no tap inside it (``p``: the
    padding of both ends or a (before, after) pair)."""
    before = p if np.isscalar(p) else p[0]
    for o in range(pool_output_size(n, k, s, p, d, ceil_mode)):
        taps = o * s - before + d * np.arange(k)
        if not ((taps >= 0) & (taps < n)).any():
            return True
    return False


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(y, indices) of max pooling, with PyTorch's scan order and update rule.

    Taps are visited row-major; outside-the-input taps are skipped. The running
    maximum starts at -inf with the index of the first taps at or after 0 along each
    axis (``first_taps``), and a tap replaces it when ``val > maxval or isnan(val)``.
    So the first maximum wins a tie, and a NaN in the window makes the output NaN; a
    window whose taps all miss the input keeps -inf and that first index, which then
    lies past the end of a row or of the plane.
    """
    dtype = np.asarray(x).dtype
    x = np.asarray(x, dtype=np.float64)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), ((ph, _), (pw, _)), (dh, dw), (OH, OW) = _pool_setup(
        x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    best = np.full((N, C, OH, OW), -np.inf)
    start = first_taps(OH, sh, ph, dh)[:, None] * W + first_taps(OW, sw, pw, dw)[None, :]
    index = np.broadcast_to(start, (N, C, OH, OW)).astype(np.int64, order="C")
    for a in range(kh):
        rows = np.arange(OH) * sh - ph + a * dh
        for b in range(kw):
            cols = np.arange(OW) * sw - pw + b * dw
            inside = ((rows >= 0) & (rows < H))[:, None] & ((cols >= 0) & (cols < W))[None, :]
            r = np.clip(rows, 0, H - 1)[:, None]
            c = np.clip(cols, 0, W - 1)[None, :]
            val = x[:, :, r, c]
            flat = np.broadcast_to(rows[:, None] * W + cols[None, :], (OH, OW))
            take = inside & ((val > best) | np.isnan(val))
            best[take] = val[take]
            index[take] = np.broadcast_to(flat, index.shape)[take]
    return best.astype(dtype), index


def max_pool2d_backward(grad_out, indices, input_shape):
    """Scatter-add each output gradient onto the input element its index names in its
    plane; an index past the plane (a window without an input element) adds nothing."""
    dtype = np.asarray(grad_out).dtype
    dy = np.asarray(grad_out, dtype=np.float64).reshape(-1)
    N, C, H, W = (int(v) for v in input_shape)
    idx = np.asarray(indices, dtype=np.int64).reshape(N * C, -1)
    assert (idx >= 0).all(), "no forward gives a negative index"
    plane = np.broadcast_to(np.arange(N * C)[:, None], idx.shape).reshape(-1)
    inside = idx.reshape(-1) < H * W
    gx = np.zeros(N * C * H * W)
    np.add.at(gx, plane[inside] * (H * W) + idx.reshape(-1)[inside], dy[inside])
    return gx.reshape(N, C, H, W).astype(dtype)


def _avg_counts(n, k, s, p, out, count_include_pad):
    """Per-axis divisor factor of each output position (the divisor is their product).

    A window along one axis covers [o*s - before, o*s - before + k) for the padding
    ``p`` = (before, after); with count_include_pad it is clipped to
    [-before, n + after), otherwise to the real input [0, n).
    """
    before, after = p
    start = np.arange(out) * s - before
    end = start + k
    if count_include_pad:
        return np.minimum(end, n + after) - start
    return np.minimum(end, n) - np.maximum(start, 0)


def _avg_setup(shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
               divisor_override):
    N, C, H, W = shape
    (kh, kw), (sh, sw), (p_h, p_w), _, (OH, OW) = _pool_setup(
        shape, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is None:
        divisor = np.outer(_avg_counts(H, kh, sh, p_h, OH, count_include_pad),
                           _avg_counts(W, kw, sw, p_w, OW, count_include_pad)).astype(np.float64)
    else:  # one divisor for every window, whatever count_include_pad says
        divisor = np.full((OH, OW), float(divisor_override))
    # zero padding wide enough for every window, including ceil-mode overhang
    ph, pw = p_h[0], p_w[0]
    pads = ((ph, max(0, (OH - 1) * sh + kh - ph - H)), (pw, max(0, (OW - 1) * sw + kw - pw - W)))
    return (kh, kw), (sh, sw), (ph, pw), (OH, OW), divisor, pads


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Window sums of the zero-padded input divided by PyTorch's divisor (the window size
    per count_include_pad, or ``divisor_override`` when given)."""
    dtype = np.asarray(x).dtype
    x = np.asarray(x, dtype=np.float64)
    (kh, kw), (sh, sw), _, (OH, OW), divisor, pads = _avg_setup(
        x.shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    xp = np.pad(x, ((0, 0), (0, 0)) + pads)
    total = np.zeros(x.shape[:2] + (OH, OW))
    for a in range(kh):
        for b in range(kw):
            total += xp[:, :, _tap(a, sh, OH), _tap(b, sw, OW)]
    return (total / divisor).astype(dtype)


def avg_pool2d_backward(grad_out, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Each output gradient, divided by its divisor, spread over its window."""
    dtype = np.asarray(grad_out).dtype
    dy = np.asarray(grad_out, dtype=np.float64)
    shape = tuple(int(v) for v in input_shape)
    N, C, H, W = shape
    (kh, kw), (sh, sw), (ph, pw), (OH, OW), divisor, pads = _avg_setup(
        shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    assert dy.shape == (N, C, OH, OW), (dy.shape, (N, C, OH, OW))
    share = dy / divisor
    gxp = np.zeros((N, C, H + sum(pads[0]), W + sum(pads[1])))
    for a in range(kh):
        for b in range(kw):
            gxp[:, :, _tap(a, sh, OH), _tap(b, sw, OW)] += share
    return gxp[:, :, ph:ph + H, pw:pw + W].astype(dtype)


# ------------------------------------------------------------ random valid arguments
# Samplers for the randomised sweeps (reference vs torch, cynet vs torch). Each returns
# shapes and keyword arguments of one valid call; sizes are kept small so that a sweep
# of hundreds of cases takes seconds. Ints, tuples and lists are all used for the
# size arguments.


def _size_arg(rng, pair):
    """An (h, w) pair as the int, tuple or list form that a caller might pass."""
    h, w = int(pair[0]), int(pair[1])
    form = rng.integers(3)
    if h == w and form == 0:
        return h
    return (h, w) if form == 1 else [h, w]


def _per_side(rng, most):
    """A per-side padding ((top, bottom), (left, right)), each side at most ``most``
    (an (h, w) pair) of its axis, as tuples or as lists."""
    sides = [[int(v) for v in rng.integers(0, int(m) + 1, size=2)] for m in most]
    return sides if rng.random() < 0.5 else tuple(map(tuple, sides))


def random_conv_case(rng, wide=False):
    """dict(x_shape, w_shape, bias, kwargs) of a valid conv2d call. ``wide``: 16 to 40
    filters and 1 to 24 input channels per group and a kernel larger than 1x1, the
    layers cynet's direct float32 kernels take (and their tile edges). A quarter of the
    cases pad by reflect, replicate or circular."""
    groups = int(rng.choice([1, 1, 1, 2, 3]))
    cg = int(rng.integers(1, 25 if wide else 4))
    fg = int(rng.integers(16, 41)) if wide else int(rng.integers(1, 4))
    k = rng.integers(1, 5, size=2)
    if wide and (k == 1).all():
        k[rng.integers(0, 2)] = int(rng.integers(2, 5))
    d = np.where(rng.random(2) < 0.7, 1, rng.integers(2, 4, size=2))
    kind = rng.choice(["int", "pair", "sides", "same", "valid"],
                      p=[0.3, 0.25, 0.15, 0.15, 0.15])
    s = rng.integers(1, 4, size=2)
    if kind == "int":
        padding = int(rng.integers(0, 3))
    elif kind == "pair":
        padding = _size_arg(rng, rng.integers(0, 4, size=2))
    elif kind == "sides":
        padding = _per_side(rng, (3, 3))
    else:
        padding = str(kind)
    # ("same" at stride 1 pads the most, whatever the stride: size the input for it)
    (pt, pb), (pl, pr) = conv_pads(padding, k, d)
    eff = d * (k - 1) + 1
    H = max(1, int(eff[0]) - pt - pb) + int(rng.integers(0, 6))
    W = max(1, int(eff[1]) - pl - pr) + int(rng.integers(0, 6))
    N = int(rng.integers(1, 3))
    kwargs = dict(stride=_size_arg(rng, s), padding=padding, dilation=_size_arg(rng, d),
                  groups=groups)
    if rng.random() < 0.25:
        mode = str(rng.choice(["reflect", "replicate", "circular"]))
        sides = conv_pads(padding, k, d, _pair(kwargs["stride"]), (H, W))
        limit = {"reflect": 1, "replicate": None, "circular": 0}[mode]
        if limit is None or all(max(p) <= n - limit for p, n in zip(sides, (H, W))):
            kwargs["padding_mode"] = mode
    return dict(
        x_shape=(N, cg * groups, H, W),
        w_shape=(fg * groups, cg, int(k[0]), int(k[1])),
        bias=bool(rng.random() < 0.7),
        kwargs=kwargs,
    )


def random_conv_transpose_case(rng, wide=False):
    """dict(x_shape, w_shape, bias, kwargs) of a valid conv_transpose2d call, with
    output_padding where the stride or dilation allows it. ``wide``: 16 to 40 channels
    per group on both sides and a kernel larger than 1x1 (the direct float32 kernels'
    layers)."""
    groups = int(rng.choice([1, 1, 1, 2, 3]))
    cg = int(rng.integers(16, 41)) if wide else int(rng.integers(1, 4))
    fg = int(rng.integers(16, 41)) if wide else int(rng.integers(1, 4))
    k = rng.integers(1, 5, size=2)
    if wide and (k == 1).all():
        k[rng.integers(0, 2)] = int(rng.integers(2, 5))
    d = np.where(rng.random(2) < 0.7, 1, rng.integers(2, 4, size=2))
    s = rng.integers(1, 4, size=2)
    if wide and rng.random() < 0.5:
        s[:] = 1  # the direct kernels' input-gradient route needs stride 1
    op = np.array([int(rng.integers(0, max(si, di))) if rng.random() < 0.5 else 0
                   for si, di in zip(s, d)])
    H, W = (int(v) for v in rng.integers(1, 7, size=2))
    # padding up to the largest that leaves an output of at least one row/column
    p = []
    for n, ki, si, di, opi in zip((H, W), k, s, d, op):
        most = ((n - 1) * si + di * (ki - 1) + opi) // 2
        p.append(int(rng.integers(0, min(most, 3) + 1)))
    return dict(
        x_shape=(int(rng.integers(1, 3)), cg * groups, H, W),
        w_shape=(cg * groups, fg, int(k[0]), int(k[1])),
        bias=bool(rng.random() < 0.7),
        kwargs=dict(stride=_size_arg(rng, s), padding=_size_arg(rng, p),
                    output_padding=_size_arg(rng, op), dilation=_size_arg(rng, d),
                    groups=groups),
    )


def _pool_axis_ok(n, k, s, p, d, ceil_mode, need_input_in_window):
    out = pool_output_size(n, k, s, p, d, ceil_mode)
    if out < 1:
        return False
    return not (need_input_in_window and has_empty_window(n, k, s, p, d, ceil_mode))


def random_pool_case(rng, kind, empty_windows=False, per_side=False):
    """dict(x_shape, kwargs) of a valid max_pool2d (kind="max") or avg_pool2d call.

    Max pooling avoids the dilated windows that contain no input element at all unless
    ``empty_windows`` (PyTorch's backward writes their gradients past the planes).
    ``per_side``: a third of the cases pad per side or "same" (forms PyTorch's pools
    lack).
    """
    while True:
        k = rng.integers(1, 5, size=2)
        s = rng.integers(1, 4, size=2)
        p = np.array([rng.integers(0, kk // 2 + 1) for kk in k])
        d = (np.where(rng.random(2) < 0.7, 1, rng.integers(2, 4, size=2))
             if kind == "max" else np.ones(2, dtype=int))
        ceil_mode = bool(rng.random() < 0.5)
        hw = rng.integers(1, 11, size=2)
        default_stride = rng.random() < 0.25
        if default_stride:
            s = k
        padding = _size_arg(rng, p)
        if per_side and rng.random() < 1 / 3:
            padding = "same" if rng.random() < 0.4 else _per_side(rng, k // 2)
        sides = conv_pads(padding, k, d, s, hw)
        if all(max(ps) <= kk // 2 and
               _pool_axis_ok(int(n), int(kk), int(ss), ps, int(dd), ceil_mode,
                             kind == "max" and not empty_windows)
               for n, kk, ss, ps, dd in zip(hw, k, s, sides, d)):
            break
    x_shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)), int(hw[0]), int(hw[1]))
    kwargs = dict(kernel_size=_size_arg(rng, k),
                  stride=None if default_stride else _size_arg(rng, s),
                  padding=padding, ceil_mode=ceil_mode)
    if kind == "max":
        kwargs["dilation"] = _size_arg(rng, d)
    else:
        kwargs["count_include_pad"] = bool(rng.random() < 0.5)
        if rng.random() < 0.3:  # PyTorch's divisor_override: any non-zero int
            kwargs["divisor_override"] = int(rng.choice([-3, -1, 1, 2, 3, 5, 7]))
    return dict(x_shape=x_shape, kwargs=kwargs)
