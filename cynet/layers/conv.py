"""2-D convolution layer."""
import math

from .._args import ArgumentError, as_bool, as_float_array, as_int, as_pair, as_padding
from .._geometry import as_padding_mode, conv_arguments, conv_geometry
from ..engine import conv
from .base import Layer, check_input_rank, kaiming_uniform, zero_grads


class Conv2D(Layer):
    """Like ``torch.nn.Conv2d``; in_channels is taken from the input shape. ``padding``
    may also be per side, ``((top, bottom), (left, right))``, and ``"same"`` at any
    stride (see :func:`cynet.functional.conv2d`)."""

    example = {"config": {"out_channels": 4, "kernel_size": (3, 2), "stride": 2, "padding": 1,
                          "groups": 2}, "input_shape": (2, 7, 6)}

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", **kwargs):
        super().__init__(**kwargs)
        self.out_channels = as_int(out_channels, "out_channels", minimum=1)
        as_pair(kernel_size, "kernel_size", 1)
        as_pair(stride, "stride", 1)
        as_pair(dilation, "dilation", 1)
        as_padding(padding)
        self.padding_mode = as_padding_mode(padding_mode)
        self.groups = as_int(groups, "groups")
        if self.groups < 1 or self.out_channels % self.groups:
            raise ArgumentError(
                f"groups must be >= 1 and divide out_channels={out_channels}, got {groups}",
                "groups")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation = dilation
        self.bias = as_bool(bias, "bias")

    def _args(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, padding_mode=self.padding_mode)

    def build(self, input_shape):
        C, H, W = check_input_rank(self, input_shape, 3, "(channels, height, width)")
        if C % self.groups:
            raise ValueError(f"groups={self.groups} must divide the {C} input channels")
        kh, kw = as_pair(self.kernel_size, "kernel_size", 1)
        w_shape = (self.out_channels, C // self.groups, kh, kw)
        geo = conv_geometry((1, C, H, W), w_shape, **self._args(), kernel_name="kernel_size")
        fan_in = C // self.groups * kh * kw
        self.params["weight"] = kaiming_uniform(self, w_shape, fan_in)
        if self.bias:
            self.params["bias"] = kaiming_uniform(self, (self.out_channels,), fan_in)
        self.grads = zero_grads(self)
        self.input_shape, self.output_shape = (C, H, W), geo.out_shape[1:]
        return self.output_shape

    def multiply_adds(self):
        kh, kw = self.params["weight"].shape[2:]
        return math.prod(self.output_shape) * (self.input_shape[0] // self.groups) * kh * kw

    def forward(self, x, training=True):
        x, w, b, _, geo = conv_arguments(x, self.params["weight"], self.params.get("bias"),
                                         **self._args())
        self._x, self._w, self._geo = x, w, geo  # checked once, for the backward too
        return conv.forward(x, w, b, geo)

    def backward(self, grad_out):
        geo = self._geo
        grad_out = as_float_array(grad_out, "grad_out", self._x.dtype)
        if grad_out.shape != geo.out_shape:
            raise ValueError(f"grad_out has shape {grad_out.shape}, but the forward output "
                             f"has shape {geo.out_shape}")
        # this layer keeps x unchanged, so the columns its forward left may be reused
        gx, gw, gb = conv.backward(grad_out, self._x, self._w, geo, self.bias,
                                   self.input_grad, reuse_columns=True)
        self.grads["weight"] = gw
        if self.bias:
            self.grads["bias"] = gb
        return gx
