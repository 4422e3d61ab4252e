"""What the convolution layers share (Conv2D, ConvTranspose2D): their checked common
options, PyTorch's initialisation, and a forward that checks its arrays once for the
backward too."""
from .._args import ArgumentError, as_bool, as_float_array, as_int, as_pair
from .base import Layer, check_input_rank, kaiming_uniform, zero_grads

# the JSON forms of the geometric options (what ``cynet schema`` tells an editor; the
# constructors check the values): an int or an (h, w) pair; a padding may also be a
# per-side pair of pairs or a string ("same", "valid")
Size = int | list
Padding = int | list | str


class Convolution(Layer):
    """A subclass gives the weight's shape and fan-in, its geometry and arguments
    functions (``cynet._geometry``), the engine module that runs it, and which side of
    the geometry its output is (``output_shape_of``)."""

    def __init__(self, out_channels, kernel_size, stride, dilation, groups, bias, **kwargs):
        super().__init__(**kwargs)
        self.out_channels = as_int(out_channels, "out_channels", minimum=1)
        as_pair(kernel_size, "kernel_size", 1)
        as_pair(stride, "stride", 1)
        as_pair(dilation, "dilation", 1)
        self.groups = as_int(groups, "groups")
        if self.groups < 1 or self.out_channels % self.groups:
            raise ArgumentError(
                f"groups must be >= 1 and divide out_channels={out_channels}, got {groups}",
                "groups")
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.bias = as_bool(bias, "bias")

    # ------------------------------------------------------------ for the subclasses
    def weight_shape(self, in_channels, kh, kw):
        raise NotImplementedError

    def fan_in(self, in_channels, kh, kw):
        raise NotImplementedError

    def geometry_args(self):
        """The keyword arguments of the geometry, besides shapes."""
        raise NotImplementedError

    geometry = arguments = engine = None  # functions and module, set by the subclass
    reuse_columns = False  # the engine may reuse the forward's columns in the backward

    @staticmethod
    def output_shape_of(geo):
        raise NotImplementedError

    # ------------------------------------------------------------------------ layer
    def build(self, input_shape):
        C, H, W = check_input_rank(self, input_shape, 3, "(channels, height, width)")
        if C % self.groups:
            raise ValueError(f"groups={self.groups} must divide the {C} input channels")
        kh, kw = as_pair(self.kernel_size, "kernel_size", 1)
        w_shape = self.weight_shape(C, kh, kw)
        geo = type(self).geometry((1, C, H, W), w_shape, **self.geometry_args(),
                                  kernel_name="kernel_size")
        fan_in = self.fan_in(C, kh, kw)
        self.params["weight"] = kaiming_uniform(self, w_shape, fan_in)
        if self.bias:
            self.params["bias"] = kaiming_uniform(self, (self.out_channels,), fan_in)
        self.grads = zero_grads(self)
        self.input_shape, self.output_shape = (C, H, W), self.output_shape_of(geo)[1:]
        return self.output_shape

    def forward(self, x, training=True):
        x, w, b, _, geo = type(self).arguments(x, self.params["weight"],
                                               self.params.get("bias"), **self.geometry_args())
        self._x, self._w, self._geo = x, w, geo  # checked once, for the backward too
        return self.engine.forward(x, w, b, geo)

    def backward(self, grad_out):
        geo = self._geo
        grad_out = as_float_array(grad_out, "grad_out", self._x.dtype)
        if grad_out.shape != self.output_shape_of(geo):
            raise ValueError(f"grad_out has shape {grad_out.shape}, but the forward output "
                             f"has shape {self.output_shape_of(geo)}")
        extra = {"reuse_columns": True} if self.reuse_columns else {}
        gx, gw, gb = self.engine.backward(grad_out, self._x, self._w, geo, self.bias,
                                          self.input_grad, **extra)
        self.grads["weight"] = gw
        if self.bias:
            self.grads["bias"] = gb
        return gx
