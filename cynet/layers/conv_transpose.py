"""2-D transposed convolution layer."""
import math

from .._args import as_pair
from .._geometry import check_output_padding, conv_transpose_arguments, conv_transpose_geometry
from ..engine import conv_transpose
from .convolution import Convolution, Size


class ConvTranspose2D(Convolution):
    """Like ``torch.nn.ConvTranspose2d``; in_channels is taken from the input shape. The
    weight is (in_channels, out_channels // groups, kh, kw), initialised as PyTorch's."""

    example = {"config": {"out_channels": 4, "kernel_size": (3, 2), "stride": 2, "padding": 1,
                          "output_padding": 1, "groups": 2}, "input_shape": (2, 4, 3)}
    geometry = staticmethod(conv_transpose_geometry)
    arguments = staticmethod(conv_transpose_arguments)
    engine = conv_transpose

    def __init__(self, out_channels: int, kernel_size: Size, stride: Size = 1,
                 padding: Size = 0, output_padding: Size = 0, dilation: Size = 1,
                 groups: int = 1, bias: bool = True, **kwargs):
        super().__init__(out_channels, kernel_size, stride, dilation, groups, bias, **kwargs)
        as_pair(padding, "padding", 0)  # (no "same" or "valid", as in PyTorch)
        check_output_padding(output_padding, as_pair(stride, "stride", 1),
                             as_pair(dilation, "dilation", 1))
        self.padding, self.output_padding = padding, output_padding

    def geometry_args(self):
        return dict(stride=self.stride, padding=self.padding,
                    output_padding=self.output_padding, dilation=self.dilation,
                    groups=self.groups)

    def weight_shape(self, in_channels, kh, kw):
        return (in_channels, self.out_channels // self.groups, kh, kw)

    def fan_in(self, in_channels, kh, kw):
        # PyTorch's fan-in of a transposed weight: its axis 1 times the kernel's taps
        return self.out_channels // self.groups * kh * kw

    @staticmethod
    def output_shape_of(geo):
        # the geometry is the convolution this one transposes: its input is our output
        return geo.in_shape

    def multiply_adds(self):
        # every input element meets (out_channels // groups) * kh * kw weights
        _, per_group, kh, kw = self.params["weight"].shape
        return math.prod(self.input_shape) * per_group * kh * kw
