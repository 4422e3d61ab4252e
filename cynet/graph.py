"""A definition's wiring: each layer's name and the layers it reads (API §4a).

A definition is a list of layers in an order where every layer comes after the layers
it reads. ``"name"`` (default ``layers.{i}``, so earlier files keep their names) and
``"inputs"`` (default: the layer before; ``"input"`` is the model's input) make it a
graph. The model's output is the last layer's; every other layer must be read by a later
one. Which layers take several inputs is the layers' own business (``Layer.merges``),
checked when they are made.
"""
import re
from dataclasses import dataclass

from ._suggest import did_you_mean, show

MODEL_INPUT = "input"  # the name of the model's input in "inputs"
INPUT = -1  # and its index in Wiring.inputs
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def default_name(i):
    """The name of layer ``i`` when the definition gives it none."""
    return f"layers.{i}"


@dataclass(frozen=True)
class Wiring:
    """``names[i]``: layer i's name; ``inputs[i]``: the indices of the layers it reads
    (INPUT for the model's input), in the order given."""

    names: tuple
    inputs: tuple

    @classmethod
    def chain(cls, n):
        """``n`` layers one after another."""
        return cls(tuple(default_name(i) for i in range(n)), tuple((i - 1,) for i in range(n)))

    def readers(self):
        """For each layer, the layers that read its output (a layer reading it twice
        counted twice)."""
        out = [[] for _ in self.names]
        for i, refs in enumerate(self.inputs):
            for j in refs:
                if j != INPUT:
                    out[j].append(i)
        return out

    def is_chain(self):
        return all(refs == (i - 1,) for i, refs in enumerate(self.inputs))


def resolve(specs, error):
    """The Wiring of the layer specs (dicts), checked; ``error(place, message)`` makes
    the exception for what is wrong."""
    names, index = [], {}
    for i, spec in enumerate(specs):
        name = spec.get("name", default_name(i))
        if "name" in spec:
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise error(f"layers[{i}].name", f"a name is letters, digits and _, not "
                                                 f"starting with a digit; got {show(name)}")
            if name == MODEL_INPUT:
                raise error(f"layers[{i}].name", f"{MODEL_INPUT!r} names the model's input; "
                                                 f"choose another name")
        if name in index:
            raise error(f"layers[{i}].name", f"duplicate name {name!r}: layers[{index[name]}] "
                                             f"is called that already")
        index[name] = i
        names.append(name)
    inputs = [_inputs_of(i, spec, names, index, error) for i, spec in enumerate(specs)]
    wiring = Wiring(tuple(names), tuple(inputs))
    for i, readers in enumerate(wiring.readers()[:-1]):
        if not readers:
            raise error(f"layers[{i}]", f"the output of {names[i]!r} is read by no later "
                                        f"layer (the model's output is the last layer's); "
                                        f"name it in a later layer's \"inputs\" or remove it")
    return wiring


def _inputs_of(i, spec, names, index, error):
    if "inputs" not in spec:
        return (i - 1,)
    given = spec["inputs"]
    listed = [given] if isinstance(given, str) else given
    if (not isinstance(listed, list) or not listed
            or not all(isinstance(n, str) for n in listed)):
        raise error(f"layers[{i}].inputs", f"must be a layer name or a non-empty list of "
                                           f"names, got {show(given)}")
    refs = []
    for k, name in enumerate(listed):
        place = f"layers[{i}].inputs" + (f"[{k}]" if isinstance(given, list) else "")
        if name == MODEL_INPUT:
            refs.append(INPUT)
            continue
        j = index.get(name)
        if j is None:
            raise error(place, f"no layer is called {show(name)}"
                               f"{did_you_mean(name, names[:i] + [MODEL_INPUT])}")
        if j >= i:
            where = "is this layer itself" if j == i else f"comes later (layers[{j}])"
            raise error(place, f"{name!r} {where}; a layer reads only earlier layers or "
                               f"{MODEL_INPUT!r}")
        refs.append(j)
    return tuple(refs)
