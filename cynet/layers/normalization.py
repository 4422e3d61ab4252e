"""Batch normalisation over the channels of NCHW input."""
import numpy as np

from .._args import as_real
from .base import Layer, check_input_rank, constant, zero_grads


class BatchNorm2D(Layer):
    """Like ``torch.nn.BatchNorm2d``: batch statistics while training, running ones after.

    The running variance is updated with the unbiased batch variance, as PyTorch does.
    """

    example = {"config": {"momentum": 0.2}, "input_shape": (3, 4, 5)}

    def __init__(self, momentum=0.1, eps=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.momentum = as_real(momentum, "momentum", ge=0, le=1)
        self.eps = as_real(eps, "eps", gt=0)

    def build(self, input_shape):
        C, H, W = check_input_rank(self, input_shape, 3, "(channels, height, width)")
        self.params = {"weight": constant(self, C, 1.0), "bias": constant(self, C, 0.0)}
        self.grads = zero_grads(self)
        self.buffers = {"running_mean": constant(self, C, 0.0),
                        "running_var": constant(self, C, 1.0)}
        self.input_shape = self.output_shape = (C, H, W)
        return self.output_shape

    def forward(self, x, training=True):
        axes = (0, 2, 3)
        if training:
            count = x.shape[0] * x.shape[2] * x.shape[3]
            if count < 2:
                raise ValueError(
                    f"BatchNorm2D needs more than one value per channel while training, "
                    f"got input of shape {x.shape}"
                )
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
        self._xhat = (x - mean[:, None, None]) * inv_std[:, None, None]
        self._inv_std, self._training = inv_std, training
        return self._xhat * self.params["weight"][:, None, None] + self.params["bias"][:, None, None]

    def backward(self, grad_out):
        axes = (0, 2, 3)
        xhat = self._xhat
        self.grads["weight"] = (grad_out * xhat).sum(axis=axes)
        self.grads["bias"] = grad_out.sum(axis=axes)
        g = grad_out * (self.params["weight"] * self._inv_std)[:, None, None]
        if not self._training:
            return g
        # batch statistics depend on x: remove the mean and the projection on xhat
        return g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True)
