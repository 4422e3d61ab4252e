"""Output sizes and padding of convolution and pooling, with PyTorch's rules."""
from dataclasses import dataclass, replace

from ._args import (ArgumentError, ArgumentTypeError, as_float_array, as_float_arrays,
                    as_int, as_pair, as_padding, check_ndim)
from ._suggest import did_you_mean, show

# Sizes the kernels index and allocate, checked here in closed form (Python ints) before
# any kernel runs, so that no product of them overflows a Py_ssize_t in a kernel and no
# buffer is asked for that could never be allocated:
# - an extent (a padded height or width, a dilated kernel's reach) and a plane (a padded
#   input plane, the per-thread scratch of im2col; an output plane) at most 2**31 - 1;
# - a sample's buffers (its columns C*kh*kw x OH*OW, its output F x OH*OW, its padded
#   input C x Hp x Wp) at most 2**34 elements (128 GiB of float64);
# - a call's output and input gradient at most 2**40 elements.
# No real network comes near them; the kernels check their own products too.
MAX_EXTENT = 2**31 - 1
MAX_PLANE = 2**31 - 1
MAX_SAMPLE = 2**34
MAX_TOTAL = 2**40


def _too_large(what, size, limit, argument, detail):
    raise ArgumentError(
        f"{what} would have {size} elements, more than the {limit} cynet allows "
        f"({detail}); reduce {argument}", argument)


def _blame(padding, dilation, kernel_name):
    """The argument that made a size large: padding if any, else dilation, else the kernel."""
    if any(padding):
        return "padding"
    if any(d > 1 for d in dilation):
        return "dilation"
    return kernel_name


@dataclass(frozen=True)
class ConvGeometry:
    """Everything the conv kernels need; pads are (top, bottom) and (left, right)."""

    N: int
    C: int
    H: int
    W: int
    F: int
    groups: int
    kh: int
    kw: int
    sh: int
    sw: int
    pt: int
    pb: int
    pl: int
    pr: int
    dh: int
    dw: int
    OH: int
    OW: int
    padding_mode: str = "zeros"

    @property
    def out_shape(self):
        return (self.N, self.F, self.OH, self.OW)

    @property
    def in_shape(self):
        return (self.N, self.C, self.H, self.W)

    @property
    def unpadded(self):
        """The zero-padding convolution of the padded input (for padding_mode other than
        zeros: see :mod:`cynet.engine.padding`)."""
        return replace(self, H=self.H + self.pt + self.pb, W=self.W + self.pl + self.pr,
                       pt=0, pb=0, pl=0, pr=0, padding_mode="zeros")

    @property
    def is_pointwise(self):
        """A 1x1, stride-1, unpadded convolution: the input already is the column matrix."""
        return (self.kh, self.kw, self.sh, self.sw) == (1, 1, 1, 1) and not (
            self.pt or self.pb or self.pl or self.pr
        )


def same_padding(size, kernel, stride, dilation):
    """``(before, after)`` of "same" padding on one axis, at any stride (TensorFlow's
    rule): the output is ceil(size / stride), the extra row or column goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def padding_sides(padding, kernel, stride, dilation, size):
    """``((top, bottom), (left, right))`` of any padding form (an int, an (h, w) pair, a
    per-side pair of pairs, "valid", or "same" at any stride: :func:`same_padding`)."""
    padding = as_padding(padding)
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        return tuple(same_padding(n, k, s, d)
                     for n, k, s, d in zip(size, kernel, stride, dilation))
    return padding


def _shown(padding, sides):
    """How an error shows a padding: as given, and a string's sides."""
    if isinstance(padding, str):
        return f"{show(padding)} ({sides[0]} rows, {sides[1]} columns)"
    return show(padding)


PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def as_padding_mode(value):
    """A convolution's ``padding_mode``: one of :data:`PADDING_MODES`, as given."""
    choices = ", ".join(map(repr, PADDING_MODES))
    if not isinstance(value, str):
        raise ArgumentTypeError(f"padding_mode must be one of {choices}, got {show(value)}",
                                "padding_mode")
    if value not in PADDING_MODES:
        raise ArgumentError(f"padding_mode must be one of {choices}, got {show(value)}"
                            f"{did_you_mean(value, PADDING_MODES)}", "padding_mode")
    return value


def check_padding_mode(padding_mode, padding, sides, size):
    """``padding_mode`` (:func:`as_padding_mode`) with PyTorch's limits on the pads it
    copies from the input ``size`` (H, W): reflect pads each side by less than the
    input's extent (the edge itself is not repeated), circular by at most it."""
    padding_mode = as_padding_mode(padding_mode)
    limit = {"reflect": 1, "circular": 0}.get(padding_mode)
    if limit is None:
        return padding_mode
    for axis, extent, pads in zip(("rows", "columns"), size, sides):
        if max(pads) > extent - limit:
            rule = "smaller than" if limit else "at most"
            raise ArgumentError(
                f"padding {_shown(padding, sides)} with padding_mode {padding_mode!r} must be "
                f"{rule} the input's extent on each side, but x has {extent} {axis}",
                "padding")
    return padding_mode


def _check_shapes_and_groups(x_shape, w_shape, groups):
    """What a convolution and a transposed one both require of ``x``'s plane, the
    weight's kernel and channels, and ``groups``; returns ``groups`` as an int."""
    if x_shape[2] < 1 or x_shape[3] < 1:
        raise ValueError(f"x must have a non-empty height and width, got shape {tuple(x_shape)}")
    groups = as_int(groups, "groups")
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    if min(w_shape[2:]) < 1:
        raise ValueError(f"weight must have a kernel of at least 1x1, got shape {w_shape}")
    if min(w_shape[:2]) < 1:
        raise ValueError(f"weight must have at least one input and output channel, got shape {w_shape}")
    return groups


def conv_geometry(x_shape, w_shape, stride, padding, dilation, groups, kernel_name="weight",
                  padding_mode="zeros"):
    """The checked geometry; ``kernel_name`` is what errors call the kernel's size
    (``weight`` for :func:`cynet.functional.conv2d`, ``kernel_size`` for a layer)."""
    N, C, H, W = x_shape
    F, Cg, kh, kw = w_shape
    groups = _check_shapes_and_groups(x_shape, w_shape, groups)
    if Cg * groups != C:
        raise ValueError(
            f"weight shape {w_shape} with groups={groups} expects {Cg * groups} input channels, "
            f"but x has {C} (x shape {x_shape})"
        )
    if F % groups:
        raise ValueError(f"groups={groups} must divide out_channels={F} (weight shape {w_shape})")
    stride = as_pair(stride, "stride", 1)
    dilation = as_pair(dilation, "dilation", 1)
    (pt, pb), (pl, pr) = sides = padding_sides(padding, (kh, kw), stride, dilation, (H, W))
    padding_mode = check_padding_mode(padding_mode, padding, sides, (H, W))
    eff_h, eff_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    padded_h, padded_w = H + pt + pb, W + pl + pr
    pads = (pt, pb, pl, pr)
    if max(eff_h, eff_w) > MAX_EXTENT:
        argument = "dilation" if max(dilation) > 1 else kernel_name
        raise ArgumentError(
            f"dilation {dilation} with a {kh}x{kw} kernel reaches {eff_h}x{eff_w}, more than "
            f"{MAX_EXTENT} rows or columns; reduce {argument}", argument)
    if max(padded_h, padded_w) > MAX_EXTENT:
        argument = "padding" if any(pads) else "x"
        raise ArgumentError(
            f"padding {_shown(padding, ((pt, pb), (pl, pr)))} makes the padded input "
            f"{padded_h}x{padded_w} of x "
            f"{tuple(x_shape)}, more than {MAX_EXTENT} rows or columns; reduce {argument}",
            argument)
    if eff_h > padded_h or eff_w > padded_w:
        raise ValueError(
            f"the (dilated) kernel {eff_h}x{eff_w} of weight {w_shape} is larger than the "
            f"padded input {padded_h}x{padded_w} of x {x_shape}"
        )
    OH = (padded_h - eff_h) // stride[0] + 1
    OW = (padded_w - eff_w) // stride[1] + 1
    _check_conv_sizes(N, C, F, kh, kw, padded_h, padded_w, OH, OW,
                      _blame(pads, dilation, kernel_name))
    if padding_mode != "zeros" and N * C * padded_h * padded_w > MAX_TOTAL:
        _too_large("the padded copy of x", N * C * padded_h * padded_w, MAX_TOTAL, "padding",
                   f"padded input {padded_h}x{padded_w}")
    return ConvGeometry(N, C, H, W, F, groups, kh, kw, *stride, pt, pb, pl, pr, *dilation, OH, OW,
                        padding_mode)


def _check_conv_sizes(N, C, F, kh, kw, padded_h, padded_w, OH, OW, argument):
    """The planes and buffers of a convolution within the limits above."""
    P = OH * OW
    detail = f"output {OH}x{OW} per channel, padded input {padded_h}x{padded_w}"
    for what, size, limit in (
            ("a padded input plane", padded_h * padded_w, MAX_PLANE),
            ("an output plane", P, MAX_PLANE),
            ("a sample's column matrix", C * kh * kw * P, MAX_SAMPLE),
            ("a sample's output", F * P, MAX_SAMPLE),
            ("a sample's padded input", C * padded_h * padded_w, MAX_SAMPLE),
            ("the output", N * F * P, MAX_TOTAL)):
        if size > limit:
            _too_large(what, size, limit, argument, detail)


def check_output_padding(output_padding, stride, dilation):
    """``output_padding`` as an (h, w) pair, each smaller than the stride or the dilation
    of its axis (PyTorch's rule: larger, it would add rows that no input reaches)."""
    output_padding = as_pair(output_padding, "output_padding", 0)
    for op, s, d in zip(output_padding, stride, dilation):
        if not (op < s or op < d):
            raise ArgumentError(
                f"output_padding must be smaller than either stride or dilation, got "
                f"output_padding={output_padding} with stride={stride} and "
                f"dilation={dilation}", "output_padding")
    return output_padding


def _transpose_blame(stride, dilation, kernel_name):
    """The argument that made a transposed convolution's output large: the stride if
    any, else the dilation, else the kernel (padding only makes it smaller)."""
    if max(stride) > 1:
        return "stride"
    if max(dilation) > 1:
        return "dilation"
    return kernel_name


def conv_transpose_geometry(x_shape, w_shape, stride, padding, output_padding, dilation,
                            groups, kernel_name="weight"):
    """The checked geometry of a transposed convolution of ``x`` (N, C_in, H, W) by a
    weight (C_in, C_out // groups, kh, kw), given as the ``ConvGeometry`` of the
    convolution it transposes: that one's input is the transposed output
    (``geo.in_shape``: N, C_out, Hout, Wout) and its output is ``x``
    (``geo.out_shape``), its weight the same array read as (F = C_in, C_out // groups,
    kh, kw). Per axis ``Hout = (H - 1) * stride - 2 * padding + dilation * (kh - 1)
    + output_padding + 1``; the convolution's bottom/right padding is then
    ``padding - output_padding``, negative when the last output rows are reached by no
    input (they receive the bias alone)."""
    N, C, H, W = x_shape
    Cw, Fg, kh, kw = w_shape
    groups = _check_shapes_and_groups(x_shape, w_shape, groups)
    if Cw != C:
        raise ValueError(
            f"weight shape {w_shape} expects {Cw} input channels (its first axis), but x has "
            f"{C} (x shape {x_shape})")
    if C % groups:
        raise ValueError(f"groups={groups} must divide in_channels={C} (weight shape {w_shape})")
    stride = as_pair(stride, "stride", 1)
    dilation = as_pair(dilation, "dilation", 1)
    if isinstance(padding, str):
        raise ArgumentTypeError(
            f"padding of a transposed convolution must be an int or an (h, w) pair, got "
            f"{padding!r}", "padding")
    ph, pw = as_pair(padding, "padding", 0)
    oph, opw = check_output_padding(output_padding, stride, dilation)
    eff_h, eff_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    if max(eff_h, eff_w) > MAX_EXTENT:
        argument = "dilation" if max(dilation) > 1 else kernel_name
        raise ArgumentError(
            f"dilation {dilation} with a {kh}x{kw} kernel reaches {eff_h}x{eff_w}, more than "
            f"{MAX_EXTENT} rows or columns; reduce {argument}", argument)
    # the output before padding is cropped: the convolution's padded input
    padded_h = (H - 1) * stride[0] + eff_h + oph
    padded_w = (W - 1) * stride[1] + eff_w + opw
    argument = _transpose_blame(stride, dilation, kernel_name)
    if max(padded_h, padded_w) > MAX_EXTENT:
        raise ArgumentError(
            f"stride {stride}, dilation {dilation} and the {kh}x{kw} kernel make the output of "
            f"x {tuple(x_shape)} {padded_h}x{padded_w} before padding is removed, more than "
            f"{MAX_EXTENT} rows or columns; reduce {argument}", argument)
    Hout, Wout = padded_h - 2 * ph, padded_w - 2 * pw
    if Hout < 1 or Wout < 1:
        raise ArgumentError(
            f"padding {(ph, pw)} removes more than the whole output: x {tuple(x_shape)} "
            f"with weight {w_shape}, stride {stride}, dilation {dilation} and output_padding "
            f"{(oph, opw)} would give {Hout}x{Wout}", "padding")
    F, Cout = C, Fg * groups
    _check_conv_sizes(N, Cout, F, kh, kw, padded_h, padded_w, H, W, argument)
    detail = f"output {Hout}x{Wout} per channel"
    if N * Cout * Hout * Wout > MAX_TOTAL:
        _too_large("the output", N * Cout * Hout * Wout, MAX_TOTAL, argument, detail)
    return ConvGeometry(N, Cout, Hout, Wout, F, groups, kh, kw, *stride, ph, ph - oph, pw,
                        pw - opw, *dilation, H, W)


def pool_output_size(size, k, s, before, after, d, ceil_mode):
    """PyTorch's rule, with ``before`` and ``after`` padding; with ceil_mode a last window
    starting in the end padding is dropped."""
    eff = d * (k - 1) + 1
    out = (size + before + after - eff + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + before:
        out -= 1
    return out


@dataclass(frozen=True)
class PoolGeometry:
    """Checked options of a pooling; ``padding`` is ``((top, bottom), (left, right))``."""

    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    out_hw: tuple

    @property
    def top_left(self):
        return self.padding[0][0], self.padding[1][0]

    @property
    def sides(self):
        """``(top, bottom, left, right)``"""
        return self.padding[0] + self.padding[1]


def pool_geometry(x_shape, kernel_size, stride, padding, dilation, ceil_mode, name="x",
                  empty_windows=False):
    """Output size and checked options; ``name`` is what errors call the input shape.

    ``padding`` takes every form of a convolution's (:func:`padding_sides`), each side at
    most half the kernel. A window holding no input element (possible with dilation) is
    refused unless ``empty_windows``: ``cynet.functional.max_pool2d`` takes it (-inf, as
    PyTorch), a model's pooling layer does not.
    """
    kernel = as_pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else as_pair(stride, "stride", 1)
    dilation = as_pair(dilation, "dilation", 1)
    H, W = x_shape[2], x_shape[3]
    sides = padding_sides(padding, kernel, stride, dilation, (H, W))
    (pt, pb), (pl, pr) = sides
    if max(pt, pb) > kernel[0] // 2 or max(pl, pr) > kernel[1] // 2:
        raise ArgumentError(
            f"padding {_shown(padding, sides)} must be at most half of kernel_size {kernel} "
            f"on each side", "padding")
    for k, d in zip(kernel, dilation):
        if d * (k - 1) + 1 > MAX_EXTENT:
            argument = "dilation" if d > 1 else "kernel_size"
            raise ArgumentError(
                f"kernel_size {kernel} with dilation {dilation} reaches more than "
                f"{MAX_EXTENT} rows or columns; reduce {argument}", argument)
    padded_h, padded_w = H + pt + pb, W + pl + pr
    if max(padded_h, padded_w) > MAX_EXTENT:
        argument = "padding" if pt + pb + pl + pr else name
        raise ArgumentError(
            f"padding {_shown(padding, sides)} makes the padded input {padded_h}x{padded_w} "
            f"of {name} {tuple(x_shape)}, more than {MAX_EXTENT} rows or columns; reduce "
            f"{argument}", argument)
    if H < 1 or W < 1:
        raise ValueError(
            f"{name} must have a non-empty height and width, got shape {tuple(x_shape)}")
    out = tuple(
        pool_output_size(n, k, s, before, after, d, ceil_mode)
        for n, k, s, (before, after), d in zip((H, W), kernel, stride, sides, dilation)
    )
    if min(out) < 1:
        raise ValueError(
            f"kernel_size {kernel} with dilation {dilation} is larger than the padded input "
            f"{padded_h}x{padded_w} (shape {tuple(x_shape)})"
        )
    N, C = x_shape[0], x_shape[1]
    argument = _blame((pt, pb, pl, pr), dilation, name)
    detail = f"output {out[0]}x{out[1]} per channel"
    if out[0] * out[1] > MAX_PLANE:
        _too_large("an output plane", out[0] * out[1], MAX_PLANE, argument, detail)
    if N * C * out[0] * out[1] > MAX_TOTAL:
        _too_large("the output", N * C * out[0] * out[1], MAX_TOTAL, argument, detail)
    for n, k, s, (p, _), d, o in zip((H, W), kernel, stride, sides, dilation, out):
        if d > 1 and not empty_windows and _has_empty_window(n, k, s, p, d, o):
            raise ValueError(
                f"dilation {dilation} with kernel_size {kernel} and padding "
                f"{_shown(padding, sides)} leaves pooling windows without any input element "
                f"(x shape {tuple(x_shape)})"
            )
    return PoolGeometry(kernel, stride, sides, dilation, out)


def _has_empty_window(size, k, s, p, d, out):
    """Whether a window's taps all fall in the padding (possible only with dilation > 1);
    ``p``: the padding before."""
    for o in range(out):
        start = o * s - p
        first = -(start // d) if start < 0 else 0  # the first tap at or after 0
        if first >= k or start + first * d >= size:
            return True
    return False


_NO_GRAD = object()


def conv_arguments(x, weight, bias, stride, padding, dilation, groups, grad_out=_NO_GRAD,
                   padding_mode="zeros"):
    """``(x, weight, bias, grad_out, geometry)`` of one convolution: checked C-contiguous
    arrays of one float dtype (``grad_out`` None when not given) and the geometry."""
    named = [("x", x), ("weight", weight), ("bias", bias)]
    if grad_out is not _NO_GRAD:
        named.append(("grad_out", grad_out))
    x, weight, bias, *rest = as_float_arrays(*named)
    check_ndim(x, "x", 4, "(N, C, H, W)")
    check_ndim(weight, "weight", 4, "(out_channels, in_channels // groups, kh, kw)")
    geo = conv_geometry(x.shape, weight.shape, stride, padding, dilation, groups,
                        padding_mode=padding_mode)
    if bias is not None and bias.shape != (geo.F,):
        raise ValueError(f"bias must have shape ({geo.F},) to match weight {weight.shape}, got {bias.shape}")
    if rest and rest[0].shape != geo.out_shape:
        raise ValueError(
            f"grad_out has shape {rest[0].shape}, but the forward output has shape {geo.out_shape}"
        )
    return x, weight, bias, (rest[0] if rest else None), geo


def conv_transpose_arguments(x, weight, bias, stride, padding, output_padding, dilation,
                             groups, grad_out=_NO_GRAD):
    """``(x, weight, bias, grad_out, geometry)`` of one transposed convolution, as
    :func:`conv_arguments` (``geometry``: see :func:`conv_transpose_geometry`)."""
    named = [("x", x), ("weight", weight), ("bias", bias)]
    if grad_out is not _NO_GRAD:
        named.append(("grad_out", grad_out))
    x, weight, bias, *rest = as_float_arrays(*named)
    check_ndim(x, "x", 4, "(N, C, H, W)")
    check_ndim(weight, "weight", 4, "(in_channels, out_channels // groups, kh, kw)")
    geo = conv_transpose_geometry(x.shape, weight.shape, stride, padding, output_padding,
                                  dilation, groups)
    if bias is not None and bias.shape != (geo.C,):
        raise ValueError(
            f"bias must have shape ({geo.C},) to match weight {weight.shape} with "
            f"groups={geo.groups}, got {bias.shape}")
    if rest and rest[0].shape != geo.in_shape:
        raise ValueError(
            f"grad_out has shape {rest[0].shape}, but the forward output has shape {geo.in_shape}"
        )
    return x, weight, bias, (rest[0] if rest else None), geo


def pool_input(x):
    """``x`` of a pooling: a checked C-contiguous 4-D float array."""
    x = as_float_array(x, "x")
    check_ndim(x, "x", 4, "(N, C, H, W)")
    return x
