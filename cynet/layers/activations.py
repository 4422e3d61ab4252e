"""Element-wise activation layers."""
import numpy as np

from .. import _activations
from .._args import as_real
from .._threads import threads_for
from .base import Layer

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _kernel_ready(*arrays):
    """The arrays can go to the one-pass kernels: same float dtype, C-contiguous."""
    dtype = arrays[0].dtype
    return dtype in _KERNEL_DTYPES and all(
        a.dtype == dtype and a.flags.c_contiguous for a in arrays)


class ReLU(Layer):
    """``max(x, 0)``. The backward passes the gradient where the output is positive and
    gives 0 elsewhere (also where the gradient is inf or NaN), as PyTorch does."""

    def forward(self, x, training=True):
        x = np.asarray(x)
        if not _kernel_ready(x):
            self._y = np.maximum(x, 0, dtype=x.dtype)
            return self._y
        y = np.empty_like(x)
        _activations.relu_forward(x.reshape(-1), y.reshape(-1), threads_for(x.size))
        self._y = y
        return y

    def backward(self, grad_out):
        grad_out = np.asarray(grad_out)
        if grad_out.shape != self._y.shape:
            raise ValueError(f"grad_out has shape {grad_out.shape}, but the forward output "
                             f"has shape {self._y.shape}")
        if not _kernel_ready(grad_out, self._y):
            return np.where(self._y > 0, grad_out, 0).astype(grad_out.dtype, copy=False)
        gx = np.empty_like(grad_out)
        _activations.relu_backward(grad_out.reshape(-1), self._y.reshape(-1), gx.reshape(-1),
                                   threads_for(gx.size))
        return gx


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
