"""Model definitions (JSON): strict validation before anything trains.

Three passes, each reporting the first problem as a ``DefinitionError`` that names the
place (``layers[2].kernel_size``), the value and what was expected:

1. the document's structure, with a JSON schema (unknown keys suggest the closest one);
2. each layer's arguments against its constructor, then the constructor's own checks
   (and the optimizer's and schedule's, whose options are also their constructors');
3. shapes, by building every layer on the output shape of the one before.

A constructor's error is placed at the argument it carries (``cynet._args.ArgumentError``
and ``ArgumentTypeError``, raised by the shared validators): at ``optimizer.betas[1]`` for
``betas[1]`` when ``betas`` is a key of the config, else at the config itself
(``layers[2]``). A plain ``TypeError``/``ValueError`` (a plugin's own) is placed by the
older rule, kept for plugins: at the key its message begins with, when that is a key of the
config (``"scale must be > 0"``: ``layers[2].scale``), else at the config.
"""
import copy
import json
from dataclasses import dataclass, field

import numpy as np

from . import registry
from ._args import ArgumentError, ArgumentTypeError
from ._suggest import did_you_mean
from ._typed_config import constructor_options, typed_schema
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
            "items": {"type": "integer", "minimum": 1},
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
                "epochs": {"type": "integer", "minimum": 1},
                "batch_size": {"type": "integer", "minimum": 1},
                "seed": {"type": "integer", "minimum": 0},
                "validation_split": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
            },
        },
        "data": {"type": "string", "minLength": 1},
    },
}

DEFAULT_OPTIMIZER = {"type": "sgd", "lr": 0.01}
DEFAULT_TRAINING = {"epochs": 1, "batch_size": 64, "seed": None, "validation_split": 0.0}
DEFAULT_DATA = "fashion-mnist-mini"


class DefinitionError(ValueError):
    """A model definition that cannot be used; ``place`` is where (``layers[2].kernel_size``)."""

    def __init__(self, place, message):
        self.place = place
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


def _place(path):
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _show(value):
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value, default=lambda v: f"{v!r} ({type(v).__name__})")


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
            f"unknown key {key!r}{did_you_mean(key, allowed)} (allowed: {', '.join(allowed)})",
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
        return DefinitionError(place, f"has {len(value)} item(s): {err.message}")
    return DefinitionError(place, err.message)


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
    errors = list(validator.iter_errors(doc))
    if errors:
        # the deepest error is the most specific; ties go to document order
        def key(e):
            return (-len(e.absolute_path), [str(p) for p in e.absolute_path])

        raise _schema_error(min(errors, key=key))


def _constructor_args(cls):
    """(accepted keyword names, required names) of a layer class's constructor chain."""
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


def _make_layer(i, spec):
    """Instantiate layer ``i`` of the definition, with errors naming the place."""
    type_name = spec["type"]
    config = {k: v for k, v in spec.items() if k != "type"}
    try:
        cls = registry.get(type_name)
    except KeyError as exc:
        raise DefinitionError(f"layers[{i}].type", str(exc)) from None
    accepted, required = _constructor_args(cls)
    for key in config:
        if key not in accepted:
            valid = ", ".join(accepted) if accepted else "none"
            raise DefinitionError(
                f"layers[{i}].{key}",
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
    except Exception as exc:  # a plugin's constructor failing in its own way
        raise DefinitionError(f"layers[{i}]", f"{type_name} failed: {type(exc).__name__}: {exc}") from None


def _output_shape(i, layer, shape):
    type_name = type(layer).__name__
    try:
        out = layer.build(shape)
    except (TypeError, ValueError) as exc:
        raise DefinitionError(
            f"layers[{i}]", f"{type_name} cannot take input of shape {shape}: {exc}"
        ) from None
    except Exception as exc:  # a plugin's build failing in its own way
        raise DefinitionError(
            f"layers[{i}]", f"{type_name}.build{shape} failed: {type(exc).__name__}: {exc}"
        ) from None
    try:
        out = tuple(int(d) for d in out)
    except (TypeError, ValueError):
        out = None
    if not out or min(out) < 1:
        raise DefinitionError(f"layers[{i}]", f"{type_name}.build returned an invalid shape {out!r}")
    return out


def _check_optimizer(config):
    """The constructors' own checks of the values (bounds, nesterov without momentum...)."""
    for place, make, value in (("optimizer", make_optimizer, config),
                               ("optimizer.schedule", make_schedule, config.get("schedule"))):
        try:
            make(value)
        except (TypeError, ValueError) as exc:
            raise DefinitionError(_error_place(place, exc, value), str(exc)) from None


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
    doc = _plain(doc)
    if not isinstance(doc, dict):
        raise DefinitionError("definition", f"expected a JSON object, got {type(doc).__name__}")
    _check_schema(doc)
    training = dict(DEFAULT_TRAINING)
    training.update(doc.get("training", {}))
    _check_optimizer(doc.get("optimizer", DEFAULT_OPTIMIZER))
    return Definition(
        input_shape=tuple(int(d) for d in doc["input_shape"]),
        layers=copy.deepcopy(doc["layers"]),
        loss=doc.get("loss", "cross_entropy"),
        optimizer=copy.deepcopy(doc.get("optimizer", DEFAULT_OPTIMIZER)),
        training=training,
        data=doc.get("data", DEFAULT_DATA),
    )


def build_layers(definition, rng=None):
    """Instantiate and build every layer; returns ``(layers, output_shape)``.

    ``rng`` (a ``numpy.random.SeedSequence`` or int) seeds each layer's own generator.
    """
    seeds = rng if isinstance(rng, np.random.SeedSequence) else np.random.SeedSequence(rng)
    layers, shape = [], tuple(definition.input_shape)
    for i, (spec, child) in enumerate(zip(definition.layers, seeds.spawn(len(definition.layers)))):
        layer = _make_layer(i, spec)
        layer.rng = np.random.default_rng(child)
        layer.input_grad = i > 0
        in_shape, shape = shape, _output_shape(i, layer, shape)
        if layer.output_shape is None:  # a plugin's build need not record its shapes
            layer.input_shape, layer.output_shape = in_shape, shape
        layers.append(layer)
    if definition.loss == "cross_entropy" and (len(shape) != 1 or shape[0] < 2):
        raise DefinitionError(
            f"layers[{len(layers) - 1}]",
            f"cross_entropy needs class scores of shape (n_classes,) with at least 2 classes "
            f"from the last layer, got {shape}; end with Flatten and Dense(out_features=n_classes)",
        )
    return layers, shape


def validate(doc):
    """Validate a definition completely (structure, arguments, shapes); return it parsed."""
    definition = parse(doc)
    build_layers(definition, 0)
    return definition


def load_json(path):
    """Read a definition file; a missing or malformed file is a DefinitionError."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as exc:
        raise DefinitionError(str(path), f"cannot read the file: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise DefinitionError(
            str(path), f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    except UnicodeDecodeError as exc:
        raise DefinitionError(str(path), f"not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise DefinitionError(str(path), "JSON nested too deeply to be a model definition") from None
