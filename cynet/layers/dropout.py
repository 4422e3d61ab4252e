"""Dropout."""
import numpy as np

from .._args import as_real
from .base import Layer


class Dropout(Layer):
    """Zero each element with probability ``p`` while training, scaling the rest by 1/(1-p)."""

    example = {"config": {"p": 0.3}, "input_shape": (3, 5, 4)}

    def __init__(self, p=0.5, **kwargs):
        super().__init__(**kwargs)
        self.p = as_real(p, "p", ge=0, le=1)

    def forward(self, x, training=True):
        if not training or self.p == 0:
            self._scale = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.p
        scale = 0.0 if self.p == 1 else 1.0 / (1.0 - self.p)
        self._scale = (keep * scale).astype(x.dtype)
        return x * self._scale

    def backward(self, grad_out):
        return grad_out if self._scale is None else grad_out * self._scale
