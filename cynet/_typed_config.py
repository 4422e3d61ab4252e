"""Options read from constructors, and configs of the form ``{"type": name, **options}``
(optimizers, schedules).

A class's constructor is the one source of its options: their names, which are required
(no default) and, for a JSON Schema, their JSON type, read from the annotation or else from
the default (``0.0`` is a number, ``0`` an integer, ``False`` a boolean, ``(0.9, 0.999)`` an
array of numbers). Value bounds are left to the constructor's own checks: their errors
carry the argument (``cynet._args.ArgumentError``), so a definition still reports them at
their place.
"""
import inspect
import math
import numbers
import types
import typing
from dataclasses import dataclass

from ._args import ArgumentError, ArgumentTypeError
from ._suggest import did_you_mean, show

_NO_DEFAULT = inspect.Parameter.empty


@dataclass(frozen=True)
class Option:
    """One keyword argument of a constructor."""

    name: str
    required: bool
    default: object = _NO_DEFAULT
    annotation: object = _NO_DEFAULT


def constructor_options(cls):
    """The ``Option``\\ s of ``cls``'s constructor chain, in signature order.

    The chain goes up the MRO as long as ``**kwargs`` is passed on; only ``cls``'s own
    ``__init__`` makes an option required (a subclass may supply its parent's)."""
    options, seen = [], set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        for p in params:
            if p.name == "self" or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                continue
            if p.name not in seen:
                seen.add(p.name)
                options.append(Option(p.name, p.default is _NO_DEFAULT and klass is cls,
                                      p.default, p.annotation))
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break  # the chain stops where **kwargs is no longer passed on
    return options


# ------------------------------------------------------------------------ JSON Schema

_JSON_TYPES = ((bool, "boolean"), (numbers.Integral, "integer"), (numbers.Real, "number"),
               (str, "string"), ((list, tuple), "array"), (dict, "object"), (type(None), "null"))


def _json_type(python_type):
    for py, name in _JSON_TYPES:
        if isinstance(python_type, type) and issubclass(python_type, py):
            return name
    return None


def _from_annotation(annotation):
    """The schema of an annotation: a class (``float``), a generic (``tuple[float, float]``,
    an array) or a union of these (``int | None``); None when JSON cannot check it."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        names = [_json_type(typing.get_origin(a) or a) for a in typing.get_args(annotation)]
        return None if None in names else {"type": names}
    name = _json_type(typing.get_origin(annotation) or annotation)
    return None if name is None else {"type": name}


def _from_value(value):
    """The schema of a default's type (with the items' type for a list or tuple of one
    JSON type, or of ints and floats), or None for a value of no JSON type."""
    name = _json_type(type(value))
    if name is None:
        return None
    schema = {"type": name}
    if name == "array" and value:
        items = {_json_type(type(v)) for v in value}
        items = {"number"} if items == {"integer", "number"} else items
        if len(items) == 1 and None not in items:
            schema["items"] = {"type": items.pop()}
    return schema


def _json_default(value):
    """``value`` as JSON, or _NO_DEFAULT when it has no JSON form."""
    if isinstance(value, (list, tuple)):
        items = [_json_default(v) for v in value]
        return _NO_DEFAULT if _NO_DEFAULT in items else items
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return _NO_DEFAULT


def option_schema(option):
    """The JSON Schema fragment of an option: its type (from the annotation, else from the
    default; none when neither tells, or for a default of None without an annotation) and
    its default."""
    schema = None
    if option.annotation is not _NO_DEFAULT:
        schema = _from_annotation(option.annotation)
    if schema is None and option.default is not _NO_DEFAULT and option.default is not None:
        schema = _from_value(option.default)
    schema = dict(schema or {})
    if option.default is not _NO_DEFAULT and _json_default(option.default) is not _NO_DEFAULT:
        schema["default"] = _json_default(option.default)
    return schema


def typed_schema(classes, extra=None):
    """The JSON Schema of a ``{"type": name, **options}`` config: ``name`` a key of
    ``classes``, the options those of its constructor (strict: no other keys, the required
    ones present), and ``extra`` properties any type may also have."""
    branches = []
    for name, cls in classes.items():
        options = constructor_options(cls)
        then = {"additionalProperties": False,
                "properties": {"type": {}, **(extra or {}),
                               **{o.name: option_schema(o) for o in options}}}
        required = [o.name for o in options if o.required]
        if required:
            then["required"] = required
        branches.append({"if": {"required": ["type"], "properties": {"type": {"const": name}}},
                         "then": then})
    return {"type": "object", "required": ["type"],
            "properties": {"type": {"enum": list(classes)}}, "allOf": branches}


# ------------------------------------------------------------------------ configs


def build_typed(config, what, classes, option_word="option", ignore=()):
    """Instantiate ``classes[config["type"]]`` with the config's other keys.

    The keys each type accepts and needs are its constructor's (``constructor_options``);
    keys in ``ignore`` are skipped. Errors name the type or key, with did-you-mean hints,
    and carry it as their ``argument``.
    """
    if not isinstance(config, dict):
        raise TypeError(f"{what} config must be a dict, got {type(config).__name__}")
    if "type" not in config:
        raise ArgumentError(
            f"{what} config needs a 'type' ({', '.join(classes)}), got {show(config)}")
    kind = config["type"]
    if not isinstance(kind, str):
        raise ArgumentTypeError(f"{what} type must be a string, got {show(kind)}", "type")
    if kind not in classes:
        raise ArgumentError(
            f"unknown {what} type {show(kind)}{did_you_mean(kind, classes)} "
            f"(choose from {', '.join(classes)})", "type")
    options = constructor_options(classes[kind])
    names = [o.name for o in options]
    kwargs = {k: v for k, v in config.items() if k != "type" and k not in ignore}
    for key in kwargs:
        if key not in names:
            raise ArgumentError(
                f"unknown {kind} {option_word} {show(key)}{did_you_mean(str(key), names)} "
                f"(valid: {', '.join(names) or 'none'})", key)
    for option in options:
        if option.required and option.name not in kwargs:
            raise ArgumentError(f"{kind} {what} config needs {option.name!r} (it has no default)")
    return classes[kind](**kwargs)
