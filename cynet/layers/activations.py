"""Element-wise activation layers."""
import numbers

import numpy as np

from .base import Layer


class ReLU(Layer):
    def forward(self, x, training=True):
        self._positive = x > 0
        return np.maximum(x, 0, dtype=x.dtype)

    def backward(self, grad_out):
        return np.multiply(grad_out, self._positive, dtype=grad_out.dtype)


class LeakyReLU(Layer):
    example = {"config": {"negative_slope": 0.1}, "input_shape": (3, 5, 4)}

    def __init__(self, negative_slope=0.01, **kwargs):
        super().__init__(**kwargs)
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
            raise TypeError(f"negative_slope must be a number, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def forward(self, x, training=True):
        self._mask = x > 0
        return np.where(self._mask, x, x * self.negative_slope).astype(x.dtype, copy=False)

    def backward(self, grad_out):
        scaled = grad_out * self.negative_slope
        return np.where(self._mask, grad_out, scaled).astype(grad_out.dtype, copy=False)


class Sigmoid(Layer):
    def forward(self, x, training=True):
        # exp of a negative argument only: no overflow for large |x|
        e = np.exp(-np.abs(x))
        self._y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return self._y

    def backward(self, grad_out):
        return grad_out * self._y * (1 - self._y)


class Tanh(Layer):
    def forward(self, x, training=True):
        self._y = np.tanh(x)
        return self._y

    def backward(self, grad_out):
        return grad_out * (1 - self._y * self._y)
