"""The layer registry: built-ins, lookup errors, ``register_layer`` and lazy listing.

Plugins installed as distributions (the example package, broken ones, conflicts, the
autoload switch) are tested in test_plugin.py, whose ``fake_dist`` helper and autouse
``restore_registry`` fixture are shared here. ``register_layer`` registrations last for
the whole process, so every test registers class names of its own.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

import cynet
from cynet import registry
from test_plugin import fake_dist, restore_registry  # noqa: F401  (autouse fixture)

REPO = Path(__file__).resolve().parents[1]
BUILTIN_NAMES = ["Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Flatten", "Dense",
                 "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Dropout", "BatchNorm2D",
                 "BatchNorm1D", "Identity", "Add", "Concat", "ConvTranspose2D"]


def doubling_layer(name):
    """A new Layer subclass called ``name`` (defined in this module) computing ``2 x``."""

    def forward(self, x, training=True):
        return 2 * x

    def backward(self, grad_out):
        return 2 * grad_out if self.input_grad else None

    return type(name, (cynet.Layer,), {"forward": forward, "backward": backward,
                                       "__qualname__": name, "__module__": __name__})


def tiny_doc(layer_type):
    return {"input_shape": [4], "layers": [{"type": layer_type}, {"type": "Dense", "out_features": 2}],
            "optimizer": {"type": "sgd", "lr": 0.1}, "training": {"epochs": 2, "batch_size": 8, "seed": 0}}


# --------------------------------------------------------------------------- built-ins


def test_builtins_table_matches_pyproject():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli there
        import tomli as tomllib
    with open(REPO / "pyproject.toml", "rb") as f:
        declared = tomllib.load(f)["project"]["entry-points"]["cynet.layers"]
    assert registry.BUILTINS == declared
    assert sorted(declared) == sorted(BUILTIN_NAMES)


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_builtin_listed_and_loadable(name):
    infos = [i for i in registry.available() if i.type == name]
    assert infos == [registry.LayerInfo(name, "cynet-cnn", cynet.__version__, "builtin")]
    cls = registry.get(name)
    module, _, attr = registry.BUILTINS[name].partition(":")
    assert (cls.__module__, cls.__qualname__) == (module, attr)
    assert issubclass(cls, cynet.Layer)


def test_available_is_sorted_and_failures_empty_without_plugins():
    types = [i.type for i in registry.available()]
    assert types == sorted(types) and len(types) == len(set(types))
    assert set(BUILTIN_NAMES) <= set(types)
    assert registry.failures() == []


@pytest.mark.parametrize("typo, suggestion", [
    ("Conv2d", "Conv2D"),
    ("conv2d", "Conv2D"),
    ("Desne", "Dense"),
    ("BatchNorm2d", "BatchNorm2D"),
    ("MaxPool", "MaxPool2D"),
])
def test_misspelt_type_suggests_closest(typo, suggestion):
    with pytest.raises(KeyError) as info:
        registry.get(typo)
    message = str(info.value)
    assert f"unknown layer type {typo!r}" in message and f"did you mean {suggestion!r}" in message


def test_unknown_type_without_close_match():
    with pytest.raises(KeyError) as info:
        registry.get("TransformerEncoderBlock")
    assert "unknown layer type 'TransformerEncoderBlock'" in str(info.value)
    assert "did you mean" not in str(info.value)


def test_misspelt_type_in_a_definition_names_the_place():
    with pytest.raises(cynet.DefinitionError) as info:
        cynet.Model.from_dict(tiny_doc("Conv2d"))
    assert info.value.place == "layers[0].type"
    assert "'Conv2D'" in str(info.value)


# --------------------------------------------------------------------------- register_layer


@pytest.mark.parametrize("form", ["call_without_name", "call_with_name", "bare"])
def test_register_layer_forms(form):
    cls = doubling_layer(f"RegForm_{form}")
    if form == "call_without_name":
        name, result = cls.__name__, cynet.register_layer()(cls)
    elif form == "call_with_name":
        name, result = f"Renamed_{form}", cynet.register_layer(f"Renamed_{form}")(cls)
    else:
        name, result = cls.__name__, cynet.register_layer(cls)
    assert result is cls  # the decorator gives the class back
    assert registry.get(name) is cls
    info = registry.source(name)
    assert (info.type, info.package, info.origin) == (name, __name__.split(".")[0], "register_layer")
    assert info in registry.available()

    model = cynet.Model.from_dict(tiny_doc(name))
    assert type(model.layers[0]) is cls
    x = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    np.testing.assert_allclose(model.layers[0].forward(x), 2 * x)
    history = model.fit(x, (x[:, 0] > 0).astype(np.int64))
    assert len(history) == 2 and np.isfinite(history[-1]["loss"])


def test_register_layer_as_class_decorator_syntax():
    @cynet.register_layer()
    class RegDecoratedSyntax(cynet.Layer):
        def forward(self, x, training=True):
            return x

        def backward(self, grad_out):
            return grad_out

    assert registry.get("RegDecoratedSyntax") is RegDecoratedSyntax
    assert isinstance(cynet.Model.from_dict(tiny_doc("RegDecoratedSyntax")).layers[0],
                      RegDecoratedSyntax)


class NotALayer:
    def forward(self, x, training=True):
        return x


@pytest.mark.parametrize("obj", [
    NotALayer, cynet.Layer(), lambda x: x, "Conv2D", None, int,
], ids=["plain class", "layer instance", "function", "string", "None", "int"])
def test_register_non_layer_raises_type_error(obj):
    with pytest.raises(TypeError, match="expects a subclass of cynet.Layer"):
        cynet.register_layer("RegBad")(obj)
    assert registry.source("RegBad") is None


def test_register_non_layer_class_via_bare_decorator():
    with pytest.raises(TypeError, match="expects a subclass of cynet.Layer"):
        cynet.register_layer(NotALayer)
    assert registry.source("NotALayer") is None


def _a_function():
    return None


@pytest.mark.parametrize("bad", [42, ("Name",), _a_function], ids=["int", "tuple", "function"])
def test_register_layer_rejects_a_name_that_is_not_a_string(bad, monkeypatch):
    """``register_layer(42)`` and ``@register_layer`` on a function are mistakes: they must
    fail at once, not register a type that breaks ``available()`` for everyone."""
    # should the registration go through, keep it from breaking the other tests
    monkeypatch.setattr(registry._registry, "_script", dict(registry._registry._script))
    cls = doubling_layer(f"RegBadName_{type(bad).__name__}")
    with pytest.raises(TypeError, match=r"name|Layer"):
        cynet.register_layer(bad)(cls)
    types = [i.type for i in registry.available()]  # still works
    assert all(isinstance(t, str) for t in types) and bad not in types


@pytest.mark.parametrize("taken", ["RegTaken", "Conv2D"])
def test_register_different_class_under_taken_name_raises(taken):
    if taken == "RegTaken":
        first = cynet.register_layer(taken)(doubling_layer("RegTakenFirst"))
        existing = f"{__name__}:RegTakenFirst"
    else:
        first, existing = registry.get("Conv2D"), registry.BUILTINS["Conv2D"]
    other = doubling_layer("RegTakenSecond")
    with pytest.raises(ValueError) as info:
        cynet.register_layer(taken)(other)
    message = str(info.value)
    assert repr(taken) in message and existing in message and f"{__name__}.RegTakenSecond" in message
    assert registry.get(taken) is first


def test_reregistering_the_same_class_is_allowed():
    """Re-running a notebook cell defines a new class object with the same module and
    qualified name: it replaces the old one."""
    old = cynet.register_layer()(doubling_layer("RegRerun"))
    assert cynet.register_layer()(old) is old  # the very same object, twice
    new = cynet.register_layer()(doubling_layer("RegRerun"))
    assert new is not old
    assert registry.get("RegRerun") is new


def test_registered_types_survive_reload():
    cls = cynet.register_layer()(doubling_layer("RegSurvivesReload"))
    registry.reload()
    assert registry.get("RegSurvivesReload") is cls


# --------------------------------------------------------------------------- laziness

PROBE = """\
    from pathlib import Path

    import cynet

    Path(__file__).with_suffix(".imported").write_text("yes")


    class Probe(cynet.Layer):
        def forward(self, x, training=True):
            return x

        def backward(self, grad_out):
            return grad_out
    """


def test_listing_does_not_import_plugin_modules(tmp_path, monkeypatch):
    module = "registry_lazy_probe"
    site = fake_dist(tmp_path / "site", "lazy-probe", "3.1", {"LazyProbe": f"{module}:Probe"},
                     {module: PROBE})
    marker = site / f"{module}.imported"
    monkeypatch.syspath_prepend(str(site))
    registry.reload()

    infos = [i for i in registry.available() if i.type == "LazyProbe"]
    assert infos == [registry.LayerInfo("LazyProbe", "lazy-probe", "3.1", "entry point")]
    assert registry.source("LazyProbe") == infos[0]
    assert module not in sys.modules and not marker.exists(), "listing imported the plugin"

    cls = registry.get("LazyProbe")  # first use imports it
    assert module in sys.modules and marker.exists()
    assert cls.__module__ == module


@pytest.mark.parametrize("typo, suggestion", [("relu", "ReLU"), ("DENSE", "Dense"),
                                              ("conv2d", "Conv2D")])
def test_suggestions_ignore_case(typo, suggestion):
    with pytest.raises(KeyError, match=suggestion):
        cynet.registry.get(typo)
