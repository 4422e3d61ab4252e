"""2-D transposed convolution layer."""
import math

from .._args import ArgumentError, as_bool, as_float_array, as_int, as_pair
from .._geometry import (check_output_padding, conv_transpose_arguments,
                         conv_transpose_geometry)
from ..engine import conv_transpose
from .base import Layer, check_input_rank, kaiming_uniform, zero_grads


class ConvTranspose2D(Layer):
    """Like ``torch.nn.ConvTranspose2d``; in_channels is taken from the input shape. The
    weight is (in_channels, out_channels // groups, kh, kw), initialised as PyTorch's."""

    example = {"config": {"out_channels": 4, "kernel_size": (3, 2), "stride": 2, "padding": 1,
                          "output_padding": 1, "groups": 2}, "input_shape": (2, 4, 3)}

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 dilation=1, groups=1, bias=True, **kwargs):
        super().__init__(**kwargs)
        self.out_channels = as_int(out_channels, "out_channels", minimum=1)
        as_pair(kernel_size, "kernel_size", 1)
        as_pair(padding, "padding", 0)  # (no "same" or "valid", as in PyTorch)
        check_output_padding(output_padding, as_pair(stride, "stride", 1),
                             as_pair(dilation, "dilation", 1))
        self.groups = as_int(groups, "groups")
        if self.groups < 1 or self.out_channels % self.groups:
            raise ArgumentError(
                f"groups must be >= 1 and divide out_channels={out_channels}, got {groups}",
                "groups")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.output_padding, self.dilation = output_padding, dilation
        self.bias = as_bool(bias, "bias")

    def _args(self):
        return dict(stride=self.stride, padding=self.padding,
                    output_padding=self.output_padding, dilation=self.dilation,
                    groups=self.groups)

    def build(self, input_shape):
        C, H, W = check_input_rank(self, input_shape, 3, "(channels, height, width)")
        if C % self.groups:
            raise ValueError(f"groups={self.groups} must divide the {C} input channels")
        kh, kw = as_pair(self.kernel_size, "kernel_size", 1)
        w_shape = (C, self.out_channels // self.groups, kh, kw)
        geo = conv_transpose_geometry((1, C, H, W), w_shape, **self._args(),
                                      kernel_name="kernel_size")
        # PyTorch's fan-in of a transposed weight: its axis 1 times the kernel's taps
        fan_in = self.out_channels // self.groups * kh * kw
        self.params["weight"] = kaiming_uniform(self, w_shape, fan_in)
        if self.bias:
            self.params["bias"] = kaiming_uniform(self, (self.out_channels,), fan_in)
        self.grads = zero_grads(self)
        self.input_shape, self.output_shape = (C, H, W), geo.in_shape[1:]
        return self.output_shape

    def multiply_adds(self):
        # every input element meets (out_channels // groups) * kh * kw weights
        _, per_group, kh, kw = self.params["weight"].shape
        return math.prod(self.input_shape) * per_group * kh * kw

    def forward(self, x, training=True):
        x, w, b, _, geo = conv_transpose_arguments(x, self.params["weight"],
                                                   self.params.get("bias"), **self._args())
        self._x, self._w, self._geo = x, w, geo  # checked once, for the backward too
        return conv_transpose.forward(x, w, b, geo)

    def backward(self, grad_out):
        geo = self._geo
        grad_out = as_float_array(grad_out, "grad_out", self._x.dtype)
        if grad_out.shape != geo.in_shape:
            raise ValueError(f"grad_out has shape {grad_out.shape}, but the forward output "
                             f"has shape {geo.in_shape}")
        gx, gw, gb = conv_transpose.backward(grad_out, self._x, self._w, geo, self.bias,
                                             self.input_grad)
        self.grads["weight"] = gw
        if self.bias:
            self.grads["bias"] = gb
        return gx
