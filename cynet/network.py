"""The network: layers in order, their passes, and their arrays by name.

A definition's layers run one after another (a graph in a later release). Before every
forward pass each layer is asked whether it absorbs the one before it
(``Layer.absorb``, e.g. a MaxPool2D the ReLU it follows); an absorbed layer is skipped
in that pass and in the backward that follows it. The plan is made from the layers as
they are at that moment, so a layer replaced in ``layers`` takes effect at once.
"""


import numpy as np


class LayerOutputError(RuntimeError):
    """A layer (in practice a plugin's) that returned what its pass may not: the wrong
    shape or dtype from ``forward``, or no input gradient from ``backward`` where the
    layers before it need one. The message names the layer and where it comes from."""


class Network:
    """``layers`` (a list, replaceable item by item) and their passes."""

    def __init__(self, layers):
        self.layers = layers
        self._ran = []  # the steps of the last forward pass, for its backward

    def steps(self):
        """The layers a pass runs: each layer that absorbs its predecessor replaces it."""
        steps = []
        for layer in self.layers:
            if layer.absorb(steps[-1] if steps else None):
                steps[-1] = layer
            else:
                steps.append(layer)
        return steps

    def forward(self, x, training=False):
        """The output for the batch ``x``; each layer's output is checked against the
        shape its ``build`` promised and the input's dtype."""
        steps = self.steps()
        self._ran = steps
        for layer in steps:
            y = layer.forward(x, training=training)
            expected = None if layer.output_shape is None else (len(x),) + layer.output_shape
            if (not isinstance(y, np.ndarray) or y.dtype != x.dtype
                    or (expected is not None and y.shape != expected)):
                raise LayerOutputError(
                    f"{self.describe(layer)}: forward returned {_kind(y)} for a "
                    f"{x.dtype} batch of {len(x)}, expected {x.dtype} {expected}")
            x = y
        return x

    def backward(self, grad):
        """Back through the last forward pass's steps; returns the input's gradient, or
        None when the first layer does not compute one."""
        for i in range(len(self._ran) - 1, -1, -1):
            layer = self._ran[i]
            grad = layer.backward(grad)
            if grad is None and i > 0:  # the layers before would silently stop learning
                raise LayerOutputError(
                    f"{self.describe(layer)}: backward returned None, but the layers "
                    "before it need the gradient of its input")
            if grad is None:
                break
        return grad

    def describe(self, layer):
        """``layers[3] (Swish of my_pkg 1.0)``: a layer's place and its origin."""
        from . import registry

        where = next((f"layers[{i}]" for i, l in enumerate(self.layers) if l is layer), "a layer")
        info = registry.info_of(type(layer))
        if info is None:  # a class used directly, not through the registry
            return f"{where} ({type(layer).__qualname__} from {type(layer).__module__})"
        return f"{where} ({info.type} from {info.package} {info.version})".replace(" )", ")")

    def _named(self, attribute):
        return {f"layers.{i}.{k}": v for i, layer in enumerate(self.layers)
                for k, v in getattr(layer, attribute).items()}

    def parameters(self):
        """Trainable arrays by name (``layers.{i}.{param}``); the same objects layers use."""
        return self._named("params")

    def gradients(self):
        """The gradients of the last backward, keyed like :meth:`parameters`."""
        return self._named("grads")

    def buffers(self):
        """Non-trainable state (e.g. BatchNorm running statistics), ``layers.{i}.{name}``."""
        return self._named("buffers")


def _kind(value):
    if isinstance(value, np.ndarray):
        return f"{value.dtype} {value.shape}"
    return type(value).__name__
