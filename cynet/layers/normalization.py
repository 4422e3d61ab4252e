"""Batch normalisation over the channels (features) of batch-first input."""
import math

import numpy as np

from .._args import as_real
from .base import Layer, constant, zero_grads


class _BatchNorm(Layer):
    """Batch statistics per channel (axis 1) while training, running ones after; the
    running variance is updated with the unbiased batch variance, as PyTorch does.
    Subclasses say which per-sample ranks they take (``ranks``, ``layout``)."""

    ranks, layout = (), ""

    def __init__(self, momentum=0.1, eps=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.momentum = as_real(momentum, "momentum", ge=0, le=1)
        self.eps = as_real(eps, "eps", gt=0)

    def build(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) not in self.ranks:
            raise ValueError(f"{type(self).__name__} expects per-sample input of shape "
                             f"{self.layout}, got {shape}")
        C = shape[0]
        self.params = {"weight": constant(self, C, 1.0), "bias": constant(self, C, 0.0)}
        self.grads = zero_grads(self)
        self.buffers = {"running_mean": constant(self, C, 0.0),
                        "running_var": constant(self, C, 1.0)}
        self.input_shape = self.output_shape = shape
        return self.output_shape

    def _per_channel(self, v, x):
        """``v`` (C,) shaped to broadcast over ``x`` (N, C, ...)."""
        return v.reshape((-1,) + (1,) * (x.ndim - 2))

    def forward(self, x, training=True):
        axes = (0,) + tuple(range(2, x.ndim))
        if training:
            count = x.shape[0] * math.prod(x.shape[2:])
            if count < 2:
                raise ValueError(
                    f"{type(self).__name__} needs more than one value per channel while "
                    f"training, got input of shape {x.shape}")
            mean = x.mean(axis=axes, dtype=x.dtype)
            var = x.var(axis=axes, dtype=x.dtype)
            m = self.momentum
            rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
            rm *= 1 - m
            rm += m * mean
            rv *= 1 - m
            rv += m * var * (count / (count - 1))
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype)
        self._xhat = (x - self._per_channel(mean, x)) * self._per_channel(inv_std, x)
        self._inv_std, self._training = inv_std, training
        return (self._xhat * self._per_channel(self.params["weight"], x)
                + self._per_channel(self.params["bias"], x))

    def backward(self, grad_out):
        xhat = self._xhat
        axes = (0,) + tuple(range(2, xhat.ndim))
        self.grads["weight"] = (grad_out * xhat).sum(axis=axes)
        self.grads["bias"] = grad_out.sum(axis=axes)
        g = grad_out * self._per_channel(self.params["weight"] * self._inv_std, xhat)
        if not self._training:
            return g
        # batch statistics depend on x: remove the mean and the projection on xhat
        return g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True)


class BatchNorm2D(_BatchNorm):
    """Like ``torch.nn.BatchNorm2d``, over the channels of (N, C, H, W) input."""

    example = {"config": {"momentum": 0.2}, "input_shape": (3, 4, 5)}
    ranks, layout = (3,), "(channels, height, width)"


class BatchNorm1D(_BatchNorm):
    """Like ``torch.nn.BatchNorm1d``, over the features of (N, F) input (or the channels
    of (N, C, L) input)."""

    example = {"config": {"momentum": 0.2}, "input_shape": (6,)}
    ranks, layout = (1, 2), "(features,) or (channels, length)"
