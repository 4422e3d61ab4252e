"""Third-party layer plugins, end to end.

The example package ``examples/plugin`` is built and installed once per session into a
temporary ``--target`` folder (the virtual environment stays clean), put on ``sys.path``
only by the tests that use it, and exercised through cynet's public API: listing, lookup,
gradcheck, a model that trains, saves and loads, and the error when a saved model needs
the plugin after it is gone. Fake installed distributions (a ``*.dist-info`` folder next
to a few modules) cover plugins that are broken, that claim a built-in's name, that claim
the same name twice, and ``CYNET_DISABLE_PLUGIN_AUTOLOAD``.

``fake_dist`` and the autouse ``restore_registry`` are also used by test_registry.py.
"""
import importlib
import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cynet
from cli_fixtures import fake_distribution as fake_dist  # noqa: F401 (test_registry uses it)
from cynet import registry

REPO = Path(__file__).resolve().parents[1]
PLUGIN_SOURCE = REPO / "examples" / "plugin"
PLUGIN_PACKAGE = "cynet-example-plugin"
PLUGIN_TYPES = ("PReLU2D", "Swish")


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def restore_registry(tmp_path_factory):
    """After each test (and after monkeypatch has restored sys.path and the environment,
    autouse fixtures being set up first and torn down last): forget modules imported from
    the test's temporary folders and re-read the entry points."""
    base = str(tmp_path_factory.getbasetemp())
    yield
    for name, module in list(sys.modules.items()):
        if (getattr(module, "__file__", None) or "").startswith(base):
            del sys.modules[name]
    importlib.invalidate_caches()
    registry.reload()


@pytest.fixture
def on_path(monkeypatch):
    """``on_path(folder)``: put an install folder on sys.path and re-read entry points."""

    def add(folder):
        monkeypatch.syspath_prepend(str(folder))
        importlib.invalidate_caches()
        registry.reload()
        return folder

    return add


def _pip_install(source, target, isolated):
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-input",
           "--disable-pip-version-check", "--target", str(target), str(source)]
    if not isolated:
        cmd.insert(4, "--no-build-isolation")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory):
    """The example plugin, built from a copy of its sources (the build writes ``build/``
    and ``*.egg-info`` next to them) and installed into a fresh folder."""
    work = tmp_path_factory.mktemp("example_plugin")
    source, target = work / "src", work / "site"
    shutil.copytree(PLUGIN_SOURCE, source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    run = _pip_install(source, target, isolated=False)
    if run.returncode != 0:
        # this environment cannot build it (no setuptools, or one too old to build a wheel
        # without the wheel package, as in a fresh venv): let pip fetch a backend
        first = run
        run = _pip_install(source, target, isolated=True)
        run.stdout = first.stdout + first.stderr + "\n--- isolated build:\n" + run.stdout
    assert run.returncode == 0, f"pip could not install the example plugin:\n{run.stdout}\n{run.stderr}"
    assert list(target.glob("cynet_example_plugin-0.1.0.dist-info")), sorted(target.iterdir())
    return target


@pytest.fixture
def plugin(plugin_site, on_path):
    """The installed example plugin, on sys.path for this test."""
    return on_path(plugin_site)


def synthetic(n=96, shape=(3, 6, 6), seed=0):
    """Images whose label is the channel with the raised mean: easy to learn."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, shape[0], n)
    x = rng.standard_normal((n,) + shape).astype(np.float32)
    x[np.arange(n), y] += 1.0
    return x, y


def model_doc(layers, input_shape=(3, 6, 6), epochs=6):
    return {
        "input_shape": list(input_shape),
        "layers": layers,
        "loss": "cross_entropy",
        "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9},
        "training": {"epochs": epochs, "batch_size": 16, "seed": 0},
    }


BUILTIN_LAYERS = [
    {"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "padding": 1},
    {"type": "ReLU"},
    {"type": "Flatten"},
    {"type": "Dense", "out_features": 3},
]
# Swish comes before any PReLU2D: the error about a missing plugin names the first one.
PLUGIN_LAYERS = [
    {"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "padding": 1},
    {"type": "Swish"},
    {"type": "PReLU2D"},
    {"type": "MaxPool2D", "kernel_size": 2},
    {"type": "Flatten"},
    {"type": "Dense", "out_features": 8},
    {"type": "PReLU2D", "init": 0.1},
    {"type": "Dense", "out_features": 3},
]


def assert_trains(doc):
    """Build ``doc``, train it on the synthetic task and check the loss went down."""
    model = cynet.Model.from_dict(doc)
    x, y = synthetic(shape=tuple(doc["input_shape"]))
    history = model.fit(x, y)
    losses = [h["loss"] for h in history]
    assert len(history) == doc["training"]["epochs"]
    assert all(np.isfinite(losses)), losses
    assert losses[-1] < 0.8 * losses[0], f"the loss did not decrease: {losses}"
    return model, x


# --------------------------------------------------------------------------- the example plugin


def test_plugin_types_listed_with_package_and_version(plugin):
    listed = {i.type: i for i in registry.available() if i.package == PLUGIN_PACKAGE}
    assert sorted(listed) == sorted(PLUGIN_TYPES)
    for name in PLUGIN_TYPES:
        assert listed[name] == registry.LayerInfo(name, PLUGIN_PACKAGE, "0.1.0", "entry point")
        assert registry.source(name) == listed[name]


def test_plugin_types_not_listed_without_the_plugin():
    names = {i.type for i in registry.available()}
    assert not names & set(PLUGIN_TYPES)
    with pytest.raises(KeyError, match="unknown layer type 'Swish'"):
        registry.get("Swish")


@pytest.mark.parametrize("name", PLUGIN_TYPES)
def test_get_returns_the_installed_class(plugin, name):
    cls = registry.get(name)
    assert inspect.isclass(cls) and issubclass(cls, cynet.Layer)
    assert (cls.__module__, cls.__name__) == ("cynet_example_plugin.layers", name)
    # imported from the installed copy, not from the repository's sources
    assert Path(inspect.getfile(cls)).is_relative_to(plugin)
    assert registry.get(name) is cls


@pytest.mark.parametrize("name, config, input_shape", [
    ("Swish", None, None),
    ("Swish", None, (7,)),
    ("PReLU2D", None, None),
    ("PReLU2D", {"init": -0.4}, (2, 3, 3)),
    ("PReLU2D", {}, (6,)),
])
def test_gradcheck(plugin, name, config, input_shape):
    result = cynet.testing.gradcheck_layer(name, config, input_shape)
    assert result.ok, str(result)
    assert result.checked > 0


def _swish_reference(x, layer):
    x = x.astype(np.float64)
    return x * np.exp(-np.logaddexp(0.0, -x))  # x * sigmoid(x), stable in float64


def _prelu_reference(x, layer):
    w = layer.params["weight"].astype(np.float64).reshape((1, -1) + (1,) * (x.ndim - 2))
    x = x.astype(np.float64)
    return np.where(x > 0, x, w * x)


@pytest.mark.parametrize("name, input_shape, reference", [
    ("Swish", (3, 2, 2), _swish_reference),
    ("PReLU2D", (3, 2, 2), _prelu_reference),
    ("PReLU2D", (3,), _prelu_reference),
])
def test_forward_matches_reference(plugin, name, input_shape, reference):
    layer = registry.get(name)()
    assert layer.build(input_shape) == input_shape
    if "weight" in layer.params:
        assert layer.params["weight"].dtype == np.float32
        np.testing.assert_array_equal(layer.params["weight"], np.full(input_shape[0], 0.25))
        layer.params["weight"][:] = [0.1, -0.5, 2.0]  # distinct per channel
    x = np.random.default_rng(1).standard_normal((4,) + input_shape).astype(np.float32) * 3
    y = layer.forward(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, reference(x, layer), rtol=1e-6, atol=1e-6)


def test_swish_is_numerically_stable(plugin):
    layer = registry.get("Swish")()
    layer.build((6,))
    x = np.array([[-1e4, -100.0, -20.0, 0.0, 20.0, 1e4]], dtype=np.float32)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        y = layer.forward(x)
        g = layer.backward(np.ones_like(x))
    assert np.isfinite(y).all() and np.isfinite(g).all(), (y, g)
    np.testing.assert_allclose(y, _swish_reference(x, layer), rtol=1e-6, atol=1e-30)
    # the slope tends to 0 on the left and 1 on the right
    np.testing.assert_allclose(g[0, [0, 1, 3, 5]], [0.0, 0.0, 0.5, 1.0], atol=1e-6)


@pytest.mark.parametrize("config, input_shape, error, fragment", [
    ({"init": "0.25"}, (3,), TypeError, "init must be a number"),
    ({"init": True}, (3,), TypeError, "init must be a number"),
    ({"init": float("nan")}, (3,), ValueError, "init must be finite"),
    ({"slope": 0.1}, (3,), TypeError, "unexpected argument(s): slope"),
    ({}, (3, 4), ValueError, "(C, H, W) or (C,)"),
])
def test_prelu2d_rejects_bad_arguments(plugin, config, input_shape, error, fragment):
    with pytest.raises(error) as info:
        registry.get("PReLU2D")(**config).build(input_shape)
    assert fragment in str(info.value)


def test_prelu2d_bad_shape_in_a_definition_names_the_layer(plugin):
    layers = [{"type": "PReLU2D"}, {"type": "Flatten"}, {"type": "Dense", "out_features": 3}]
    doc = model_doc(layers, input_shape=(4, 5))
    with pytest.raises(cynet.DefinitionError) as info:
        cynet.Model.from_dict(doc)
    assert info.value.place == "layers[0]"
    assert "PReLU2D" in str(info.value) and "(C, H, W) or (C,)" in str(info.value)


def test_model_with_plugin_layers_trains_saves_and_loads(plugin, tmp_path):
    model, x = assert_trains(model_doc(PLUGIN_LAYERS))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [spec["type"] for spec in PLUGIN_LAYERS]
    slopes = model.layers[2].params["weight"]
    assert slopes.shape == (4,) and not np.allclose(slopes, 0.25), "PReLU2D weight never trained"
    assert model.to_dict()["layers"][6] == {"type": "PReLU2D", "init": 0.1}

    path = tmp_path / "model.npz"
    model.save(path)
    loaded = cynet.Model.load(path)
    assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
    np.testing.assert_array_equal(loaded.layers[6].params["weight"], model.layers[6].params["weight"])
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_loading_a_model_after_the_plugin_is_gone_names_type_and_package(plugin, tmp_path):
    path = tmp_path / "model.npz"
    cynet.Model.from_dict(model_doc(PLUGIN_LAYERS)).save(path)

    sys.path.remove(str(plugin))  # monkeypatch restores sys.path afterwards
    importlib.invalidate_caches()
    registry.reload()
    assert registry.source("Swish") is None

    with pytest.raises(cynet.DefinitionError) as info:
        cynet.Model.load(path)
    message = str(info.value)
    assert info.value.place == "layers[1].type"
    assert "'Swish'" in message and PLUGIN_PACKAGE in message and "0.1.0" in message, message


# --------------------------------------------------------------------------- broken plugins

BROKEN = {  # type: (entry point, a fragment of the recorded error)
    "RaisesAtImport": ("broken_raises:Thing", "RuntimeError: boom at import"),
    "NotALayer": ("broken_notlayer:NOT_A_LAYER", "not a subclass of cynet.Layer"),
    "NoSuchModule": ("broken_nonexistent_module:Thing", "No module named 'broken_nonexistent_module'"),
    "ExitsAtImport": ("broken_exits:Thing", "SystemExit: 1"),
}
BROKEN_MODULES = {
    "broken_raises": 'raise RuntimeError("boom at import")\n',
    "broken_notlayer": """\
        import cynet

        NOT_A_LAYER = 42


        class Conv2D(cynet.Layer):  # would shadow cynet's own Conv2D if it were allowed to
            pass
        """,
    "broken_exits": "import sys\nsys.exit(1)\n",
}


@pytest.fixture
def broken(tmp_path, on_path):
    """A distribution ``broken-pkg`` 1.0 whose every layer type fails in its own way,
    one of them claiming the built-in name ``Conv2D``."""
    entries = {name: target for name, (target, _) in BROKEN.items()}
    entries["Conv2D"] = "broken_notlayer:Conv2D"
    return on_path(fake_dist(tmp_path / "site", "broken-pkg", "1.0", entries, BROKEN_MODULES))


def test_listing_survives_broken_plugins(broken):
    infos = {i.type: i for i in registry.available()}
    for name in registry.BUILTINS:
        assert (infos[name].package, infos[name].origin) == ("cynet-cnn", "builtin")
    for name in BROKEN:  # listed (listing imports nothing), failing only when used
        assert infos[name] == registry.LayerInfo(name, "broken-pkg", "1.0", "entry point")
    assert not set(BROKEN_MODULES) & set(sys.modules)


def test_failures_report_every_broken_type(broken):
    failures = registry.failures()
    by_type = {f.type: f for f in failures}
    assert sorted(by_type) == sorted([*BROKEN, "Conv2D"]), failures
    for name, (_, fragment) in {**BROKEN, "Conv2D": (None, "claimed by 2 sources")}.items():
        failure = by_type[name]
        assert (failure.package, failure.version) == ("broken-pkg", "1.0"), failure
        assert fragment in failure.error, failure
    assert "cynet" in by_type["Conv2D"].error and "built-in" in by_type["Conv2D"].error


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_get_of_a_broken_type_names_package_and_error(broken, name):
    with pytest.raises(KeyError) as info:
        registry.get(name)
    message = str(info.value)
    assert name in message and "broken-pkg 1.0" in message and BROKEN[name][1] in message, message
    assert any(f.type == name for f in registry.failures())


def test_a_plugin_cannot_replace_a_builtin(broken):
    from cynet.layers.conv import Conv2D

    assert registry.get("Conv2D") is Conv2D
    assert registry.source("Conv2D").package == "cynet-cnn"


def test_builtin_models_still_train_beside_broken_plugins(broken):
    registry.failures()  # tries (and fails) to import every broken plugin first
    assert_trains(model_doc(BUILTIN_LAYERS, epochs=4))


def test_disable_plugin_autoload(broken, plugin, monkeypatch):
    def third_party():
        return {i.type for i in registry.available() if i.origin == "entry point"}

    assert third_party() == {*BROKEN, *PLUGIN_TYPES}
    monkeypatch.setenv("CYNET_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry.reload()
    assert third_party() == set()
    assert {i.type for i in registry.available() if i.origin == "builtin"} == set(registry.BUILTINS)
    assert registry.failures() == []
    with pytest.raises(KeyError, match="unknown layer type 'Swish'"):
        registry.get("Swish")
    assert_trains(model_doc(BUILTIN_LAYERS, epochs=4))

    monkeypatch.setenv("CYNET_DISABLE_PLUGIN_AUTOLOAD", "0")
    registry.reload()
    assert registry.get("Swish").__name__ == "Swish"


LAYER_MODULE = """\
    import cynet


    class Thing(cynet.Layer):
        def forward(self, x, training=True):
            return x

        def backward(self, grad_out):
            return grad_out
    """


@pytest.mark.parametrize("claimants", [2, 3])
def test_packages_claiming_one_name_is_an_error_naming_all(tmp_path, on_path, claimants):
    site = tmp_path / "site"
    packages = ["alpha-layers", "beta-layers", "gamma-layers"][:claimants]
    for i, package in enumerate(packages):
        module = package.split("-")[0] + "_mod"
        entries = {"Twice": f"{module}:Thing", f"Only_{module}": f"{module}:Thing"}
        fake_dist(site, package, f"{i + 1}.0", entries, {module: LAYER_MODULE})
    on_path(site)
    with pytest.raises(KeyError) as info:
        registry.get("Twice")
    message = str(info.value)
    assert all(package in message for package in packages), message
    assert "claimed" in message
    assert registry.get("Only_alpha_mod").__module__ == "alpha_mod"  # the rest still works
    assert any(f.type == "Twice" for f in registry.failures())


# ------------------------------------------- plugins that misbehave while running (issue 14)

MISBEHAVING = {
    "backward returns None": ("""
        class Layer(cynet.Layer):
            def forward(self, x, training=True):
                return x

            def backward(self, grad_out):
                return None
        """, "backward returned None, but the layers before it need"),
    "forward returns another shape": ("""
        class Layer(cynet.Layer):
            def forward(self, x, training=True):
                return x[:, :1]

            def backward(self, grad_out):
                return grad_out
        """, "forward returned float32 (16, 1, 6, 6)"),
    "forward returns float64": ("""
        class Layer(cynet.Layer):
            def forward(self, x, training=True):
                return x.astype(np.float64)

            def backward(self, grad_out):
                return grad_out
        """, "forward returned float64 (16, 4, 6, 6)"),
}


@pytest.mark.parametrize("source, message", MISBEHAVING.values(), ids=MISBEHAVING.keys())
def test_a_misbehaving_plugin_is_an_error_naming_it_and_its_package(tmp_path, on_path, source,
                                                                    message):
    from cynet.network import LayerOutputError

    module = "import numpy as np\nimport cynet\n" + inspect.cleandoc(source)
    on_path(fake_dist(tmp_path / "site", "odd-pkg", "0.3", {"OddLayer": "odd_mod:Layer"},
                      {"odd_mod": module}))
    doc = model_doc(BUILTIN_LAYERS[:1] + [{"type": "OddLayer"}] + BUILTIN_LAYERS[1:])
    model = cynet.Model.from_dict(doc)
    x, y = synthetic()
    with pytest.raises(LayerOutputError, match=rf"layers\[1\] \(OddLayer from odd-pkg 0\.3\): "
                                               rf"{re.escape(message)}"):
        model.fit(x, y, epochs=1)


@pytest.mark.parametrize("raised", ["KeyboardInterrupt", "SystemExit(3)", "BaseException('x')"])
def test_a_plugin_raising_any_base_exception_at_import_is_reported(tmp_path, on_path, raised):
    on_path(fake_dist(tmp_path / "site", "rude-pkg", "1.0", {"RudeLayer": "rude_mod:Layer"},
                      {"rude_mod": f"raise {raised}\n"}))
    failure, = [f for f in registry.failures() if f.type == "RudeLayer"]
    assert failure.package == "rude-pkg" and raised.split("(")[0] in failure.error
    with pytest.raises(cynet.DefinitionError, match=r"layers\[1\]\.type.*rude-pkg"):
        cynet.Model.from_dict(model_doc(BUILTIN_LAYERS[:1] + [{"type": "RudeLayer"}]
                                        + BUILTIN_LAYERS[1:]))


@pytest.mark.parametrize("used_first", [False, True], ids=["fresh", "after_use"])
def test_registering_a_builtin_class_does_not_depend_on_earlier_use(used_first):
    # a fresh process: whether the registry has loaded ReLU yet must not matter
    code = ("import cynet\nfrom cynet.layers import ReLU\n"
            + ("cynet.registry.get('ReLU')\n" if used_first else "")
            + "cynet.register_layer()(ReLU)\nprint(cynet.registry.get('ReLU') is ReLU)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["True"], out.stderr


@pytest.mark.parametrize("where", ["__init__", "build"])
@pytest.mark.parametrize("raised", [SystemExit, KeyboardInterrupt])
def test_a_plugin_raising_any_base_exception_while_validating_is_a_definition_error(where,
                                                                                    raised):
    def fail(self, *args, **kwargs):
        raise raised("plugin says stop")

    name = f"Stopping{where.strip('_').title()}{raised.__name__}"
    cls = cynet.register_layer(name)(type(name, (cynet.Layer,), {where: fail}))
    assert cls.__name__ == name
    doc = model_doc(BUILTIN_LAYERS[:1] + [{"type": name}] + BUILTIN_LAYERS[1:])
    with pytest.raises(cynet.DefinitionError, match=rf"layers\[1\].*{raised.__name__}: "
                                                     "plugin says stop"):
        cynet.Model.from_dict(doc)
