"""Normalising and checking arguments: of cynet.functional, of the layers' constructors,
of the optimizers and the schedules.

Every error names the argument and the offending value, dtype or shape, and is an
``ArgumentError`` (a ``ValueError``) or an ``ArgumentTypeError`` (a ``TypeError``) whose
``argument`` says which argument it concerns (``"lr"``, ``"betas[1]"``): a model definition
places the error there (``optimizer.betas[1]``) without reading the message.
"""
import math
import numbers
import operator

import numpy as np

from ._suggest import did_you_mean, show

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Larger geometry values only overflow index arithmetic; no real network needs them.
_MAX_INT = 2**31 - 1


class _Concerning:
    """The ``argument`` an error is about; the message is unchanged (``str(exc)``)."""

    def __init__(self, message, argument=None):
        super().__init__(message)
        self.argument = argument

    def __reduce__(self):  # pickles (multiprocessing, MPI) keep the argument
        return type(self), (str(self), self.argument)


class ArgumentError(_Concerning, ValueError):
    """A bad argument value; ``argument`` names it (``"lr"``, ``"betas[1]"``) or is None."""


class ArgumentTypeError(_Concerning, TypeError):
    """An argument of the wrong type; ``argument`` names it or is None."""


def as_int(value, name, minimum=None):
    """An integer argument (Python or NumPy int, not bool) as an int, at least ``minimum``
    when given, and at most 2**31 - 1 in magnitude."""
    if type(value) is int and -_MAX_INT <= value <= _MAX_INT and (  # the common case, fast
            minimum is None or value >= minimum):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(
            f"{name} must be an int, got {show(value)} ({type(value).__name__})", name)
    value = int(value)
    if abs(value) > _MAX_INT:
        raise ArgumentError(f"{name} must be at most {_MAX_INT} in magnitude, got {value}", name)
    if minimum is not None and value < minimum:
        raise ArgumentError(f"{name} must be >= {minimum}, got {show(value)}", name)
    return value


def _bound(b):
    """A bound as people write it: 0 rather than 0.0, 1e-05 as such."""
    b = float(b)
    return repr(int(b)) if b.is_integer() else repr(b)


_BOUNDS = ((">", operator.gt), (">=", operator.ge), ("<", operator.lt), ("<=", operator.le))


def as_real(value, name, *, gt=None, ge=None, lt=None, le=None, finite=True):
    """A real argument (Python or NumPy int or float, not bool) as a Python float (weak in
    NumPy's promotion: a float32 array stays float32), never NaN.

    ``gt``/``ge`` and ``lt``/``le`` bound it strictly/inclusively from below and above; a
    value out of bounds is told the bound it broke (``lr must be > 0, got -1.0``), or both
    of a closed range (``p must be between 0 and 1, got 1.5``). ``finite`` (the default:
    no option of cynet means anything at infinity) refuses +-inf; ``finite=False`` allows it.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(
            f"{name} must be a real number, got {show(value)} ({type(value).__name__})", name)
    value = float(value)
    if math.isnan(value):
        raise ArgumentError(f"{name} must not be NaN", name)
    if ge is not None and le is not None and not ge <= value <= le:
        raise ArgumentError(
            f"{name} must be between {_bound(ge)} and {_bound(le)}, got {show(value)}", name)
    for bound, (symbol, holds) in zip((gt, ge, lt, le), _BOUNDS):
        if bound is not None and not holds(value, bound):
            raise ArgumentError(f"{name} must be {symbol} {_bound(bound)}, got {show(value)}", name)
    if finite and math.isinf(value):
        raise ArgumentError(f"{name} must be finite, got {show(value)}", name)
    return value


def as_pair(value, name, minimum):
    """An int or an (h, w) pair of ints, each at least ``minimum``."""
    if type(value) is int and minimum <= value <= _MAX_INT:  # the common case, fast
        return value, value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (tuple, list, np.ndarray)):
        items = list(value)
        if len(items) != 2:
            raise ArgumentError(f"{name} must be an int or an (h, w) pair, got {show(value)}", name)
    else:
        items = [value, value]
    try:
        pair = tuple(as_int(v, name) for v in items)
    except TypeError:
        raise ArgumentTypeError(
            f"{name} must be an int or an (h, w) pair of ints, got {show(value)}", name) from None
    if min(pair) < minimum:
        raise ArgumentError(f"{name} must be >= {minimum}, got {show(value)}", name)
    return pair


PADDING_FORMS = ("an int", "an (h, w) pair", "a per-side ((top, bottom), (left, right))")


def as_padding(value, name="padding", strings=("same", "valid")):
    """A padding argument: one of ``strings`` as given, or the per-side form
    ``((top, bottom), (left, right))`` of an int, an (h, w) pair or a pair of pairs (each
    value >= 0). ``strings=()``: numbers only."""
    *first, last = PADDING_FORMS + tuple(map(repr, strings))
    forms = f"{', '.join(first)} or {last}"
    if isinstance(value, str):
        if value in strings:
            return value
        raise ArgumentError(f"{name} must be {forms}, got {show(value)}"
                            f"{did_you_mean(value, strings)}", name)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (tuple, list, np.ndarray)) and len(value) == 2 and any(
            isinstance(v, (tuple, list, np.ndarray)) for v in value):
        if not all(isinstance(v, (tuple, list, np.ndarray)) and len(v) == 2 for v in value):
            raise ArgumentError(
                f"{name} must be {forms}; a per-side padding is two (before, after) pairs, "
                f"got {show(value)}", name)
        try:
            sides = tuple(tuple(as_int(v, name) for v in axis) for axis in value)
        except TypeError:
            raise ArgumentTypeError(
                f"{name} must be {forms}, of ints, got {show(value)}", name) from None
        if min(min(axis) for axis in sides) < 0:
            raise ArgumentError(f"{name} must be >= 0 on every side, got {show(value)}", name)
        return sides
    ph, pw = as_pair(value, name, 0)
    return (ph, ph), (pw, pw)


def as_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be True or False, got {show(value)}", name)
    return bool(value)


# PyTorch takes any divisor_override its int64_t holds, except 0
_INT64_RANGE = (-2**63, 2**63 - 1)


def as_divisor_override(value):
    """An average pooling's ``divisor_override`` as PyTorch takes it: None (each window's
    sum is divided by the window's size) or a non-zero int of 64 bits, negative ones
    included, which then divides every window's sum whatever ``count_include_pad`` says."""
    name = "divisor_override"
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(
            f"{name} must be None or an int, got {show(value)} ({type(value).__name__})", name)
    value = int(value)
    if value == 0:
        raise ArgumentError(
            f"{name} must not be 0 (None divides each window by its size), got 0", name)
    if not _INT64_RANGE[0] <= value <= _INT64_RANGE[1]:
        raise ArgumentError(f"{name} must be between -2**63 and 2**63 - 1, got {value}", name)
    return value


def as_float_array(value, name, dtype=None):
    """A C-contiguous float32/float64 array; ``dtype``, when given, must match."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ArgumentTypeError(f"{name} must be a float32 or float64 array: {exc}", name) from None
    if arr.dtype.newbyteorder("=") in FLOAT_DTYPES and not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype not in FLOAT_DTYPES:
        raise ArgumentTypeError(
            f"{name} must be a float32 or float64 array, got dtype {arr.dtype}", name)
    if dtype is not None and arr.dtype != dtype:
        raise ArgumentTypeError(
            f"{name} has dtype {arr.dtype} but the other arrays are {dtype}; "
            f"all array arguments must share one dtype", name)
    # (np.ascontiguousarray would turn a 0-d array into shape (1,))
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def as_float_arrays(*named, optional=("bias",)):
    """Check ``(name, value)`` pairs: the first fixes the dtype; only the ``optional``
    names may be ``None``."""
    for name, value in named:
        if value is None and name not in optional:
            raise ArgumentTypeError(f"{name} must be a float32 or float64 array, got None", name)
    first = as_float_array(named[0][1], named[0][0])
    out = [first]
    for name, value in named[1:]:
        out.append(None if value is None else as_float_array(value, name, first.dtype))
    return out


def check_ndim(arr, name, ndim, layout):
    if arr.ndim != ndim:
        raise ArgumentError(f"{name} must be {ndim}-D {layout}, got shape {arr.shape}", name)


def as_index_array(value, name, shape):
    """An integer array of the given shape, as C-contiguous int64."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # e.g. a ragged nested list
        raise ArgumentError(f"{name} must be an integer array: {exc}", name) from None
    if arr.dtype.kind not in "iu":
        raise ArgumentTypeError(f"{name} must be an integer array, got dtype {arr.dtype}", name)
    if arr.shape != tuple(shape):
        raise ArgumentError(f"{name} has shape {arr.shape}, expected {tuple(shape)}", name)
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ArgumentError(f"{name} holds values too large for int64", name)
    return np.ascontiguousarray(arr, dtype=np.int64)


def as_shape4(value, name):
    """A 4-tuple (N, C, H, W) of non-negative ints."""
    try:
        dims = tuple(as_int(v, name) for v in value)
    except TypeError:
        raise ArgumentError(
            f"{name} must be 4 non-negative ints (N, C, H, W), got {show(value)}", name) from None
    if len(dims) != 4 or min(dims) < 0:
        raise ArgumentError(
            f"{name} must be 4 non-negative ints (N, C, H, W), got {show(value)}", name)
    return dims
