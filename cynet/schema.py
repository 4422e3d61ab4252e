"""The JSON Schema of model definitions, for editors (``cynet schema``).

    schema = definition_schema()   # a dict (JSON Schema draft 2020-12)

It is the schema every definition is first checked against (``cynet.definition.SCHEMA``),
with each layer's options, from its constructor (``cynet._typed_config``), in place of
the bare ``{"type": ...}`` items, layer types from every installed package (a plugin that
cannot be loaded is left out), and the augmentation options spelled out. A definition
that cynet accepts passes it; values that only a build can check (shapes that fit, a
padding no larger than half a pool's kernel) are left to ``cynet validate``.
"""
import copy

from . import registry
from .augment import ERASING_DEFAULTS
from .definition import SCHEMA
from .graph import MODEL_INPUT
from ._typed_config import typed_schema

__all__ = ["definition_schema"]

_NAME = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}
_INPUTS = {"anyOf": [_NAME, {"type": "array", "items": _NAME, "minItems": 1}],
           "description": f"earlier layers' names, or {MODEL_INPUT!r} for the model's input"}
_PAIR = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
_AUGMENT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "random_crop": {"type": "object", "additionalProperties": False,
                        "required": ["padding"],
                        "properties": {"padding": {"type": "integer", "minimum": 1}}},
        "horizontal_flip": {"type": "boolean"},
        "random_erasing": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "p": {"type": "number", "minimum": 0, "maximum": 1,
                      "default": ERASING_DEFAULTS["p"]},
                "scale": {**_PAIR, "default": list(ERASING_DEFAULTS["scale"])},
                "ratio": {**_PAIR, "default": list(ERASING_DEFAULTS["ratio"])},
                "value": {"anyOf": [{"const": "random"}, {"type": "number"}],
                          "default": "random"},
            },
        },
    },
}


def definition_schema():
    """The schema (see the module docstring), as a new dict."""
    classes = {}
    for info in registry.available():
        try:
            classes[info.type] = registry.get(info.type)
        except KeyError:  # a plugin that fails to load: reported by `cynet layers`
            continue
    schema = copy.deepcopy(SCHEMA)
    schema["title"] = "cynet model definition"
    schema["properties"]["layers"]["items"] = typed_schema(
        classes, extra={"name": _NAME, "inputs": _INPUTS})
    schema["properties"]["training"]["properties"]["augment"] = _AUGMENT
    return schema
