"""Weights files: one ``.npz`` (no pickle) with a model's arrays and its definition.

    {layer name}.{param}    trainable arrays (``layers.{i}.weight`` for an unnamed layer)
    {layer name}.{buffer}   non-trainable state (e.g. BatchNorm running statistics)
    definition              the model definition, a JSON text
    cynet_meta              a JSON text: the format version, each layer type's package and
                            the record of the training inputs (cynet.input_range)

Format 1 (the first release, before layers had names) keyed the arrays
``layers.{i}.params.{param}`` and ``layers.{i}.buffers.{buffer}``; such files are read
under today's names. A file of a higher format version than this cynet reads is
refused; arrays are checked against the model (names, shapes, dtypes, finite values)
before any is copied.
"""
import json
import re

import numpy as np

from . import registry
from ._atomic import atomic_write
from ._npzfile import DEFINITION_ARRAY, read_cynet_file

# of the weights files ``save`` writes; a file of a higher version is refused
FORMAT_VERSION = 2
_FORMAT1_NAME = re.compile(r"(.*?)layers\.(\d+)\.(?:params|buffers)\.(.+)")
WEIGHTS_META = "cynet_meta"

__all__ = ["WeightsFileError", "FORMAT_VERSION", "state_arrays", "load_state_arrays", "save",
           "read", "capacity", "missing_plugin", "atomic_savez", "kind"]


class WeightsFileError(ValueError):
    """A weights or checkpoint file that cannot be used, naming the file and the problem."""


def state_arrays(network):
    """Every array that defines the trained network, by its name in weights files:
    ``{layer name}.{param or buffer}`` (a layer's parameters and buffers have different
    names: the definition's check says so)."""
    arrays = {}
    for name, layer in zip(network.wiring.names, network.layers):
        for group in (layer.params, layer.buffers):
            for k, v in group.items():
                arrays[f"{name}.{k}"] = v
    return arrays


def current_name(name):
    """An array's name in this format, given its name in a file of any earlier format
    (``layers.3.params.weight`` of format 1 is ``layers.3.weight``; a prefix such as a
    checkpoint's ``model.`` is kept)."""
    match = _FORMAT1_NAME.fullmatch(name)
    return f"{match[1]}layers.{match[2]}.{match[3]}" if match else name


def upgraded(arrays, version):
    """A file's arrays of format ``version`` under this format's names."""
    if version >= FORMAT_VERSION:
        return arrays
    return {current_name(k): v for k, v in arrays.items()}


def load_state_arrays(network, arrays, source="weights"):
    """Copy saved arrays into the layers after checking them all against the network:
    names, shapes, dtypes and finite values. A mismatch (say, the weights of another
    architecture) is a WeightsFileError naming each array: ``layers[0].weight: file
    has (8, 1, 3, 3), model needs (4, 1, 3, 3)``; nothing is copied then."""
    expected = state_arrays(network)
    problems = [f"{_display(k)}: missing from the file" for k in expected if k not in arrays]
    problems += [f"unexpected array {k!r}" for k in arrays if k not in expected]
    for name, target in expected.items():
        value = arrays.get(name)
        if value is None:
            continue
        if np.shape(value) != target.shape:
            problems.append(f"{_display(name)}: file has {np.shape(value)}, model needs "
                            f"{target.shape}")
        elif getattr(value, "dtype", None) != target.dtype:
            problems.append(f"{_display(name)}: file has dtype {kind(value, shape=False)}, "
                            f"model needs {target.dtype}")
        elif not np.isfinite(value).all():
            problems.append(f"{_display(name)}: holds NaN or infinite values")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise WeightsFileError(f"{source}: the arrays do not fit the model: "
                               + "; ".join(problems[:3]) + more)
    for name, target in expected.items():
        target[...] = arrays[name]


def _layer_sources(definition):
    out = []
    for spec in definition.layers:
        info = registry.source(spec["type"])
        out.append({"type": spec["type"], "package": info.package if info else "",
                    "version": info.version if info else ""})
    return out


def save(path, network, definition, inputs=None):
    """Write the network's arrays and the definition to one ``.npz`` (no pickle), with
    the format version, the package of each layer type and the record of the training
    inputs (``inputs``, see ``cynet.input_range``) in its metadata."""
    meta = {"format_version": FORMAT_VERSION, "layers": _layer_sources(definition)}
    if inputs is not None:
        meta["inputs"] = inputs
    arrays = dict(state_arrays(network))
    arrays[DEFINITION_ARRAY] = np.array(json.dumps(definition.to_dict()))
    arrays[WEIGHTS_META] = np.array(json.dumps(meta))
    atomic_savez(path, arrays)


def read(path, capacity=None):
    """``(meta, definition, arrays)`` of a weights file; any problem with the file itself
    is a WeightsFileError naming it. ``capacity(meta, definition)``: the bytes each array
    may hold, checked before any is decompressed (``_npzfile.read_cynet_file``)."""
    return read_cynet_file(path, WeightsFileError, WEIGHTS_META, "weights file",
                           FORMAT_VERSION, capacity)


def capacity(network, prefix=""):
    """The bytes each array a file may hold for ``network`` (names with ``prefix``, in
    this format or an earlier one), as a function of the name (None: no such array);
    for ``read``."""
    sizes = {prefix + k: v.nbytes for k, v in state_arrays(network).items()}
    return lambda name: sizes.get(name) or sizes.get(current_name(name))


def missing_plugin(meta, doc, exc):
    """Name the package of a layer type that is not installed, if that is why the
    definition ``doc`` failed with ``exc`` (a DefinitionError); else None. The metadata's
    entry for the failing layer must be of the definition's type."""
    entries = meta.get("layers")
    layers = doc.get("layers")
    if not isinstance(entries, list) or not isinstance(layers, list):
        return None
    for i, (entry, spec) in enumerate(zip(entries, layers)):
        if (exc.place == f"layers[{i}].type" and isinstance(entry, dict)
                and isinstance(spec, dict) and entry.get("type") == spec.get("type")
                and entry.get("package")):
            return (
                f"layer type {entry['type']!r} comes from the package {entry['package']} "
                f"{entry.get('version', '')}".rstrip()
                + ", which is not installed (or failed to load); install it to load this model"
            )
    return None


_UNNAMED = re.compile(r"layers\.(\d+)\.(.+)")


def _display(name):
    """``layers.3.weight`` as ``layers[3].weight`` (the place in the definition); a named
    layer's array as it is (``c1.weight``)."""
    match = _UNNAMED.fullmatch(name)
    return f"layers[{match[1]}].{match[2]}" if match else name


def kind(value, shape=True):
    """An array's dtype (and shape) as an error message shows it."""
    dtype = getattr(value, "dtype", type(value).__name__)
    return f"{dtype} {np.shape(value)}" if shape else str(dtype)


def atomic_savez(path, arrays):
    """Write an ``.npz`` atomically (never half-written)."""
    atomic_write(path, lambda f: np.savez(f, **arrays))
