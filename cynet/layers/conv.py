"""2-D convolution layer."""
import math

from .._args import as_padding
from .._geometry import as_padding_mode, conv_arguments, conv_geometry
from ..engine import conv
from .convolution import Convolution, Padding, Size


class Conv2D(Convolution):
    """Like ``torch.nn.Conv2d``; in_channels is taken from the input shape. ``padding``
    may also be per side, ``((top, bottom), (left, right))``, and ``"same"`` at any
    stride (see :func:`cynet.functional.conv2d`)."""

    example = {"config": {"out_channels": 4, "kernel_size": (3, 2), "stride": 2, "padding": 1,
                          "groups": 2}, "input_shape": (2, 7, 6)}
    geometry, arguments = staticmethod(conv_geometry), staticmethod(conv_arguments)
    engine = conv
    # this layer keeps x unchanged, so the columns its forward left may be reused
    reuse_columns = True

    def __init__(self, out_channels: int, kernel_size: Size, stride: Size = 1,
                 padding: Padding = 0, dilation: Size = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", **kwargs):
        super().__init__(out_channels, kernel_size, stride, dilation, groups, bias, **kwargs)
        as_padding(padding)
        self.padding = padding
        self.padding_mode = as_padding_mode(padding_mode)

    def geometry_args(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, padding_mode=self.padding_mode)

    def weight_shape(self, in_channels, kh, kw):
        return (self.out_channels, in_channels // self.groups, kh, kw)

    def fan_in(self, in_channels, kh, kw):
        return in_channels // self.groups * kh * kw

    @staticmethod
    def output_shape_of(geo):
        return geo.out_shape

    def multiply_adds(self):
        kh, kw = self.params["weight"].shape[2:]
        return math.prod(self.output_shape) * (self.input_shape[0] // self.groups) * kh * kw
