"""The network: layers in order, their passes, and their arrays by name.

A definition's layers run one after another (a graph in a later release). Before every
forward pass each layer is asked whether it absorbs the one before it
(``Layer.absorb``, e.g. a MaxPool2D the ReLU it follows); an absorbed layer is skipped
in that pass and in the backward that follows it. The plan is made from the layers as
they are at that moment, so a layer replaced in ``layers`` takes effect at once.
"""


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
        steps = self.steps()
        self._ran = steps
        for layer in steps:
            x = layer.forward(x, training=training)
        return x

    def backward(self, grad):
        """Back through the last forward pass's steps; returns the input's gradient, or
        None when the first layer does not compute one."""
        for layer in reversed(self._ran):
            grad = layer.backward(grad)
            if grad is None:
                break
        return grad

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
