"""Checkpoints: everything needed to continue a training run exactly, and the checks
that decide whether a run may be resumed.

A checkpoint file is a weights-style ``.npz``: ``model.*`` arrays (the weights file's
names), ``optimizer.*`` arrays (its state dict), the definition, and a JSON metadata
text with the format version, the epoch, the metrics history, every random generator's
state and a fingerprint of the definition.
"""
import hashlib
import json

import numpy as np

from . import input_range, weights
from ._npzfile import DEFINITION_ARRAY, read_cynet_file
from ._suggest import did_you_mean
from .definition import DefinitionError, build_layers, parse
from .network import Network
from .optimizers import make_optimizer

# of checkpoint files; a checkpoint of a higher version is refused
# 2: the model's arrays named as in weights files of format 2 (``model.{layer name}.{k}``)
CHECKPOINT_FORMAT_VERSION = 2
CHECKPOINT_META = "cynet_checkpoint"

__all__ = ["CheckpointError", "CHECKPOINT_FORMAT_VERSION", "training_state",
           "load_training_state", "write", "read", "fingerprint", "differences",
           "check_resumable"]


class CheckpointError(ValueError):
    """A checkpoint that is damaged, not a checkpoint, of a newer format, or whose
    definition differs from the run being resumed."""


# --------------------------------------------------------------------------- state


def training_state(model):
    """``(arrays, meta)``: everything needed to continue training ``model`` exactly."""
    arrays = {f"model.{k}": v for k, v in weights.state_arrays(model.network).items()}
    arrays.update({f"optimizer.{k}": v for k, v in model.optimizer.state_dict().items()})
    meta = {
        "epoch": model.epoch,
        "history": model.history,
        "rng": model.rng.bit_generator.state,
        "layer_rngs": [layer.rng.bit_generator.state for layer in model.layers],
    }
    if model.input_range is not None:
        meta["inputs"] = model.input_range
    return arrays, meta


def load_training_state(model, arrays, meta, source="checkpoint"):
    """Restore what :func:`training_state` returned (weights, optimizer, RNGs, epoch).
    Everything is checked first: a WeightsFileError naming ``source`` and the problem
    leaves the model as it was."""
    fail = _failing(source)
    # a checkpoint of format 1 names the model's arrays as weights files of format 1 did
    version = meta.get("format_version", CHECKPOINT_FORMAT_VERSION) \
        if isinstance(meta, dict) else CHECKPOINT_FORMAT_VERSION
    if isinstance(version, int) and version < CHECKPOINT_FORMAT_VERSION:
        arrays = weights.upgraded(arrays, 1)
    network_arrays, optimizer_arrays = {}, {}
    for key, value in arrays.items():
        group, _, name = key.partition(".")
        if group not in ("model", "optimizer") or not name:
            raise fail(f"unexpected array {key!r} (a checkpoint holds model.* and "
                       "optimizer.* arrays)")
        (network_arrays if group == "model" else optimizer_arrays)[name] = value
    epoch, history = _checked_progress(meta, fail)
    rng_states = _checked_rng_states(meta, model, fail)
    inputs = input_range.from_meta(meta.get("inputs"), fail)
    optimizer = _loaded_optimizer(model, optimizer_arrays, epoch, fail)
    weights.load_state_arrays(model.network, network_arrays, source)
    model.optimizer = optimizer
    for generator, state in rng_states:
        generator.bit_generator.state = state
    model.epoch, model.history = epoch, history
    model.input_range = inputs


def _failing(source):
    """A WeightsFileError factory whose messages start with ``source``."""
    return lambda problem: weights.WeightsFileError(f"{source}: {problem}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _checked_progress(meta, fail):
    """``(epoch, history)`` of training-state metadata: a count of finished epochs and one
    JSON object of metrics per epoch."""
    if not isinstance(meta, dict):
        raise fail("the training state's metadata is not a JSON object")
    for key in ("epoch", "history", "rng", "layer_rngs"):
        if key not in meta:
            raise fail(f"no {key!r} in the training state's metadata")
    epoch, history = meta["epoch"], meta["history"]
    if not _is_int(epoch) or epoch < 0:
        raise fail(f"epoch {json.dumps(epoch)} is not a count of epochs")
    if not isinstance(history, list) or not all(isinstance(m, dict) for m in history):
        raise fail("history is not a list of JSON objects (the metrics of each epoch)")
    if len(history) != epoch:
        raise fail(f"history holds {len(history)} epochs' metrics, but epoch is {epoch}")
    return epoch, [dict(m) for m in history]


def _checked_rng_states(meta, model, fail):
    """``(generator, state)`` for the model's and each layer's random generator, each
    state tried on a generator of the same kind."""
    states = meta["layer_rngs"]
    if not isinstance(states, list) or len(states) != len(model.layers):
        count = len(states) if isinstance(states, list) else "no list of"
        raise fail(f"layer_rngs holds {count} random generator states for a model of "
                   f"{len(model.layers)} layers")
    places = ["rng"] + [f"layer_rngs[{i}]" for i in range(len(states))]
    generators = [model.rng] + [layer.rng for layer in model.layers]
    for place, generator, state in zip(places, generators, [meta["rng"]] + states):
        trial = type(generator.bit_generator)()
        problem = _state_form_problem(trial.state, state, place)
        if problem is None:
            try:
                trial.state = state
            except (TypeError, ValueError, KeyError, OverflowError) as exc:
                problem = str(exc) or type(exc).__name__
        if problem is None and trial.state != state:  # numpy took it modulo its word size
            problem = "a number in it is out of range"
        if problem is not None:
            raise fail(f"{place} is not a valid {type(trial).__name__} random generator "
                       f"state: {problem}")
    return list(zip(generators, [meta["rng"]] + states))


def _state_form_problem(expected, given, where):
    """What makes ``given`` differ in form from a generator's ``expected`` state (the
    same keys, a whole number where it has one, the same names), or None."""
    if isinstance(expected, dict):
        if not isinstance(given, dict) or set(given) != set(expected):
            return f"{where} must be an object with keys {sorted(expected)}"
        for key, value in expected.items():
            problem = _state_form_problem(value, given[key], f"{where}.{key}")
            if problem:
                return problem
        return None
    if isinstance(expected, (int, np.integer)) and not isinstance(expected, bool):
        if isinstance(given, bool) or not isinstance(given, int):
            return f"{where} must be a whole number, got {type(given).__name__}"
        if given < 0:  # every number in numpy's generator states is unsigned
            return f"{where} must not be negative, got {given}"
        return None
    if isinstance(expected, str) and given != expected:
        return f"{where} must be {expected!r}"
    return None


def _loaded_optimizer(model, state, epoch, fail):
    """A fresh optimizer holding ``state``, checked against the parameters: after an
    epoch every parameter has its state, each buffer the parameter's shape and dtype."""
    params = model.parameters()
    if "lr" not in state:
        raise fail("no optimizer.lr array: the optimizer state is incomplete")
    lr = state["lr"]
    if np.shape(lr) != () or getattr(lr, "dtype", np.dtype(object)).kind not in "iuf":
        raise fail(f"optimizer.lr: file has {weights.kind(lr)}, the model needs one number")
    for key in state:
        if key != "lr" and not key.rpartition("/")[0]:
            raise fail(f"unexpected array 'optimizer.{key}' (optimizer state is "
                       "optimizer.lr and optimizer.<parameter>/<entry>)")
    slots = {key.rpartition("/")[0] for key in state if key != "lr"}
    unknown = sorted(slots - set(params))
    if unknown:
        raise fail(f"optimizer state for {unknown[0]!r}, which is not a parameter of the "
                   f"model{did_you_mean(unknown[0], params)}")
    if (epoch > 0 or slots) and slots != set(params):
        absent = sorted(set(params) - slots)
        raise fail(f"no optimizer state for {absent[0]!r}"
                   + (f" (and {len(absent) - 1} more parameters)" if len(absent) > 1 else "")
                   + f" after epoch {epoch}: the optimizer state is incomplete")
    for key, value in state.items():
        name, _, entry = key.rpartition("/")
        if key == "lr" or entry == "step":
            continue
        param = params[name]
        if np.shape(value) != param.shape or getattr(value, "dtype", None) != param.dtype:
            raise fail(f"optimizer.{key}: file has {weights.kind(value)}, the model needs "
                       f"{param.dtype} {param.shape}")
    optimizer = make_optimizer(model.definition.optimizer)
    try:
        optimizer.load_state_dict(state)
    except (TypeError, ValueError) as exc:
        raise fail(f"optimizer state: {exc}") from None
    return optimizer


# --------------------------------------------------------------------------- files


def write(path, model, doc):
    """Write ``model``'s training state and the definition ``doc`` to ``path`` (atomic)."""
    arrays, meta = training_state(model)
    meta.update(format_version=CHECKPOINT_FORMAT_VERSION, fingerprint=fingerprint(doc))
    arrays = dict(arrays)
    arrays[CHECKPOINT_META] = np.array(json.dumps(meta))
    arrays[DEFINITION_ARRAY] = np.array(json.dumps(doc))
    weights.atomic_savez(path, arrays)


def read(path):
    """``(arrays, meta, definition)`` of a checkpoint file, after checking its format
    version and that its definition is valid and has the fingerprint recorded with it;
    any problem is a CheckpointError naming the file."""
    meta, doc, arrays = read_cynet_file(path, CheckpointError, CHECKPOINT_META, "checkpoint",
                                        CHECKPOINT_FORMAT_VERSION,
                                        lambda meta, doc: _capacity(path, doc))
    if "fingerprint" not in meta:
        raise CheckpointError(f"{path}: no fingerprint of the definition in its "
                              "metadata; the file is damaged")
    if meta["fingerprint"] != fingerprint(doc):
        raise CheckpointError(f"{path}: its definition does not match the fingerprint "
                              "recorded with it; the file is damaged")
    return arrays, meta, doc


def _capacity(path, doc):
    """What each array of a checkpoint of ``doc`` may hold: the network's arrays, and
    for each parameter's optimizer entries the parameter's bytes."""
    try:
        definition = parse(doc)
        layers, _ = build_layers(definition, 0, allocate=False)
    except DefinitionError as exc:
        raise CheckpointError(f"{path}: its model definition is invalid: {exc}") from None
    network = Network(layers, definition.wiring)
    sizes = weights.capacity(network, prefix="model.")
    params = {f"optimizer.{k}": v.nbytes for k, v in network.parameters().items()}
    return lambda name: sizes(name) or params.get(name.rpartition("/")[0])


# --------------------------------------------------------------------------- resuming


def _canonical(doc):
    """The parts of a definition that must match for a resumed run to be the same run."""
    doc = json.loads(json.dumps(doc))
    doc.get("training", {}).pop("epochs", None)  # may be raised to train further
    return doc


def fingerprint(doc):
    """A hash of the definition without what a resumed run may change (``epochs``)."""
    text = json.dumps(_canonical(doc), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def differences(old, new, place=""):
    """Human-readable list of what differs between two JSON values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{place}.{key}" if place else str(key)
            if key not in new:
                out.append(f"{where} was {json.dumps(old[key])}, now absent")
            elif key not in old:
                out.append(f"{where} is new ({json.dumps(new[key])})")
            else:
                out.extend(differences(old[key], new[key], where))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out.extend(differences(a, b, f"{place}[{i}]"))
        return out
    if old != new or type(old) is not type(new):  # 1, 1.0 and true fingerprint apart
        return [f"{place or 'definition'} changed from {json.dumps(old)} to {json.dumps(new)}"]
    return []


def check_resumable(checkpoint_doc, meta, doc, error=CheckpointError):
    """Refuse (``error``) a resume whose definition differs from the checkpoint's,
    naming the change."""
    if meta.get("fingerprint") == fingerprint(doc):
        return
    changes = differences(_canonical(checkpoint_doc), _canonical(doc)) or [
        "no difference found, yet the fingerprints differ"]
    raise error(
        "the definition differs from the checkpoint's, so the run cannot be resumed: "
        + "; ".join(changes[:5])
        + (f" (and {len(changes) - 5} more)" if len(changes) > 5 else "")
    )
