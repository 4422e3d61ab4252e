"""Element-wise activation layers."""
import numpy as np

from .._args import as_real
from ..engine import ops
from .base import Layer


class ReLU(Layer):
    """``max(x, 0)``. The backward passes the gradient where the output is positive and
    gives 0 elsewhere (also where the gradient is inf or NaN), as PyTorch does."""

    def forward(self, x, training=True):
        x = np.asarray(x)
        self._y = ops.relu(x) if ops.fits_kernel(x) else np.maximum(x, 0, dtype=x.dtype)
        return self._y

    def backward(self, grad_out):
        grad_out = np.asarray(grad_out)
        if grad_out.shape != self._y.shape:
            raise ValueError(f"grad_out has shape {grad_out.shape}, but the forward output "
                             f"has shape {self._y.shape}")
        if ops.fits_kernel(grad_out, self._y):
            return ops.relu_backward(grad_out, self._y)
        return np.where(self._y > 0, grad_out, 0).astype(grad_out.dtype, copy=False)


class LeakyReLU(Layer):
    example = {"config": {"negative_slope": 0.1}, "input_shape": (3, 5, 4)}

    def __init__(self, negative_slope=0.01, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = as_real(negative_slope, "negative_slope")

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
