"""Fully connected layer."""
import numpy as np

from .._args import as_bool, as_int
from .base import Layer, kaiming_uniform


class Dense(Layer):
    """Like ``torch.nn.Linear`` (weight ``(out_features, in_features)``), on the last axis."""

    example = {"config": {"out_features": 3}, "input_shape": (5,)}

    def __init__(self, out_features, bias=True, **kwargs):
        super().__init__(**kwargs)
        self.out_features = as_int(out_features, "out_features")
        if self.out_features < 1:
            raise ValueError(f"out_features must be >= 1, got {out_features}")
        self.bias = as_bool(bias, "bias")

    def build(self, input_shape):
        shape = tuple(input_shape)
        if not shape:
            raise ValueError("Dense needs an input with at least one axis")
        fan_in = shape[-1]
        self.params["weight"] = kaiming_uniform(self.rng, (self.out_features, fan_in), fan_in)
        if self.bias:
            self.params["bias"] = kaiming_uniform(self.rng, (self.out_features,), fan_in)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.input_shape, self.output_shape = shape, shape[:-1] + (self.out_features,)
        return self.output_shape

    def forward(self, x, training=True):
        self._x = x
        y = x @ self.params["weight"].T
        if self.bias:
            y += self.params["bias"]
        return y

    def backward(self, grad_out):
        x2 = self._x.reshape(-1, self._x.shape[-1])
        g2 = grad_out.reshape(-1, self.out_features)
        self.grads["weight"] = g2.T @ x2
        if self.bias:
            self.grads["bias"] = g2.sum(axis=0)
        return grad_out @ self.params["weight"] if self.input_grad else None
