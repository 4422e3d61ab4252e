"""Swish and PReLU2D, written against cynet's public ``Layer`` protocol only.

A layer takes its JSON keys as constructor arguments (anything unknown goes to
``super().__init__``, which rejects it), creates float32 parameters in ``build`` and
fills ``grads`` (same keys as ``params``) in ``backward``. ``get_config`` reads the
constructor arguments back from attributes of the same names, so keep them.
"""
import numbers

import numpy as np

import cynet


def _sigmoid(x):
    """1 / (1 + exp(-x)) without overflow: exp is only taken of -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Swish(cynet.Layer):
    """``x * sigmoid(x)`` (also called SiLU), element-wise; no parameters."""

    example = {"config": {}, "input_shape": (3, 5, 4)}

    def forward(self, x, training=True):
        self._x = x
        self._s = _sigmoid(x).astype(x.dtype, copy=False)
        return x * self._s

    def backward(self, grad_out):
        if not self.input_grad:
            return None
        s, x = self._s, self._x
        # d/dx [x s(x)] = s + x s (1 - s) = s (1 + x (1 - s))
        return (grad_out * (s * (1 + x * (1 - s)))).astype(grad_out.dtype, copy=False)


class PReLU2D(cynet.Layer):
    """``max(0, x) + weight[c] * min(0, x)`` with one learnable slope per channel.

    Like ``torch.nn.PReLU(num_parameters=C, init=init)``: the parameter ``"weight"`` has
    shape ``(C,)``, ``C`` being the first axis of the per-sample input ``(C, H, W)`` or
    ``(C,)``.
    """

    example = {"config": {"init": 0.25}, "input_shape": (3, 5, 4)}

    def __init__(self, init=0.25, **kwargs):
        super().__init__(**kwargs)
        if isinstance(init, bool) or not isinstance(init, numbers.Real):
            raise TypeError(f"init must be a number, got {init!r}")
        if not np.isfinite(init):
            raise ValueError(f"init must be finite, got {init!r}")
        self.init = float(init)

    def build(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) not in (1, 3):
            raise ValueError(
                f"PReLU2D expects per-sample input of shape (C, H, W) or (C,), got {shape}"
            )
        channels = shape[0]
        self.params["weight"] = np.full((channels,), self.init, dtype=np.float32)
        self.grads = {"weight": np.zeros_like(self.params["weight"])}
        self.input_shape = self.output_shape = shape
        return shape

    def _slopes(self, x):
        """The weights shaped to broadcast over a batch (N, C) or (N, C, H, W)."""
        return self.params["weight"].reshape((1, -1) + (1,) * (x.ndim - 2))

    def forward(self, x, training=True):
        self._x = x
        self._positive = x > 0
        return np.where(self._positive, x, x * self._slopes(x)).astype(x.dtype, copy=False)

    def backward(self, grad_out):
        x, positive = self._x, self._positive
        weight = self.params["weight"]
        axes = (0,) + tuple(range(2, x.ndim))
        self.grads["weight"] = (
            np.where(positive, 0, x * grad_out).sum(axis=axes).astype(weight.dtype, copy=False)
        )
        if not self.input_grad:
            return None
        gx = np.where(positive, grad_out, grad_out * self._slopes(x))
        return gx.astype(grad_out.dtype, copy=False)
