"""Pooling layers: max, average and global average."""
import numpy as np

from .. import functional as F
from .._args import as_bool, as_divisor_override, as_float_array, as_pair, as_padding
from .._geometry import pool_geometry, pool_input
from ..engine import pool
from .activations import ReLU
from .base import Layer, check_input_rank
from .convolution import Padding, Size


class _Pool2D(Layer):
    example = {"config": {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
               "input_shape": (2, 7, 6)}

    def __init__(self, kernel_size: Size, stride: Size | None = None, padding: Padding = 0,
                 ceil_mode: bool = False, **kwargs):
        super().__init__(**kwargs)
        as_pair(kernel_size, "kernel_size", 1)
        if stride is not None:
            as_pair(stride, "stride", 1)
        as_padding(padding)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode = as_bool(ceil_mode, "ceil_mode")

    def build(self, input_shape):
        C, H, W = check_input_rank(self, input_shape, 3, "(channels, height, width)")
        geo = pool_geometry((1, C, H, W), self.kernel_size, self.stride, self.padding,
                            getattr(self, "dilation", 1), self.ceil_mode)
        self.input_shape, self.output_shape = (C, H, W), (C,) + geo.out_hw
        return self.output_shape


class MaxPool2D(_Pool2D):
    """Like ``torch.nn.MaxPool2d``; stride defaults to kernel_size.

    A ReLU right before it is absorbed (see ``Layer.absorb``): max-pooling commutes with
    it, so the ReLU runs on the pooled output (a quarter of the elements for 2x2
    windows) instead of a pass over the full input, with the same values and gradients.
    """

    def __init__(self, kernel_size: Size, stride: Size | None = None, padding: Padding = 0,
                 dilation: Size = 1, ceil_mode: bool = False, **kwargs):
        super().__init__(kernel_size, stride, padding, ceil_mode, **kwargs)
        as_pair(dilation, "dilation", 1)
        self.dilation = dilation
        self.relu_before = False

    def absorb(self, previous):
        self.relu_before = type(previous) is ReLU
        return self.relu_before

    def forward(self, x, training=True):
        x = pool_input(x)
        geo = pool_geometry(x.shape, self.kernel_size, self.stride, self.padding,
                            self.dilation, self.ceil_mode)
        y, self._indices = pool.max_pool(x, geo, relu=self.relu_before)
        self._x_shape = x.shape
        self._relu_output = y if self.relu_before else None
        return y

    def backward(self, grad_out):
        grad_out = as_float_array(grad_out, "grad_out")
        if grad_out.shape != self._indices.shape:
            raise ValueError(f"grad_out has shape {grad_out.shape}, but the forward output "
                             f"has shape {self._indices.shape}")
        relu_output = self._relu_output
        if relu_output is not None:
            relu_output = relu_output.astype(grad_out.dtype, copy=False)
        return pool.max_pool_backward(grad_out, self._indices, self._x_shape, relu_output)


class AvgPool2D(_Pool2D):
    """Like ``torch.nn.AvgPool2d``; stride defaults to kernel_size. ``divisor_override``
    (a non-zero int, or None) divides every window's sum instead of its size."""

    def __init__(self, kernel_size: Size, stride: Size | None = None, padding: Padding = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None, **kwargs):
        super().__init__(kernel_size, stride, padding, ceil_mode, **kwargs)
        self.count_include_pad = as_bool(count_include_pad, "count_include_pad")
        self.divisor_override = as_divisor_override(divisor_override)

    def _args(self):
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad, self.divisor_override)

    def forward(self, x, training=True):
        self._x_shape = x.shape
        return F.avg_pool2d(x, *self._args())

    def backward(self, grad_out):
        return F.avg_pool2d_backward(grad_out, self._x_shape, *self._args())


class GlobalAvgPool2D(Layer):
    """Mean over height and width: (C, H, W) -> (C,)."""

    def build(self, input_shape):
        C, H, W = check_input_rank(self, input_shape, 3, "(channels, height, width)")
        self.input_shape, self.output_shape = (C, H, W), (C,)
        return self.output_shape

    def forward(self, x, training=True):
        self._x_shape = x.shape
        return x.mean(axis=(2, 3), dtype=x.dtype)

    def backward(self, grad_out):
        N, C, H, W = self._x_shape
        gx = grad_out[:, :, None, None] / (H * W)
        return np.broadcast_to(gx, self._x_shape).copy()
