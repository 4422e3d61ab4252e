"""Model definitions (JSON): strict validation before anything trains.

Three passes, each reporting the first problem as a ``DefinitionError`` that names the
place (``layers[2].kernel_size``), the value and what was expected:

1. the document's structure, with a JSON schema (unknown keys suggest the closest one);
2. each layer's arguments against its constructor, then the constructor's own checks
   (and the optimizer's and schedule's, whose options are also their constructors');
3. shapes, by building every layer on the output shape of the one before.

A hostile file or dict costs bounded time and memory and is a DefinitionError too: files
are read only when regular and at most 16 MiB (``MAX_FILE_BYTES``), as strict JSON (no
NaN/Infinity, duplicate keys, integers beyond ``MAX_DIGITS`` digits or numbers beyond a
double), nested at most ``MAX_DEPTH`` deep; every number must be finite; sizes are
bounded by 2**31 - 1 (``_args._MAX_INT``); values are shown cut (``_suggest.show``) and
only short words get a did-you-mean hint.

A constructor's error is placed at the argument it carries (``cynet._args.ArgumentError``
and ``ArgumentTypeError``, raised by the shared validators): at ``optimizer.betas[1]`` for
``betas[1]`` when ``betas`` is a key of the config, else at the config itself
(``layers[2]``). A plain ``TypeError``/``ValueError`` (a plugin's own) is placed by the
older rule, kept for plugins: at the key its message begins with, when that is a key of the
config (``"scale must be > 0"``: ``layers[2].scale``), else at the config.
"""
import copy
import functools
import itertools
import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from . import graph, registry
from ._args import _MAX_INT, ArgumentError, ArgumentTypeError
from ._regular import NotARegularFileError, open_regular
from ._suggest import MAX_HINT_LENGTH, MAX_SHOWN, channels_last_hint, did_you_mean, show
from ._typed_config import constructor_options, typed_schema
from .augment import Augmentation
from .graph import Wiring
from .monitor import MONITORS
from .optimizers import OPTIMIZERS, make_optimizer
from .schedules import SCHEDULES, make_schedule

SCHEMA_VERSION = "https://json-schema.org/draft/2020-12/schema"

# the optimizer's and schedule's keys and their JSON types come from their constructors,
# their value bounds from the constructors' checks (_check_optimizer)
_OPTIMIZER = typed_schema(OPTIMIZERS, extra={"schedule": typed_schema(SCHEDULES)})

SCHEMA = {
    "$schema": SCHEMA_VERSION,
    "type": "object",
    "required": ["input_shape", "layers"],
    "additionalProperties": False,
    "properties": {
        "input_shape": {
            "type": "array",
            "items": {"type": "integer", "minimum": 1, "maximum": _MAX_INT},
            "minItems": 1,
            "maxItems": 3,
        },
        "layers": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"type": "string"}},
            },
        },
        "loss": {"enum": ["cross_entropy", "mse"]},
        "optimizer": _OPTIMIZER,
        "training": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "epochs": {"type": "integer", "minimum": 1, "maximum": _MAX_INT},
                "batch_size": {"type": "integer", "minimum": 1, "maximum": _MAX_INT},
                "seed": {"type": "integer", "minimum": 0},
                "validation_split": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                # second wave (absent unless given, so earlier definitions keep their
                # fingerprints); the values are checked by their makers (_check_training)
                "augment": {"type": "object"},
                "warmup_epochs": {"type": "integer", "minimum": 0, "maximum": _MAX_INT},
                "label_smoothing": {"type": "number", "minimum": 0, "maximum": 1},
                "early_stopping": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "monitor": {"enum": list(MONITORS)},
                        "patience": {"type": "integer", "minimum": 1, "maximum": _MAX_INT},
                        "min_delta": {"type": "number", "minimum": 0},
                    },
                },
            },
        },
        "data": {"type": "string", "minLength": 1, "maxLength": 4096},  # a path, at most PATH_MAX
    },
}

MAX_SCHEMA_ERRORS = 1000

DEFAULT_OPTIMIZER = {"type": "sgd", "lr": 0.01}
DEFAULT_TRAINING = {"epochs": 1, "batch_size": 64, "seed": None, "validation_split": 0.0}
DEFAULT_DATA = "fashion-mnist-mini"


class DefinitionError(ValueError):
    """A model definition that cannot be used; ``place`` is where (``layers[2].kernel_size``)."""

    def __init__(self, place, message):
        self.place, self.message = place, message
        super().__init__(f"{place}: {message}" if place else message)


@dataclass
class Definition:
    """A validated model definition with defaults filled in."""

    input_shape: tuple
    layers: list
    loss: str = "cross_entropy"
    optimizer: dict = field(default_factory=lambda: dict(DEFAULT_OPTIMIZER))
    training: dict = field(default_factory=lambda: dict(DEFAULT_TRAINING))
    data: str = DEFAULT_DATA
    wiring: Wiring = None  # each layer's name and inputs (cynet.graph); a chain if None

    def __post_init__(self):
        if self.wiring is None:
            self.wiring = Wiring.chain(len(self.layers))

    def to_dict(self):
        return {
            "input_shape": list(self.input_shape),
            "layers": copy.deepcopy(self.layers),
            "loss": self.loss,
            "optimizer": copy.deepcopy(self.optimizer),
            "training": dict(self.training),
            "data": self.data,
        }


# --------------------------------------------------------------------------- helpers


def _key(part):
    """A key as shown in a place: cut, like every shown value (``show``)."""
    part = str(part)
    return part if len(part) <= MAX_SHOWN else show(part)


def _place(path):
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{_key(part)}" if out else _key(part))
    return out


def _show(value):
    """A value as JSON would write it (``1e+30``, ``true``), cut by ``show``'s rule."""
    if isinstance(value, str):
        return show(value)
    try:
        text = json.dumps(value, default=lambda v: f"{v!r} ({type(v).__name__})")
    except (ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 1] + "…"


def _too_deep():
    return f"arrays and objects nested more than {MAX_DEPTH} deep; not a model definition"


def _depth_exceeds(doc, limit):
    """Whether arrays and objects nest more than ``limit`` deep (iteratively)."""
    stack = [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list, tuple)):
            if depth >= limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            stack.extend((v, depth + 1) for v in children if isinstance(v, (dict, list, tuple)))
    return False


def _check_values(doc):
    """Refuse nesting deeper than MAX_DEPTH (before anything recursive sees the document)
    and numbers that are not finite (NaN, +-Infinity: JSON has none, a dict may), at
    their place. Iterative, linear in the document's size."""
    stack = [(doc, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            items = value.items()
        elif isinstance(value, (list, tuple)):
            items = enumerate(value)
        elif isinstance(value, np.ndarray):
            if value.dtype.kind in "fc" and not np.isfinite(value).all():
                raise DefinitionError(_place(path) or "definition",
                                      "numbers must be finite, got an array holding NaN or inf")
            if len(path) + value.ndim > MAX_DEPTH:
                raise DefinitionError("definition", _too_deep())
            continue
        else:
            if isinstance(value, (float, np.floating)) and not math.isfinite(value):
                raise DefinitionError(_place(path) or "definition",
                                      f"must be a finite number, got {_show(float(value))}")
            continue
        if len(path) >= MAX_DEPTH:
            raise DefinitionError("definition", _too_deep())
        for k, v in items:
            if isinstance(v, (dict, list, tuple, np.ndarray, float, np.floating)):
                stack.append((v, path + (k,)))


def _schema_error(err):
    """A DefinitionError from a jsonschema ValidationError, worded for people."""
    path = list(err.absolute_path)
    kind, value = err.validator, err.instance
    if kind == "additionalProperties":
        allowed = [k for k in err.schema.get("properties", {})]
        extra = sorted(k for k in value if k not in allowed)
        key = extra[0]
        return DefinitionError(
            _place(path + [key]),
            f"unknown key {show(key)}{did_you_mean(key, allowed)} (allowed: {', '.join(allowed)})",
        )
    place = _place(path) or "definition"
    if kind == "required":
        return DefinitionError(place, err.message.replace("is a required property", "is required"))
    if kind in ("enum", "const"):
        options = err.validator_value if kind == "enum" else [err.validator_value]
        return DefinitionError(
            place,
            f"got {_show(value)}, expected one of {', '.join(map(repr, options))}"
            f"{did_you_mean(value, options)}",
        )
    if kind == "type":
        return DefinitionError(place, f"expected {err.validator_value}, got {_show(value)}")
    bounds = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    if kind in bounds:
        return DefinitionError(place, f"must be {bounds[kind]} {err.validator_value}, got {_show(value)}")
    if kind in ("minItems", "maxItems"):
        word = "at least" if kind == "minItems" else "at most"
        return DefinitionError(
            place, f"has {len(value)} item(s), expected {word} {err.validator_value}")
    if kind == "minLength":
        return DefinitionError(place, f"must not be empty, got {_show(value)}")
    if kind == "maxLength":
        return DefinitionError(
            place, f"may be at most {err.validator_value} characters, got {_show(value)}")
    # any other check: its own words, without the value (jsonschema's message holds it whole)
    return DefinitionError(place, f"got {_show(value)}, which fails the schema's {kind!r} check")


def _strict_validator():
    """Draft 2020-12, except that 3.0 is not an integer (JSON Schema says it is)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    )
    return jsonschema.validators.extend(base, type_checker=checker)(SCHEMA)


def _check_schema(doc):
    validator = _strict_validator()
    # the first errors only: each holds its context, and a million bad layers would hold
    # gigabytes (the one reported is among the first anyway: one per place, in order)
    errors = list(itertools.islice(validator.iter_errors(doc), MAX_SCHEMA_ERRORS))
    if errors:
        # the deepest error is the most specific; ties go to document order
        def key(e):
            return (-len(e.absolute_path), [str(p) for p in e.absolute_path])

        raise _schema_error(min(errors, key=key))


@functools.lru_cache(maxsize=256)
def _constructor_args(cls):
    """(accepted keyword names, required names) of a layer class's constructor chain
    (cached: reading signatures took most of the time of a definition of many layers)."""
    options = constructor_options(cls)
    return [o.name for o in options], [o.name for o in options if o.required]


def _error_place(place, exc, config):
    """Where a constructor's error about ``config`` (found at ``place``) belongs: at the
    argument the error carries, or a plain error's first word, when that is a given key."""
    if isinstance(exc, (ArgumentError, ArgumentTypeError)):
        argument = exc.argument
        key = argument.split("[", 1)[0] if isinstance(argument, str) else None
    else:  # backwards compatible: a plugin's message that begins with the key
        argument = key = str(exc).split(" ", 1)[0]
    return f"{place}.{argument}" if isinstance(config, dict) and key in config else place


# the keys of a layer spec that are the definition's, not the layer's (the rest are its
# constructor's arguments)
LAYER_KEYS = ("type", "name", "inputs")


def _make_layer(i, spec):
    """Instantiate layer ``i`` of the definition, with errors naming the place."""
    type_name = spec["type"]
    config = {k: v for k, v in spec.items() if k not in LAYER_KEYS}
    if len(type_name) > MAX_HINT_LENGTH:  # no layer type is; the registry would show it whole
        raise DefinitionError(f"layers[{i}].type", f"unknown layer type {show(type_name)}")
    try:
        cls = registry.get(type_name)
    except KeyError as exc:
        raise DefinitionError(f"layers[{i}].type", str(exc)) from None
    accepted, required = _constructor_args(cls)
    for key in config:
        if key not in accepted:
            valid = ", ".join(accepted) if accepted else "none"
            raise DefinitionError(
                f"layers[{i}].{_key(key)}",
                f"unknown argument for {type_name}{did_you_mean(key, accepted)} (valid: {valid})",
            )
    for key in required:
        if key not in config:
            raise DefinitionError(f"layers[{i}]", f"{type_name} needs {key!r}")
    try:
        return cls(**config)
    except (TypeError, ValueError) as exc:
        place = _error_place(f"layers[{i}]", exc, config)
        raise DefinitionError(place, f"{type_name}: {exc}") from None
    except BaseException as exc:  # a plugin's constructor failing in its own way (even
        # with SystemExit or KeyboardInterrupt: validating must survive it)
        raise DefinitionError(f"layers[{i}]", f"{type_name} failed: {type(exc).__name__}: {exc}") from None


def _check_arity(i, spec, layer, refs):
    """A merge layer reads two outputs or more; any other layer one."""
    type_name = spec["type"]
    if layer.merges and len(refs) < 2:
        raise DefinitionError(f"layers[{i}].inputs" if "inputs" in spec else f"layers[{i}]",
                              f"{type_name} merges two inputs or more; give them as "
                              f"\"inputs\": [name, name, ...]")
    if not layer.merges and len(refs) > 1:
        raise DefinitionError(f"layers[{i}].inputs", f"{type_name} takes one input, got "
                                                     f"{len(refs)}; merge them first (Add, "
                                                     f"Concat)")


def _output_shape(i, layer, shape):
    type_name = type(layer).__name__
    try:
        out = layer.build(shape)
    except (TypeError, ValueError) as exc:
        raise DefinitionError(
            f"layers[{i}]", f"{type_name} cannot take "
                            f"{'inputs of shapes' if isinstance(shape, list) else 'input of shape'} "
                            f"{shape}: {exc}"
        ) from None
    except BaseException as exc:  # a plugin's build failing in its own way (SystemExit too)
        raise DefinitionError(
            f"layers[{i}]", f"{type_name}.build{shape} failed: {type(exc).__name__}: {exc}"
        ) from None
    try:
        out = tuple(int(d) for d in out)
    except (TypeError, ValueError):
        out = None
    if not out or min(out) < 1:
        raise DefinitionError(
            f"layers[{i}]", f"{type_name}.build returned an invalid shape {show(out)}")
    _check_size(f"layers[{i}]", f"{type_name}'s output", out)
    both = sorted(set(layer.params) & set(layer.buffers))
    if both:  # weights files name them alike: {layer name}.{key}
        raise DefinitionError(f"layers[{i}]", f"{type_name} has a parameter and a buffer both "
                                              f"called {both[0]!r}; their names must differ")
    return out


def _check_size(place, what, shape):
    """A sample of more than 2**31 - 1 values overflows the kernels' index arithmetic (and
    no memory holds a batch of them): refused before the next layer is built on it."""
    size = math.prod(shape)
    if size > _MAX_INT:
        count = f"{size:,}" if size < 10**15 else f"{size:.3g}"
        raise DefinitionError(place, f"{what} of shape {show(shape)} has {count} values per "
                                     f"sample; at most {_MAX_INT} are supported")


def _check_optimizer(config):
    """The constructors' own checks of the values (bounds, nesterov without momentum...)."""
    for place, make, value in (("optimizer", make_optimizer, config),
                               ("optimizer.schedule", make_schedule, config.get("schedule"))):
        try:
            make(value)
        except (TypeError, ValueError) as exc:
            raise DefinitionError(_error_place(place, exc, value), str(exc)) from None


def _check_training(training, loss):
    """The second-wave training options: augmentation values (their maker's checks), label
    smoothing only for cross-entropy, and early stopping only on a validation split (on
    the test split it would select on the test set)."""
    if "augment" in training:
        try:
            Augmentation.from_config(training["augment"])
        except (TypeError, ValueError) as exc:
            argument = getattr(exc, "argument", None)
            raise DefinitionError("training.augment" + (f".{argument}" if argument else ""),
                                  str(exc)) from None
    if training.get("label_smoothing") and loss != "cross_entropy":
        raise DefinitionError("training.label_smoothing",
                              f"label smoothing applies to the cross_entropy loss, not {loss!r}")
    if "early_stopping" in training and not training.get("validation_split"):
        raise DefinitionError(
            "training.early_stopping",
            "early stopping needs a validation_split: without one the held-out metrics are "
            "the test split's, and stopping on them would select on the test set")


def _check_rates(optimizer, epochs):
    """The schedule's learning rate must stay > 0 and finite over the definition's epochs
    (``gamma: 1e-200`` underflows to 0 after a few steps). Every schedule is monotonic,
    so the first and the last epoch bound it."""
    config = optimizer.get("schedule")
    if config is None:
        return
    base_lr, schedule = make_optimizer(optimizer).lr, make_schedule(config)
    for epoch in (0, epochs - 1):
        rate = schedule._factor(epoch, epochs) * base_lr
        if not 0 < rate < math.inf:
            place = "optimizer.schedule" + (".gamma" if "gamma" in config else "")
            raise DefinitionError(
                place, f"the learning rate would be {rate!r} in epoch {epoch + 1} of {epochs} "
                       f"(lr {base_lr!r}); it must stay > 0 and finite")


# --------------------------------------------------------------------------- public


def _plain(value):
    """NumPy scalars and arrays and tuples as the JSON types they stand for."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def parse(doc):
    """Check a definition's structure and fill its defaults (no layer is built)."""
    _check_values(doc)
    doc = _plain(doc)
    if not isinstance(doc, dict):
        raise DefinitionError("definition", f"expected a JSON object, got {type(doc).__name__}")
    _check_schema(doc)
    training = dict(DEFAULT_TRAINING)
    training.update(doc.get("training", {}))
    _check_optimizer(doc.get("optimizer", DEFAULT_OPTIMIZER))
    _check_rates(doc.get("optimizer", DEFAULT_OPTIMIZER),
                 max(training["epochs"] - training.get("warmup_epochs", 0), 1))
    _check_training(training, doc.get("loss", "cross_entropy"))
    layers = copy.deepcopy(doc["layers"])
    return Definition(
        input_shape=tuple(int(d) for d in doc["input_shape"]),
        layers=layers,
        loss=doc.get("loss", "cross_entropy"),
        optimizer=copy.deepcopy(doc.get("optimizer", DEFAULT_OPTIMIZER)),
        training=training,
        data=doc.get("data", DEFAULT_DATA),
        wiring=graph.resolve(layers, DefinitionError),
    )


def build_layers(definition, rng=None, allocate=True):
    """Instantiate and build every layer; returns ``(layers, output_shape)``.

    ``rng`` (a ``numpy.random.SeedSequence`` or int) seeds each layer's own generator.
    ``allocate=False`` builds for shapes and sizes only: built-in layers then hold
    zero-cost stand-ins for their arrays (a plugin's build may still allocate).
    """
    seeds = rng if isinstance(rng, np.random.SeedSequence) else np.random.SeedSequence(rng)
    wiring = definition.wiring
    layers, shapes = [], {graph.INPUT: tuple(definition.input_shape)}
    _check_size("input_shape", "the input", shapes[graph.INPUT])
    for i, (spec, child) in enumerate(zip(definition.layers, seeds.spawn(len(definition.layers)))):
        layer = _make_layer(i, spec)
        refs = wiring.inputs[i]
        _check_arity(i, spec, layer, refs)
        layer.rng = np.random.default_rng(child)
        layer.input_grad = any(j != graph.INPUT for j in refs)
        layer.allocate = allocate
        given = [shapes[j] for j in refs]
        in_shape = given if layer.merges else given[0]
        try:
            shapes[i] = _output_shape(i, layer, in_shape)
        except DefinitionError as exc:
            hint = channels_last_hint(definition.input_shape)
            if hint:
                raise DefinitionError(exc.place, exc.message + hint) from None
            raise
        if layer.output_shape is None:  # a plugin's build need not record its shapes
            layer.input_shape, layer.output_shape = in_shape, shapes[i]
        layers.append(layer)
    shape = shapes[len(layers) - 1]
    if definition.loss == "cross_entropy" and (len(shape) != 1 or shape[0] < 2):
        raise _not_class_scores(layers, definition.layers, shape)
    return layers, shape


def _not_class_scores(layers, specs, shape):
    """The error for a network whose output is not a vector of class scores. A Dense
    given several axes acts on the last one only: when one is the reason, it is named."""
    for i, (layer, spec) in enumerate(zip(layers, specs)):
        if spec.get("type") == "Dense" and len(layer.input_shape or ()) > 1:
            return DefinitionError(
                f"layers[{i}]",
                f"Dense gets input of shape {tuple(layer.input_shape)} and acts on its last "
                f"axis only, giving {tuple(layer.output_shape)}, so the network ends with "
                f"{shape}, not the class scores of shape (n_classes,) that cross_entropy "
                f"needs; put a Flatten before this Dense")
    return DefinitionError(
        f"layers[{len(layers) - 1}]",
        f"cross_entropy needs class scores of shape (n_classes,) with at least 2 classes "
        f"from the last layer, got {shape}; end with Flatten and Dense(out_features=n_classes)")


def validate(doc):
    """Validate a definition completely (structure, arguments, shapes); return it parsed."""
    definition = parse(doc)
    build_layers(definition, 0, allocate=False)
    return definition


# A definition is a few kilobytes; these bound what reading a hostile file can cost.
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64  # nesting of arrays and objects (the documented format needs 4)


class _Refused(ValueError):
    """Raised while parsing: what strict JSON or a definition does not allow."""


def _refuse_constant(name):
    """JSON has no NaN or Infinity; Python's json module would accept them."""
    raise _Refused(f"{name} is not valid JSON (numbers must be finite)")


MAX_DIGITS = 40  # of an integer: no definition needs more (Python refuses 4300 or more)


def _parse_int(text):
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _Refused(f"the integer {show(text)} has {len(text.lstrip('-')):,} digits; "
                       f"at most {MAX_DIGITS} are allowed")
    return int(text)


def _parse_float(text):
    value = float(text)
    if math.isinf(value):  # 1e400: finite in JSON, not in a double
        raise _Refused(f"the number {show(text)} is too large (numbers must be finite)")
    return value


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"duplicate key {show(key)} in an object")
        out[key] = value
    return out


def _read_limited(path):
    """The file's bytes, at most MAX_FILE_BYTES: only a regular file is read (a FIFO or a
    device such as /dev/zero could block or never end), and never more than the limit + 1."""
    try:
        f = open_regular(path)
    except NotARegularFileError as exc:
        raise DefinitionError(str(path), f"cannot read the file: it is {exc.kind}, not a "
                                         f"regular file") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        # in pieces: one read(MAX_FILE_BYTES + 1) would allocate 16 MiB for any file
        pieces, total = [], 0
        while size <= MAX_FILE_BYTES and total <= MAX_FILE_BYTES:
            piece = f.read(min(1 << 16, MAX_FILE_BYTES + 1 - total))
            if not piece:
                break
            pieces.append(piece)
            total += len(piece)
        data = b"".join(pieces)
        size = max(size, total)
    if size > MAX_FILE_BYTES:
        raise DefinitionError(
            str(path), f"the file is {size:,} bytes; a model definition may be at most "
                       f"{MAX_FILE_BYTES:,} bytes (16 MiB)")
    return data


def load_json(path):
    """Read a definition file; a missing, oversized or malformed file is a DefinitionError.

    Strict JSON: NaN, Infinity and duplicate keys are refused, and so is nesting deeper
    than MAX_DEPTH."""
    try:
        data = _read_limited(path)
    except OSError as exc:
        raise DefinitionError(str(path), f"cannot read the file: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionError(str(path), f"not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    try:
        doc = json.loads(text, parse_constant=_refuse_constant, parse_int=_parse_int,
                         parse_float=_parse_float, object_pairs_hook=_no_duplicates)
    except _Refused as exc:
        raise DefinitionError(str(path), str(exc)) from None
    except json.JSONDecodeError as exc:
        raise DefinitionError(
            str(path), f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except RecursionError:
        raise DefinitionError(str(path), _too_deep()) from None
    if _depth_exceeds(doc, MAX_DEPTH):
        raise DefinitionError(str(path), _too_deep())
    return doc
