"""Fully connected layer."""
import math

import numpy as np

from .._args import as_bool, as_int
from ..engine.ops import matmul
from .base import Layer, kaiming_uniform, zero_grads


class Dense(Layer):
    """Like ``torch.nn.Linear`` (weight ``(out_features, in_features)``), on the last axis."""

    example = {"config": {"out_features": 3}, "input_shape": (5,)}

    def __init__(self, out_features, bias=True, **kwargs):
        super().__init__(**kwargs)
        self.out_features = as_int(out_features, "out_features", minimum=1)
        self.bias = as_bool(bias, "bias")

    def build(self, input_shape):
        shape = tuple(input_shape)
        if not shape:
            raise ValueError("Dense needs an input with at least one axis")
        fan_in = shape[-1]
        self.params["weight"] = kaiming_uniform(self, (self.out_features, fan_in), fan_in)
        if self.bias:
            self.params["bias"] = kaiming_uniform(self, (self.out_features,), fan_in)
        self.grads = zero_grads(self)
        self.input_shape, self.output_shape = shape, shape[:-1] + (self.out_features,)
        return self.output_shape

    def multiply_adds(self):
        return math.prod(self.output_shape) * self.input_shape[-1]

    def forward(self, x, training=True):
        self._x = x
        x2 = x.reshape(-1, x.shape[-1])
        dtype = np.result_type(x, self.params["weight"])
        # y^T = W . x^T: OpenBLAS runs this operand order faster than x . W^T for a wide
        # layer on a small batch (simple.json's dense layer, in the training benchmark);
        # the transposed result is copied out once, with the bias added on the way
        yt = np.empty((self.out_features, x2.shape[0]), dtype=dtype)
        matmul(self.params["weight"], x2.T, yt)
        y = np.empty((x2.shape[0], self.out_features), dtype=dtype)
        if self.bias:
            np.add(yt.T, self.params["bias"], out=y)
        else:
            np.copyto(y, yt.T)
        return y.reshape(x.shape[:-1] + (self.out_features,))

    def backward(self, grad_out):
        weight = self.params["weight"]
        x2 = self._x.reshape(-1, self._x.shape[-1])
        g2 = grad_out.reshape(-1, self.out_features)
        self.grads["weight"] = matmul(g2.T, x2, np.empty_like(weight, dtype=g2.dtype))
        if self.bias:
            self.grads["bias"] = g2.sum(axis=0)
        if not self.input_grad:
            return None
        gx = np.empty((g2.shape[0], weight.shape[1]), dtype=np.result_type(g2, weight))
        return matmul(g2, weight, gx).reshape(self._x.shape)
