"""Merge layers: one output from the outputs of several layers (graph definitions)."""
import numpy as np

from .._args import as_int
from .base import Layer


def _shapes(layer, input_shapes):
    shapes = [tuple(s) for s in input_shapes]
    if len(shapes) < 2:
        raise ValueError(f"{type(layer).__name__} merges two inputs or more, got {len(shapes)}")
    return shapes


class Add(Layer):
    """The sum of two or more inputs of one shape (a residual connection)."""

    example = {"config": {}, "input_shape": [(2, 3, 4), (2, 3, 4)]}
    merges = True

    def build(self, input_shapes):
        shapes = _shapes(self, input_shapes)
        if any(s != shapes[0] for s in shapes):
            raise ValueError(f"Add needs inputs of one shape, got {shapes}")
        self.input_shape, self.output_shape = shapes, shapes[0]
        return self.output_shape

    def forward(self, xs, training=True):
        self._n = len(xs)
        out = np.add(xs[0], xs[1])
        for x in xs[2:]:
            out += x
        return out

    def backward(self, grad_out):
        return [grad_out] * self._n  # the same array for each: nobody modifies it


class Concat(Layer):
    """Inputs joined along the batch-first axis ``dim`` (1: the channels), like
    ``torch.cat(xs, dim)``; the other axes must agree. A negative ``dim`` counts from
    the end; the batch axis (0) cannot be joined."""

    example = {"config": {"dim": 1}, "input_shape": [(2, 3, 4), (3, 3, 4)]}
    merges = True

    def __init__(self, dim=1, **kwargs):
        super().__init__(**kwargs)
        self.dim = as_int(dim, "dim")

    def _axis(self, rank):
        """The per-sample axis that ``dim`` names, for samples of ``rank`` axes."""
        if not (1 <= self.dim <= rank or -rank <= self.dim <= -1):
            raise ValueError(f"dim must name an axis other than the batch of a "
                             f"{rank + 1}-axis batch (1..{rank} or -{rank}..-1), got {self.dim}")
        return self.dim - 1 if self.dim > 0 else rank + self.dim

    def build(self, input_shapes):
        shapes = _shapes(self, input_shapes)
        ranks = {len(s) for s in shapes}
        if len(ranks) != 1:
            raise ValueError(f"Concat needs inputs of one rank, got {shapes}")
        axis = self._axis(ranks.pop())
        rest = {s[:axis] + s[axis + 1:] for s in shapes}
        if len(rest) != 1:
            raise ValueError(f"Concat along dim={self.dim} needs inputs that agree on every "
                             f"other axis, got {shapes}")
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        self.input_shape, self.output_shape = shapes, tuple(out)
        return self.output_shape

    def forward(self, xs, training=True):
        axis = self._axis(xs[0].ndim - 1) + 1
        self._splits = np.cumsum([x.shape[axis] for x in xs])[:-1]
        self._batch_axis = axis
        return np.concatenate(xs, axis=axis)

    def backward(self, grad_out):
        return np.split(grad_out, self._splits, axis=self._batch_axis)
