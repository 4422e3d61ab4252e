"""Reshaping layers."""
import math

from .base import Layer


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...)."""

    def build(self, input_shape):
        self.input_shape = tuple(input_shape)
        self.output_shape = (math.prod(self.input_shape),)
        return self.output_shape

    def forward(self, x, training=True):
        self._x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out):
        return grad_out.reshape(self._x_shape)


class Identity(Layer):
    """Its input, unchanged (a placeholder, or a named point of a graph)."""

    def forward(self, x, training=True):
        return x

    def backward(self, grad_out):
        return grad_out
