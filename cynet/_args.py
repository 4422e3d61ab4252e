"""Normalising and checking the arguments of cynet.functional.

Every error names the argument and the offending value, dtype or shape.
"""
import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Larger geometry values only overflow index arithmetic; no real network needs them.
_MAX_INT = 2**31 - 1


def as_int(value, name):
    """An integer argument (Python or NumPy int, not bool)."""
    if type(value) is int and -_MAX_INT <= value <= _MAX_INT:  # the common case, fast
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    value = int(value)
    if abs(value) > _MAX_INT:
        raise ValueError(f"{name} must be at most {_MAX_INT} in magnitude, got {value}")
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
            raise ValueError(f"{name} must be an int or an (h, w) pair, got {value!r}")
    else:
        items = [value, value]
    try:
        pair = tuple(as_int(v, name) for v in items)
    except TypeError:
        raise TypeError(f"{name} must be an int or an (h, w) pair of ints, got {value!r}") from None
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair


def as_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def as_float_array(value, name, dtype=None):
    """A C-contiguous float32/float64 array; ``dtype``, when given, must match."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a float32 or float64 array: {exc}") from None
    if arr.dtype.newbyteorder("=") in FLOAT_DTYPES and not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {arr.dtype}")
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {arr.dtype} but the other arrays are {dtype}; "
            f"all array arguments must share one dtype"
        )
    # (np.ascontiguousarray would turn a 0-d array into shape (1,))
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def as_float_arrays(*named, optional=("bias",)):
    """Check ``(name, value)`` pairs: the first fixes the dtype; only the ``optional``
    names may be ``None``."""
    for name, value in named:
        if value is None and name not in optional:
            raise TypeError(f"{name} must be a float32 or float64 array, got None")
    first = as_float_array(named[0][1], named[0][0])
    out = [first]
    for name, value in named[1:]:
        out.append(None if value is None else as_float_array(value, name, first.dtype))
    return out


def check_ndim(arr, name, ndim, layout):
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {arr.shape}")


def as_index_array(value, name, shape):
    """An integer array of the given shape, as C-contiguous int64."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # e.g. a ragged nested list
        raise ValueError(f"{name} must be an integer array: {exc}") from None
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} has shape {arr.shape}, expected {tuple(shape)}")
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds values too large for int64")
    return np.ascontiguousarray(arr, dtype=np.int64)


def as_shape4(value, name):
    """A 4-tuple (N, C, H, W) of non-negative ints."""
    try:
        dims = tuple(as_int(v, name) for v in value)
    except TypeError:
        raise ValueError(f"{name} must be 4 non-negative ints (N, C, H, W), got {value!r}") from None
    if len(dims) != 4 or min(dims) < 0:
        raise ValueError(f"{name} must be 4 non-negative ints (N, C, H, W), got {value!r}")
    return dims
