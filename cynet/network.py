"""The network: layers wired as a graph, their passes, and their arrays by name.

The layers run in the definition's order, each on the outputs of the layers it reads
(``cynet.graph.Wiring``; a chain when no layer says otherwise). An output is let go as
soon as its last reader has run, so a pass holds only what later layers and the
backward need (the layers keep what their own backward needs). The backward runs the
same steps in reverse and sums the gradients of an output read by several layers.

Before every forward pass each layer is asked whether it absorbs the layer whose output
it reads (``Layer.absorb``, e.g. a MaxPool2D the ReLU before it); that is asked only
when it is that output's sole reader and the output is not the model's. An absorbed
layer is skipped in that pass and in the backward that follows it. The plan is made from
the layers as they are at that moment, so a layer replaced in ``layers`` takes effect at
once.
"""
from typing import NamedTuple

import numpy as np

from .graph import INPUT, Wiring


class LayerOutputError(RuntimeError):
    """A layer (in practice a plugin's) that returned what its pass may not: the wrong
    shape or dtype from ``forward``, or no input gradient from ``backward`` where the
    layers before it need one. The message names the layer and where it comes from."""


class Step(NamedTuple):
    """One layer of a pass: its index, the layer, and the outputs it reads (INPUT the
    model's input); an absorbed layer's step is gone and its reader reads its inputs."""

    index: int
    layer: object
    inputs: tuple


class Network:
    """``layers`` (a list, replaceable item by item), their wiring and their passes."""

    def __init__(self, layers, wiring=None):
        self.layers = layers
        self.wiring = Wiring.chain(len(layers)) if wiring is None else wiring
        self._ran = []  # the steps of the last forward pass, for its backward
        self.peak_outputs = 0  # the most outputs the last forward held at once

    def steps(self):
        """The steps a pass runs, in order."""
        readers = self.wiring.readers()
        last = len(self.layers) - 1
        steps, position = [], {}  # position: layer index -> its step's place in ``steps``
        for i, (layer, refs) in enumerate(zip(self.layers, self.wiring.inputs)):
            j = refs[0] if len(refs) == 1 else INPUT
            k = position.get(j)
            # asked once per pass: about the layer it reads when it is that one's sole
            # reader (and that output is not the model's), else about None
            previous = steps[k].layer if k is not None and readers[j] == [i] and j != last \
                else None
            if layer.absorb(previous) and previous is not None:
                refs = steps[k].inputs  # the absorbed output never exists: read its inputs
                steps[k] = None
            position[i] = len(steps)
            steps.append(Step(i, layer, refs))
        return [s for s in steps if s is not None]

    def forward(self, x, training=False):
        """The output for the batch ``x``; each layer's output is checked against the
        shape its ``build`` promised and the input's dtype."""
        steps = self.steps()
        self._ran = steps
        pending = _reads(steps)  # how many steps still read each output
        outputs = {INPUT: x}
        self.peak_outputs = 1
        for step in steps:
            given = [outputs[j] for j in step.inputs]
            layer = step.layer
            y = layer.forward(given if layer.merges else given[0], training=training)
            expected = None if layer.output_shape is None else (len(x),) + layer.output_shape
            if (not isinstance(y, np.ndarray) or y.dtype != x.dtype
                    or (expected is not None and y.shape != expected)):
                raise LayerOutputError(
                    f"{self.describe(layer)}: forward returned {_kind(y)} for a "
                    f"{x.dtype} batch of {len(x)}, expected {x.dtype} {expected}")
            for j in step.inputs:
                pending[j] -= 1
                if not pending[j]:
                    del outputs[j]  # its last reader has run
            outputs[step.index] = y
            self.peak_outputs = max(self.peak_outputs, len(outputs))
        return outputs[steps[-1].index]

    def backward(self, grad):
        """Back through the last forward pass's steps; returns the gradient of the
        model's input, or None when no layer reading it computes one."""
        grads = {self._ran[-1].index: grad} if self._ran else {}
        owned = set()  # gradients summed here, which may be added to in place
        for step in reversed(self._ran):
            layer = step.layer
            g = grads.pop(step.index)
            given = layer.backward(g)
            wanted = [j for j in step.inputs if j != INPUT or layer.input_grad]
            if given is None:
                if any(j != INPUT for j in step.inputs):  # those layers would stop learning
                    raise LayerOutputError(
                        f"{self.describe(layer)}: backward returned None, but the layers "
                        "before it need the gradient of its input")
                continue
            parts = given if layer.merges else [given]
            if layer.merges and (not isinstance(given, (list, tuple))
                                 or len(given) != len(step.inputs)):
                raise LayerOutputError(
                    f"{self.describe(layer)}: backward returned {_kind(given)}, expected a "
                    f"list of {len(step.inputs)} gradients, one for each input")
            for k, (j, part) in enumerate(zip(step.inputs, parts)):
                if j not in wanted:
                    continue
                if part is None:
                    raise LayerOutputError(
                        f"{self.describe(layer)}: backward returned None for input {k}, "
                        "but the layer it reads needs that gradient")
                if j not in grads:
                    grads[j] = part
                elif j in owned:
                    grads[j] += part
                else:  # the first may be another layer's array: sum into a new one
                    grads[j] = grads[j] + part
                    owned.add(j)
        return grads.get(INPUT)

    def describe(self, layer):
        """``layers[3] (Swish of my_pkg 1.0)``: a layer's place and its origin."""
        from . import registry

        i = next((i for i, l in enumerate(self.layers) if l is layer), None)
        where = "a layer" if i is None else f"layers[{i}]"
        if i is not None and not self.wiring.names[i].startswith("layers."):
            where += f" {self.wiring.names[i]!r}"
        info = registry.info_of(type(layer))
        if info is None:  # a class used directly, not through the registry
            return f"{where} ({type(layer).__qualname__} from {type(layer).__module__})"
        return f"{where} ({info.type} from {info.package} {info.version})".replace(" )", ")")

    def _named(self, attribute):
        return {f"{name}.{k}": v for name, layer in zip(self.wiring.names, self.layers)
                for k, v in getattr(layer, attribute).items()}

    def parameters(self):
        """Trainable arrays by name (``{layer name}.{param}``, ``layers.{i}.{param}`` for
        an unnamed layer); the same objects layers use."""
        return self._named("params")

    def gradients(self):
        """The gradients of the last backward, keyed like :meth:`parameters`."""
        return self._named("grads")

    def buffers(self):
        """Non-trainable state (e.g. BatchNorm running statistics), ``{layer name}.{name}``."""
        return self._named("buffers")


def _reads(steps):
    """How many of ``steps`` read each output (the last step's output counted once more:
    the pass returns it)."""
    count = {}
    for step in steps:
        for j in step.inputs:
            count[j] = count.get(j, 0) + 1
    count[steps[-1].index] = count.get(steps[-1].index, 0) + 1
    return count


def _kind(value):
    if isinstance(value, np.ndarray):
        return f"{value.dtype} {value.shape}"
    return type(value).__name__
