"""The range of the inputs a model was trained on, and a warning for inputs far outside it.

Training records what the network saw: the dtype of the training images, the factor
they were scaled by (uint8 images by 1/255, to [0, 1]; floats as given) and the least
and greatest scaled value. Weights files and checkpoints keep the record. ``predict``
and ``evaluate`` scale the same way and warn, once per call, when float input lies far
outside the recorded range (0-255 images for a model trained on 0-1), the classic
mistake that otherwise shows only as poor accuracy.
"""
import math
import warnings

import numpy as np

# how far beyond the trained range counts as far: this many times its width
FAR = 2.0


class InputRangeWarning(UserWarning):
    """Input lies far outside the range the model was trained on."""


def observe(x):
    """The record of training on ``x`` (a batch of images, uint8 or float)."""
    scale = 1 / 255 if x.dtype == np.uint8 else 1.0
    lo, hi = (float(x.min()) * scale, float(x.max()) * scale) if x.size else (0.0, 0.0)
    return {"dtype": str(x.dtype), "scale": scale, "min": lo, "max": hi}


def merge(old, new):
    """One record for training on both (a later ``fit`` call, a resumed run)."""
    if old is None:
        return new
    merged = dict(new)
    merged["min"], merged["max"] = min(old["min"], new["min"]), max(old["max"], new["max"])
    if old["dtype"] != new["dtype"]:
        merged["dtype"] = f"{old['dtype']} and {new['dtype']}"
    return merged


def from_meta(value, fail):
    """A record read from a file (None when the file has none, as files written before
    it was kept); ``fail(message)`` makes the error for a damaged one."""
    if value is None:
        return None
    keys = {"dtype": str, "scale": (int, float), "min": (int, float), "max": (int, float)}
    if not isinstance(value, dict) or set(value) != set(keys):
        raise fail(f"inputs must be an object with keys {sorted(keys)}")
    for key, kinds in keys.items():
        v = value[key]
        if not isinstance(v, kinds) or isinstance(v, bool) or (
                not isinstance(v, str) and not math.isfinite(v)):
            raise fail(f"inputs.{key} is not a {'string' if kinds is str else 'finite number'}")
    if value["min"] > value["max"] or value["scale"] <= 0:
        raise fail("inputs has min > max or a scale <= 0")
    return dict(value)


def _far_outside(record, x):
    """Why float ``x`` is far outside ``record``'s range, or None."""
    if record is None or x.dtype == np.uint8 or not x.size:
        return None
    lo, hi = record["min"], record["max"]
    width = max(hi - lo, abs(lo), abs(hi), 1e-6)
    x_lo, x_hi = float(np.min(x)), float(np.max(x))
    if not (x_lo < lo - FAR * width or x_hi > hi + FAR * width):
        return None
    how = ("uint8 training images were scaled to [0, 1]; scale x the same way or give "
           "uint8 images" if record["dtype"] == "uint8" else "scale x as the training data was")
    return (f"x ranges over [{x_lo:.4g}, {x_hi:.4g}], far outside the range "
            f"[{lo:.4g}, {hi:.4g}] the model was trained on ({how})")


def warn_if_far_outside(record, x, stacklevel=3):
    """Warn (InputRangeWarning) when float ``x`` lies far outside ``record``'s range."""
    problem = _far_outside(record, x)
    if problem:
        warnings.warn(problem, InputRangeWarning, stacklevel=stacklevel)
