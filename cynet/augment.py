"""Training-time augmentation (``training.augment``): random crop with padding,
horizontal flip and random erasing, per sample, vectorised over the batch.

    augment = Augmentation.from_config({"random_crop": {"padding": 4},
                                        "horizontal_flip": True,
                                        "random_erasing": {"p": 0.5}})
    xb = augment(xb, rng)      # a float batch (N, C, H, W); a new array

Every random choice is drawn from ``rng`` (the run's generator), a fixed number of draws
per batch whatever the images hold, in this order: crop offsets, flips, erasing. So a
seed gives the same batches run to run, and a resumed run (whose generator state the
checkpoint keeps) draws what the uninterrupted one drew.

- ``random_crop``: the image shifted by up to ``padding`` pixels each way, the uncovered
  border zero (torchvision's ``RandomCrop(size, padding)`` of a zero-padded image);
- ``horizontal_flip``: mirrored left-right with probability 1/2;
- ``random_erasing``: Zhong et al. (2020): with probability ``p`` (0.5), a rectangle of
  ``scale`` (0.02 to 0.4) of the image's area and aspect ratio in ``ratio`` (0.3 to 1/0.3)
  is filled with uniform random values in [0, 1) (``value: "random"``, the paper's
  default) or with ``value``; an attempt whose rectangle does not fit is drawn again,
  up to ``ERASING_ATTEMPTS`` times, else the image is left whole.
"""
import math

import numpy as np

from ._args import ArgumentError, ArgumentTypeError, as_bool, as_int, as_real
from ._suggest import did_you_mean, show

ERASING_ATTEMPTS = 10
ERASING_DEFAULTS = {"p": 0.5, "scale": (0.02, 0.4), "ratio": (0.3, 1 / 0.3), "value": "random"}
KINDS = ("random_crop", "horizontal_flip", "random_erasing")

__all__ = ["Augmentation", "KINDS", "ERASING_DEFAULTS"]


def _options(config, name, known, top=False):
    """``config`` as a dict with keys among ``known`` (a did-you-mean for the others);
    an error's argument is ``name.key``, or ``key`` alone for the ``top`` config."""
    if not isinstance(config, dict):
        raise ArgumentTypeError(f"{name} must be an object, got {show(config)}",
                                None if top else name)
    for key in config:
        if key not in known:
            raise ArgumentError(f"{name} has no option {show(key)}"
                                f"{did_you_mean(str(key), known)} (options: "
                                f"{', '.join(known)})", key if top else f"{name}.{key}")
    return config


def _range(value, name, low, high):
    """An increasing ``[a, b]`` pair of reals within ``(low, high]``."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ArgumentTypeError(f"{name} must be a pair [low, high], got {show(value)}", name)
    a, b = (as_real(v, name, gt=low, le=high) for v in value)
    if a > b:
        raise ArgumentError(f"{name} must be increasing, got {show(value)}", name)
    return a, b


class Augmentation:
    """The augmentations of a ``training.augment`` config (see the module docstring)."""

    def __init__(self, crop_padding=0, flip=False, erasing=None):
        self.crop_padding, self.flip, self.erasing = crop_padding, flip, erasing

    @classmethod
    def from_config(cls, config):
        """Checked options; an error names the option (``random_erasing.p``)."""
        config = _options(config, "augment", KINDS, top=True)
        padding = 0
        if "random_crop" in config:
            crop = _options(config["random_crop"], "random_crop", ("padding",))
            if "padding" not in crop:
                raise ArgumentError("random_crop needs its padding (pixels each way)",
                                    "random_crop")
            padding = as_int(crop["padding"], "random_crop.padding", minimum=1)
        flip = as_bool(config.get("horizontal_flip", False), "horizontal_flip")
        erasing = None
        if "random_erasing" in config:
            given = _options(config["random_erasing"], "random_erasing", tuple(ERASING_DEFAULTS))
            erasing = {**ERASING_DEFAULTS, **given}
            erasing["p"] = as_real(erasing["p"], "random_erasing.p", ge=0, le=1)
            erasing["scale"] = _range(erasing["scale"], "random_erasing.scale", 0, 1)
            erasing["ratio"] = _range(erasing["ratio"], "random_erasing.ratio", 0, math.inf)
            value = erasing["value"]
            if value != "random":
                erasing["value"] = as_real(value, "random_erasing.value")
        return cls(padding, flip, erasing)

    def __bool__(self):
        return bool(self.crop_padding or self.flip or self.erasing)

    def __call__(self, x, rng):
        """The augmented batch ``x`` (N, C, H, W) as a new array (``x`` is not changed)."""
        x = np.array(x, copy=True)
        if self.crop_padding:
            x = self._crop(x, rng)
        if self.flip:
            flipped = rng.random(len(x)) < 0.5
            x[flipped] = x[flipped, :, :, ::-1]
        if self.erasing is not None:
            self._erase(x, rng)
        return x

    def _crop(self, x, rng):
        """Each image moved by its own offset in [-padding, padding] along each axis;
        the pixels that come from outside it are zero."""
        n, _, h, w = x.shape
        p = self.crop_padding
        dy, dx = rng.integers(-p, p + 1, size=(2, n))
        rows = np.arange(h) + dy[:, None]  # (N, H): the source row of each output row
        cols = np.arange(w) + dx[:, None]
        inside = (((rows >= 0) & (rows < h))[:, :, None]
                  & ((cols >= 0) & (cols < w))[:, None, :])  # (N, H, W)
        picked = x[np.arange(n)[:, None, None, None], np.arange(x.shape[1])[None, :, None, None],
                   np.clip(rows, 0, h - 1)[:, None, :, None],
                   np.clip(cols, 0, w - 1)[:, None, None, :]]
        picked *= inside[:, None].astype(x.dtype)
        return picked

    def _erase(self, x, rng):
        """Zhong et al.'s random erasing, in place."""
        n, c, h, w = x.shape
        e = self.erasing
        chosen = rng.random(n) < e["p"]
        area = rng.uniform(*e["scale"], size=(ERASING_ATTEMPTS, n)) * (h * w)
        aspect = rng.uniform(*e["ratio"], size=(ERASING_ATTEMPTS, n))
        eh = np.rint(np.sqrt(area * aspect)).astype(np.int64)
        ew = np.rint(np.sqrt(area / aspect)).astype(np.int64)
        fits = (eh < h) & (ew < w) & (eh > 0) & (ew > 0)
        # the corner of each attempt: uniform over the positions where it fits
        top = np.floor(rng.random((ERASING_ATTEMPTS, n)) * np.maximum(h - eh + 1, 1))
        left = np.floor(rng.random((ERASING_ATTEMPTS, n)) * np.maximum(w - ew + 1, 1))
        noise = (rng.random(x.shape, dtype=np.float32) if e["value"] == "random" else None)
        first = np.argmax(fits, axis=0)  # the first attempt that fits, per image
        take = chosen & fits[first, np.arange(n)]
        if not take.any():
            return
        pick = (first, np.arange(n))
        t, le = top[pick].astype(np.int64), left[pick].astype(np.int64)
        hh, ww = eh[pick], ew[pick]
        r, k = np.arange(h), np.arange(w)
        mask = (take[:, None, None]
                & ((r >= t[:, None]) & (r < (t + hh)[:, None]))[:, :, None]
                & ((k >= le[:, None]) & (k < (le + ww)[:, None]))[:, None, :])
        mask = np.broadcast_to(mask[:, None], x.shape)
        if noise is None:
            x[mask] = e["value"]
        else:
            x[mask] = noise[mask]
