"""The Layer protocol every built-in and plugin layer follows."""
import inspect

import numpy as np


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class Layer:
    """Base class of all layers.

    A subclass takes its JSON keys as constructor arguments, passes anything it does not
    know to ``super().__init__(**kwargs)`` (which rejects it), creates its trainable arrays
    in ``build`` and fills ``grads`` (same keys as ``params``) in ``backward``.

    Attributes set by the model before ``build``:
      ``rng``         a ``numpy.random.Generator`` for initialisation and randomness
      ``input_grad``  False for a first layer, whose input gradient nobody needs
      ``allocate``    False in a shape-only build (validate, summary, size checks): the
                      arrays may then be zero-cost stand-ins of the right shape and dtype
    ``buffers`` holds non-trainable state that is saved with the model (e.g. running stats).
    ``backward`` must not modify ``grad_out`` in place: in a graph the same array may be
    the gradient of several layers.
    ``example`` (a class attribute) gives a config and per-sample input shape for gradcheck.
    """

    example = {"config": {}, "input_shape": (3, 5, 4)}
    # a merge layer (Add, Concat) reads several outputs: its build gets a list of shapes,
    # its forward a list of arrays, and its backward returns a list of gradients
    merges = False

    def __init__(self, **config):
        if config:
            raise TypeError(
                f"{type(self).__name__} got unexpected argument(s): {', '.join(sorted(config))}"
            )
        self.params = {}
        self.grads = {}
        self.buffers = {}
        self.input_grad = True
        self.allocate = True
        self.rng = np.random.default_rng()
        self.input_shape = None
        self.output_shape = None

    def build(self, input_shape):
        """Create parameters for a per-sample ``input_shape``; return the output shape."""
        self.input_shape = self.output_shape = tuple(input_shape)
        return self.output_shape

    def forward(self, x, training=True):
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, grad_out):
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def multiply_adds(self):
        """Multiply-adds of one sample's forward pass, for ``cynet summary`` (after
        ``build``). Default 0: only layers made of products (convolutions, dense layers)
        count them."""
        return 0

    def absorb(self, previous):
        """Whether this layer computes ``previous``'s operation too, on the input of
        ``previous`` (a fusion). The network asks before every pass, with the layer whose
        output this one reads as ``previous``, and skips ``previous`` when the answer is
        True; the answer holds until the next question. Default: no fusion."""
        return False

    def get_config(self):
        """The constructor arguments, read back from attributes of the same names."""
        config = {}
        for name, p in inspect.signature(type(self).__init__).parameters.items():
            if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                config[name] = _jsonable(getattr(self, name))
        return config

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def check_input_rank(layer, input_shape, rank, layout):
    """Raise a ValueError unless the per-sample shape has ``rank`` dimensions."""
    shape = tuple(input_shape)
    if len(shape) != rank:
        raise ValueError(
            f"{type(layer).__name__} expects per-sample input of shape {layout}, got {shape}"
        )
    return shape


def _stand_in(shape, dtype=np.float32):
    """A read-only array of ``shape`` that owns one element: what a shape-only build
    gives in place of a parameter (its size, nbytes and dtype are the real array's)."""
    return np.broadcast_to(np.zeros((), dtype), shape)


def kaiming_uniform(layer, shape, fan_in):
    """PyTorch's default init for conv and linear layers: U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    drawn from ``layer.rng``."""
    if not layer.allocate:
        return _stand_in(shape)
    bound = 1.0 / np.sqrt(fan_in)
    return layer.rng.uniform(-bound, bound, size=shape).astype(np.float32)


def constant(layer, shape, value):
    """A float32 array of ``shape`` filled with ``value`` (a stand-in in a shape-only build)."""
    if not layer.allocate:
        return _stand_in(shape)
    return np.full(shape, value, np.float32)


def zero_grads(layer):
    """A zero gradient for each of ``layer.params``, for ``layer.grads`` after a build."""
    if not layer.allocate:
        return {k: _stand_in(v.shape, v.dtype) for k, v in layer.params.items()}
    return {k: np.zeros_like(v) for k, v in layer.params.items()}
