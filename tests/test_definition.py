"""Tests of model definitions: strict validation before anything trains.

A table of bad definitions, each a small edit of the documented example, must raise a
DefinitionError from ``Model.from_dict`` (no ``fit`` involved) whose ``place`` is where the
problem is and whose message names the place and contains a telling fragment (the bad
value, the expectation, or the suggested spelling). Valid definitions (the example, a
model with every layer type, every optimizer and schedule) build. Files: a missing or
malformed JSON file is a DefinitionError naming the file.
"""
import json
import re

import jsonschema
import numpy as np
import pytest

import cynet
from cynet import DefinitionError, Model
from cynet._args import ArgumentError, ArgumentTypeError, as_real
from cynet.definition import SCHEMA, load_json, parse
from cynet.layers import Layer
from cynet.optimizers import make_optimizer
from cynet.schedules import make_schedule

from model_fixtures import every_layer_model, example, lenet, registered

DELETE = object()


def edit(doc, changes):
    """Apply ``{path: value}`` edits (a path is a tuple of keys and indices; DELETE
    removes the entry) to ``doc`` in place and return it."""
    for path, value in changes.items():
        target = doc
        for key in path[:-1]:
            target = target[key]
        if value is DELETE:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return doc


def bad(changes, place, *fragments):
    return (changes, place, fragments)


CONV = ("layers", 0)
MLP = {"input_shape": [6], "layers": [{"type": "Dense", "out_features": 4}]}

BAD = {
    # ---- top level
    "misspelt_optimizer_key": bad({("optimiser",): {"type": "sgd", "lr": 0.1}},
                                  "optimiser", "'optimizer'"),
    "unknown_top_level_key": bad({("epochs",): 3}, "epochs", "epochs"),
    "missing_input_shape": bad({("input_shape",): DELETE}, ("definition", "input_shape"),
                               "input_shape"),
    "missing_layers": bad({("layers",): DELETE}, ("definition", "layers"), "layers"),
    "empty_layers": bad({("layers",): []}, "layers"),
    "layers_not_a_list": bad({("layers",): {"type": "ReLU"}}, "layers", "array"),
    "input_shape_zero": bad({("input_shape", 1): 0}, "input_shape[1]", "0"),
    "input_shape_text": bad({("input_shape",): "1x28x28"}, "input_shape", "1x28x28"),
    "input_shape_float": bad({("input_shape", 2): 28.5}, "input_shape[2]", "28.5"),
    "input_shape_4d": bad({("input_shape",): [1, 1, 28, 28]}, "input_shape"),
    "loss_typo": bad({("loss",): "cross-entropy"}, "loss", "'cross_entropy'"),
    "loss_unknown": bad({("loss",): "hinge"}, "loss", "hinge", "mse"),
    "data_empty": bad({("data",): ""}, "data"),
    "data_not_text": bad({("data",): 7}, "data", "7"),
    # ---- layers: type and arguments
    "type_case": bad({CONV + ("type",): "Conv2d"}, "layers[0].type", "'Conv2D'"),
    "type_unknown": bad({("layers", 1, "type"): "Transformer"}, "layers[1].type", "Transformer"),
    "type_not_text": bad({("layers", 1, "type"): 3}, "layers[1].type", "3"),
    "type_missing": bad({("layers", 1): {"negative_slope": 0.1}}, "layers[1]", "type"),
    "layer_not_object": bad({("layers", 1): "ReLU"}, "layers[1]", "ReLU"),
    "kernel_size_typo": bad({CONV + ("kernal_size",): 3, CONV + ("kernel_size",): DELETE},
                            "layers[0].kernal_size", "'kernel_size'"),
    "kernel_size_missing": bad({CONV + ("kernel_size",): DELETE}, "layers[0]", "kernel_size"),
    "kernel_size_zero": bad({CONV + ("kernel_size",): 0}, "layers[0].kernel_size", "0"),
    "kernel_size_float": bad({CONV + ("kernel_size",): 3.0}, "layers[0].kernel_size", "3.0"),
    "kernel_size_triple": bad({CONV + ("kernel_size",): [3, 3, 3]}, "layers[0].kernel_size",
                              "[3, 3, 3]"),
    "out_channels_negative": bad({CONV + ("out_channels",): -8}, "layers[0].out_channels", "-8"),
    "padding_word": bad({CONV + ("padding",): "full"}, "layers[0].padding", "full"),
    "padding_per_side_short": bad({CONV + ("padding",): [[1, 1], [1]]}, "layers[0].padding",
                                  "per-side", "[[1, 1], [1]]"),
    "padding_mode_typo": bad({CONV + ("padding_mode",): "reflection"}, "layers[0].padding_mode",
                             "'reflection'", "did you mean 'reflect'"),
    "padding_mode_not_text": bad({CONV + ("padding_mode",): 1}, "layers[0].padding_mode", "1"),
    "pool_padding_per_side_over_half": bad(
        {("layers", 2, "padding"): [[0, 2], [0, 0]]}, "layers[2]", "MaxPool2D",
        "[[0, 2], [0, 0]]", "half"),
    "bias_text": bad({CONV + ("bias",): "yes"}, "layers[0].bias", "yes"),
    "pool_kernel_zero": bad({("layers", 2, "kernel_size"): 0}, "layers[2].kernel_size"),
    "relu_takes_no_args": bad({("layers", 1, "inplace"): True}, "layers[1].inplace", "ReLU"),
    "dense_out_zero": bad({("layers", 4, "out_features"): 0}, "layers[4].out_features", "0"),
    "dropout_p": bad({("layers", 1): {"type": "Dropout", "p": 1.5}}, "layers[1].p", "1.5"),
    "leaky_slope_text": bad({("layers", 1): {"type": "LeakyReLU", "negative_slope": "a"}},
                            "layers[1].negative_slope", "'a'"),
    "batchnorm_eps_zero": bad({("layers", 1): {"type": "BatchNorm2D", "eps": 0}},
                              "layers[1].eps"),
    # PyTorch refuses a divisor_override of 0 and anything but an int
    **{f"avgpool_divisor_override_{case_id}": bad(
        {("layers", 2): {"type": "AvgPool2D", "kernel_size": 2, "divisor_override": value}},
        "layers[2].divisor_override", "AvgPool2D", shown)
       for case_id, value, shown in (("0", 0, "got 0"), ("text", "2", "'2'"),
                                     ("bool", True, "True"), ("float", 2.0, "2.0"),
                                     ("list", [2], "[2]"), ("huge", 2**64, str(2**64)))},
    # ---- layers: shapes
    "kernel_larger_than_input": bad({("input_shape",): [1, 4, 4], CONV + ("kernel_size",): 7,
                                     CONV + ("padding",): 0}, "layers[0]", "Conv2D", "(1, 4, 4)"),
    "pool_larger_than_input": bad({("layers", 2, "kernel_size"): 29}, "layers[2]", "MaxPool2D",
                                  "(8, 28, 28)"),
    "groups_do_not_divide_channels": bad({CONV + ("groups",): 2}, "layers[0]", "groups"),
    "convt_output_padding_not_below_stride": bad(
        {CONV: {"type": "ConvTranspose2D", "out_channels": 8, "kernel_size": 3, "stride": 2,
                "output_padding": [1, 2]}}, "layers[0].output_padding", "(1, 2)", "stride"),
    "convt_padding_removes_the_output": bad(
        {CONV: {"type": "ConvTranspose2D", "out_channels": 8, "kernel_size": 3, "padding": 20}},
        "layers[0]", "ConvTranspose2D", "(1, 28, 28)", "padding (20, 20)"),
    "reflect_padding_not_below_input": bad(
        {("input_shape",): [1, 4, 4], CONV + ("padding",): [[1, 1], [4, 0]],
         CONV + ("padding_mode",): "reflect"}, "layers[0]", "Conv2D", "(1, 4, 4)",
        "smaller than", "4 columns"),
    "circular_padding_beyond_input": bad(
        {("input_shape",): [1, 3, 5], CONV + ("padding",): 4,
         CONV + ("padding_mode",): "circular"}, "layers[0]", "Conv2D", "at most", "3 rows"),
    "conv_after_flatten": bad({("layers", 4): {"type": "Conv2D", "out_channels": 2,
                                               "kernel_size": 1}}, "layers[4]", "Conv2D"),
    "conv_on_1d_input": bad({("input_shape",): [784]}, "layers[0]", "(784,)"),
    "batchnorm_after_flatten": bad({("layers", 4): {"type": "BatchNorm2D"}}, "layers[4]",
                                   "BatchNorm2D"),
    "cross_entropy_needs_class_vector": bad({("layers",): example()["layers"][:3]}, "layers[2]",
                                            "cross_entropy", "(8, 14, 14)"),
    "dense_before_flatten_then_cross_entropy": bad(
        {("layers", 3): {"type": "Dense", "out_features": 10}, ("layers", 4): DELETE},
        "layers[3]", "cross_entropy", "(8, 14, 10)", "Dense gets input of shape (8, 14, 14)",
        "Flatten before this Dense"),
    "dense_after_conv_named_not_the_last_layer": bad(
        {("layers", 3): {"type": "Dense", "out_features": 10}, ("layers", 4): {"type": "ReLU"}},
        "layers[3]", "Dense gets input", "Flatten before this Dense"),
    "channels_last_input_shape_hint": bad(
        {("input_shape",): [28, 28, 1]}, "layers[2]", "looks channels-last", "NCHW",
        "[1, 28, 28]"),
    "single_class": bad({("layers", 4, "out_features"): 1}, "layers[4]", "cross_entropy"),
    # ---- optimizer
    "optimizer_not_object": bad({("optimizer",): "sgd"}, "optimizer", "object"),
    "optimizer_type_typo": bad({("optimizer",): {"type": "adm"}}, "optimizer.type", "'adam'"),
    "optimizer_type_missing": bad({("optimizer", "type"): DELETE}, "optimizer", "type"),
    "sgd_needs_lr": bad({("optimizer", "lr"): DELETE}, "optimizer", "lr"),
    "lr_zero": bad({("optimizer", "lr"): 0}, "optimizer.lr", "0"),
    "lr_negative": bad({("optimizer", "lr"): -0.05}, "optimizer.lr", "-0.05"),
    "lr_text": bad({("optimizer", "lr"): "0.1"}, "optimizer.lr", "'0.1'"),
    "lr_infinite": bad({("optimizer", "lr"): float("inf")}, "optimizer.lr"),
    "momentum_negative": bad({("optimizer", "momentum"): -0.9}, "optimizer.momentum", "-0.9"),
    "nesterov_text": bad({("optimizer", "nesterov"): "true"}, "optimizer.nesterov"),
    "nesterov_without_momentum": bad({("optimizer", "nesterov"): True,
                                      ("optimizer", "momentum"): DELETE},
                                     ("optimizer", "optimizer.nesterov", "optimizer.momentum"),
                                     "nesterov"),
    "sgd_key_typo": bad({("optimizer", "moment"): 0.9}, "optimizer.moment", "'momentum'"),
    "adam_rejects_momentum": bad({("optimizer",): {"type": "adam", "momentum": 0.9}},
                                 "optimizer.momentum", "momentum"),
    "adam_betas_one": bad({("optimizer",): {"type": "adam", "betas": [0.9, 1.0]}},
                          "optimizer.betas[1]", "1.0"),
    "adam_betas_single": bad({("optimizer",): {"type": "adamw", "betas": [0.9]}},
                             "optimizer.betas"),
    "adam_eps_zero": bad({("optimizer",): {"type": "adam", "eps": 0}}, "optimizer.eps"),
    "weight_decay_negative": bad({("optimizer",): {"type": "adamw", "weight_decay": -1}},
                                 "optimizer.weight_decay", "-1"),
    "schedule_typo": bad({("optimizer", "schedule"): {"type": "cosin"}},
                         "optimizer.schedule.type", "'cosine'"),
    "schedule_step_needs_size": bad({("optimizer", "schedule"): {"type": "step"}},
                                    "optimizer.schedule", "step_size"),
    "schedule_step_size_zero": bad({("optimizer", "schedule"): {"type": "step", "step_size": 0}},
                                   "optimizer.schedule.step_size", "0"),
    "schedule_unknown_key": bad({("optimizer", "schedule"): {"type": "cosine", "t_max": 3}},
                                "optimizer.schedule.t_max"),
    # ---- training
    "epochs_text": bad({("training", "epochs"): "3"}, "training.epochs", "'3'", "integer"),
    "epochs_zero": bad({("training", "epochs"): 0}, "training.epochs", "0"),
    "epochs_bool": bad({("training", "epochs"): True}, "training.epochs"),
    "batch_size_negative": bad({("training", "batch_size"): -64}, "training.batch_size", "-64"),
    "seed_negative": bad({("training", "seed"): -1}, "training.seed", "-1"),
    "validation_split_one": bad({("training", "validation_split"): 1.0},
                                "training.validation_split", "1"),
    "training_key_typo": bad({("training", "epoch"): 3}, "training.epoch", "'epochs'"),
    "training_not_object": bad({("training",): [3, 64]}, "training", "object"),
}


def assert_definition_error(doc, place, fragments):
    """``Model.from_dict(doc)`` raises a DefinitionError at ``place`` (one of several when
    a tuple) whose message names the place and contains every fragment."""
    places = place if isinstance(place, tuple) else (place,)
    with pytest.raises(DefinitionError, match=f"^({'|'.join(map(re.escape, places))}): ") as info:
        Model.from_dict(doc)
    err = info.value
    assert err.place in places, f"place {err.place!r}, expected {place!r}; message: {err}"
    message = str(err)
    assert err.place in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    return err


@pytest.mark.parametrize("changes, place, fragments", BAD.values(), ids=BAD.keys())
def test_bad_definition(changes, place, fragments):
    assert_definition_error(edit(example(), changes), place, fragments)


def test_bad_definition_is_not_a_json_object():
    for doc, kind in (([1, 2], "list"), ("model", "str"), (None, "NoneType")):
        message = f"^definition: expected a JSON object, got {kind}$"
        with pytest.raises(DefinitionError, match=message):
            Model.from_dict(doc)


def test_definition_error_is_a_value_error():
    assert issubclass(DefinitionError, ValueError)
    assert cynet.DefinitionError is cynet.definition.DefinitionError
    with pytest.raises(ValueError, match=r"^optimizer\.lr: lr must be > 0, got -1\.0$"):
        Model.from_dict(edit(example(), {("optimizer", "lr"): -1}))


# ---- integer-valued floats: "epochs": 3.0 passes as a JSON Schema "integer"; either it
# is rejected up front, or the model must then work with it (not fail inside fit)

INTEGRAL_FLOATS = {
    "epochs": ({("training", "epochs"): 2.0}, "training.epochs"),
    "batch_size": ({("training", "batch_size"): 8.0}, "training.batch_size"),
    "seed": ({("training", "seed"): 3.0}, "training.seed"),
    "step_size": ({("optimizer", "schedule"): {"type": "step", "step_size": 1.0}},
                  "optimizer.schedule.step_size"),
}


@pytest.mark.parametrize("changes, place", INTEGRAL_FLOATS.values(), ids=INTEGRAL_FLOATS.keys())
def test_integral_float_is_rejected_or_works(changes, place):
    doc = edit({**MLP, "optimizer": {"type": "sgd", "lr": 0.1},
                "training": {"epochs": 2, "batch_size": 8, "seed": 3}}, changes)
    try:
        model = Model.from_dict(doc)
    except DefinitionError as err:
        assert err.place == place, str(err)
        return
    x = np.zeros((16, 6), np.float32)
    history = model.fit(x, np.zeros(16, np.int64))
    assert [h["epoch"] for h in history] == [1, 2]


# ---- a layer whose build raises

class BrokenBuild(Layer):
    """Raises ``error`` in build, as a plugin layer given an unexpected shape might."""

    error = ValueError

    def build(self, input_shape):
        if self.error is IndexError:
            return (input_shape[5],)  # an unguarded index into the shape
        raise self.error(f"cannot handle {tuple(input_shape)}")


@pytest.mark.parametrize("error", [ValueError, TypeError, IndexError, RuntimeError])
def test_layer_raising_in_build(error):
    cls = type(f"Broken{error.__name__}", (BrokenBuild,), {"error": error})
    with registered(cls, cls.__name__):
        doc = example()
        doc["layers"].insert(1, {"type": cls.__name__})
        err = assert_definition_error(doc, "layers[1]", [cls.__name__])
    assert err.__class__ is DefinitionError


class BadShape(Layer):
    def build(self, input_shape):
        return self.shape


@pytest.mark.parametrize("shape", [None, (), (0,), (4, -1), "abc"])
def test_layer_whose_build_returns_an_invalid_shape(shape):
    cls = type("BadShapeLayer", (BadShape,), {"shape": shape})
    with registered(cls, "BadShapeLayer"):
        doc = example()
        doc["layers"].insert(2, {"type": "BadShapeLayer"})
        assert_definition_error(doc, "layers[2]", ["BadShapeLayer"])


def test_plugin_constructor_failing_its_own_way():
    class Exploding(Layer):
        def __init__(self, **kwargs):
            raise ZeroDivisionError("boom")

    with registered(Exploding, "ExplodingLayer"):
        doc = example()
        doc["layers"].insert(1, {"type": "ExplodingLayer"})
        assert_definition_error(doc, "layers[1]", ["boom"])


class Scaled(Layer):
    """A plugin layer whose constructor checks ``scale`` with ``check``."""

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = type(self).check(scale)


def _raise(exc):
    raise exc


@pytest.mark.parametrize("check, scale, place, message", [
    pytest.param(lambda s: as_real(s, "scale", gt=0), -1, "layers[1].scale",
                 "scale must be > 0, got -1.0", id="validator"),
    pytest.param(lambda s: _raise(ArgumentError("scale[1] must be > 0", "scale[1]")), [1, -1],
                 "layers[1].scale[1]", "scale[1] must be > 0", id="nested_argument"),
    pytest.param(lambda s: _raise(ArgumentTypeError("scale needs an offset", "offset")), 2,
                 "layers[1]", "scale needs an offset", id="argument_not_given"),
    pytest.param(lambda s: _raise(ValueError("scale must be > 0")), -1, "layers[1].scale",
                 "scale must be > 0", id="plain_error_naming_the_key"),
    pytest.param(lambda s: _raise(ValueError("cannot scale by -1")), -1, "layers[1]",
                 "cannot scale by -1", id="plain_error"),
])
def test_constructor_error_is_placed_at_the_argument_it_carries(check, scale, place, message):
    """At ``exc.argument`` (ArgumentError, ArgumentTypeError) when that is a key given; a
    plain error at the key its message begins with, as before errors carried it."""
    cls = type("Scaled", (Scaled,), {"check": staticmethod(check)})
    with registered(cls, "Scaled"):
        doc = example()
        doc["layers"].insert(1, {"type": "Scaled", "scale": scale})
        err = assert_definition_error(doc, place, [f"Scaled: {message}"])
    assert str(err) == f"{place}: Scaled: {message}"


def test_schema_and_constructors_agree():
    """The optimizer and schedule keys the schema allows are those make_optimizer and
    make_schedule take, from one source: every option of every type (§4, and the
    schedule "constant": the base rate every epoch) passes both; a key of no constructor is
    refused by both; SCHEMA is a valid JSON Schema."""
    jsonschema.Draft202012Validator.check_schema(json.loads(json.dumps(SCHEMA)))
    optimizers = [{"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True,
                   "weight_decay": 0.1},
                  {"type": "adam", "lr": 0.1, "betas": [0.8, 0.9], "eps": 1e-7, "weight_decay": 0},
                  {"type": "adamw", "lr": 1, "betas": [0, 0], "eps": 1, "weight_decay": 0.5}]
    schedules = [{"type": "constant"}, {"type": "step", "step_size": 2, "gamma": 0.5},
                 {"type": "cosine"}]
    schema = SCHEMA["properties"]["optimizer"]
    schedule_schema = schema["allOf"][0]["then"]["properties"]["schedule"]
    assert set(schema["properties"]["type"]["enum"]) == {o["type"] for o in optimizers}
    assert set(schedule_schema["properties"]["type"]["enum"]) == {s["type"] for s in schedules}
    for optimizer, schedule in zip(optimizers, schedules):
        config = {**optimizer, "schedule": dict(schedule)}
        make_optimizer(config)
        make_schedule(config["schedule"])
        parse({**MLP, "optimizer": config})
        for target, place, make in ((config, "optimizer", make_optimizer),
                                    (config["schedule"], "optimizer.schedule", make_schedule)):
            target["bogus"] = 1
            with pytest.raises(DefinitionError, match=rf"^{place}\.bogus: unknown key 'bogus'"):
                parse({**MLP, "optimizer": config})
            with pytest.raises(ArgumentError, match=f"unknown {target['type']} .*'bogus'"):
                make(target)
            del target["bogus"]


# --------------------------------------------------------------------------- valid

VALID = {
    "example": example(),
    "minimal": {"input_shape": [1, 28, 28], "layers": [{"type": "Flatten"},
                                                       {"type": "Dense", "out_features": 10}]},
    "mlp": MLP,
    "lenet": lenet(28),
    "every_layer": every_layer_model(),
    "dense_before_flatten_with_mse": edit(example(), {
        ("layers", 3): {"type": "Dense", "out_features": 10}, ("layers", 4): DELETE,
        ("loss",): "mse"}),
    "sgd_nesterov_step": edit(example(), {("optimizer",): {
        "type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4,
        "schedule": {"type": "step", "step_size": 2, "gamma": 0.5}}}),
    "adam_cosine": edit(example(), {("optimizer",): {
        "type": "adam", "lr": 0.001, "betas": [0.8, 0.99], "eps": 1e-7, "weight_decay": 0.01,
        "schedule": {"type": "cosine"}}}),
    "adamw_defaults_constant": edit(example(), {("optimizer",): {
        "type": "adamw", "schedule": {"type": "constant"}}}),
    "training_all_keys": edit(example(), {("training",): {
        "epochs": 1, "batch_size": 1, "seed": 0, "validation_split": 0.25}}),
    "training_empty": edit(example(), {("training",): {}}),
    "kernel_pair_and_same": edit(example(), {CONV + ("kernel_size",): [3, 2],
                                             CONV + ("padding",): "same"}),
    "pool_covers_whole_input": edit(example(), {("layers", 2, "kernel_size"): 28}),
}


@pytest.mark.parametrize("doc", VALID.values(), ids=VALID.keys())
def test_valid_definition_builds(doc):
    model = Model.from_dict(json.loads(json.dumps(doc)))
    assert len(model.layers) == len(doc["layers"])
    for spec, layer in zip(doc["layers"], model.layers):
        assert type(layer) is cynet.registry.get(spec["type"])
    x = np.random.default_rng(0).standard_normal((3,) + tuple(doc["input_shape"]))
    out = model.predict(x.astype(np.float32))
    assert out.dtype == np.float32 and out.shape[0] == 3 and np.all(np.isfinite(out))


def test_every_layer_model_uses_every_builtin():
    used = {spec["type"] for spec in every_layer_model()["layers"]}
    builtins = {i.type for i in cynet.registry.available() if i.origin == "builtin"}
    assert used == builtins


def test_from_dict_does_not_modify_the_document():
    doc = example()
    Model.from_dict(doc)
    assert doc == example()


def test_from_json_reads_and_validates(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(example()))
    model = Model.from_json(str(good))
    assert [type(l).__name__ for l in model.layers] == [s["type"] for s in example()["layers"]]
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(json.dumps(edit(example(), {CONV + ("kernal_size",): 3})))
    with pytest.raises(DefinitionError, match="did you mean 'kernel_size'") as info:
        Model.from_json(str(bad_file))
    assert info.value.place == "layers[0].kernal_size"


def test_load_json_missing_file(tmp_path):
    path = tmp_path / "no_such_model.json"
    with pytest.raises(DefinitionError, match=r"no_such_model\.json: cannot read the file") as info:
        load_json(str(path))
    assert "no_such_model.json" in str(info.value)
    assert "no_such_model.json" in info.value.place
    with pytest.raises(DefinitionError, match="no_such_model.json"):
        Model.from_json(str(path))


@pytest.mark.parametrize("text, line", [
    ('{"input_shape": [1, 28, 28],\n "layers": [}', 2),
    ('{"input_shape": [1, 28, 28], "layers": []', 1),
    ("", 1),
    ("{'input_shape': [1]}", 1),
], ids=["bad_bracket", "unterminated", "empty", "single_quotes"])
def test_load_json_malformed(tmp_path, text, line):
    path = tmp_path / "broken_model.json"
    path.write_text(text)
    with pytest.raises(DefinitionError, match=r"broken_model\.json: not valid JSON: ") as info:
        load_json(str(path))
    message = str(info.value)
    assert "broken_model.json" in message and "broken_model.json" in info.value.place
    assert f"line {line}" in message


def test_numpy_values_and_tuples_are_read_as_their_json_types():
    import numpy as np

    doc = {"input_shape": np.array([1, 8, 8]),
           "layers": [{"type": "Flatten"}, {"type": "Dense", "out_features": np.int64(3)}],
           "training": {"epochs": np.int64(2), "batch_size": 4}}
    model = cynet.Model.from_dict(doc)
    assert model.output_shape == (3,) and model.definition.training["epochs"] == 2
    assert cynet.Model.from_dict({"input_shape": (1, 8, 8), "layers": doc["layers"]}).input_shape == (1, 8, 8)


def test_a_pooling_window_with_no_input_element_is_a_definition_error():
    doc = {"input_shape": [2, 2, 3], "layers": [
        {"type": "MaxPool2D", "kernel_size": [2, 3], "padding": [1, 0], "dilation": [3, 1],
         "ceil_mode": True},
        {"type": "Flatten"}, {"type": "Dense", "out_features": 2}]}
    message = r"^layers\[0\]: MaxPool2D cannot take input of shape \(2, 2, 3\): "
    with pytest.raises(cynet.DefinitionError, match=message) as info:
        cynet.Model.from_dict(doc)
    assert info.value.place == "layers[0]" and "dilation" in str(info.value)
    # while cynet.functional, like torch, answers -inf for such windows
    y, _ = cynet.functional.max_pool2d(np.ones((1, 2, 2, 3)), (2, 3), None, (1, 0), (3, 1),
                                       True)
    assert y.shape == (1, 2, 1, 1) and (y == -np.inf).all()
    # and the layer on its own refuses such input in forward as in build
    layer = cynet.registry.get("MaxPool2D")(**{k: v for k, v in doc["layers"][0].items()
                                               if k != "type"})
    with pytest.raises(ValueError, match="without any input element"):
        layer.forward(np.ones((1, 2, 2, 3), np.float32))


@pytest.mark.parametrize("divisor_override", [None, 1, 3, -2])
def test_avg_pool_divisor_override_in_a_definition(divisor_override):
    doc = edit(example(), {("layers", 2): {"type": "AvgPool2D", "kernel_size": 2,
                                           "divisor_override": divisor_override}})
    model = Model.from_dict(doc)
    assert model.layers[2].divisor_override == divisor_override
    assert model.to_dict()["layers"][2]["divisor_override"] == divisor_override
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    pooled = model.layers[2].forward(model.layers[1].forward(model.layers[0].forward(x)))
    assert pooled.shape == (2, 8, 14, 14) and np.isfinite(pooled).all()


def test_avg_pool_divisor_override_is_typed_from_its_constructor():
    # the option's JSON type and default come from AvgPool2D's signature (a null default
    # alone would say nothing), as they do for every option read by _typed_config
    from cynet._typed_config import constructor_options, option_schema
    from cynet.layers.pooling import AvgPool2D

    options = {o.name: o for o in constructor_options(AvgPool2D)}
    assert not options["divisor_override"].required
    assert option_schema(options["divisor_override"]) == {"type": ["integer", "null"],
                                                          "default": None}


def test_conv_padding_string_errors_name_the_valid_strings():
    doc = {"input_shape": [1, 8, 8], "layers": [
        {"type": "Conv2D", "out_channels": 2, "kernel_size": 3, "padding": "Same"},
        {"type": "Flatten"}, {"type": "Dense", "out_features": 2}]}
    message = (r"^layers\[0\]\.padding: Conv2D: padding must be an int, .* 'same' or 'valid', "
               r"got 'Same'; did you mean 'same'\?$")
    with pytest.raises(cynet.DefinitionError, match=message) as info:
        cynet.Model.from_dict(doc)
    assert info.value.place == "layers[0].padding" and "'same'" in str(info.value)
