"""cynet.memory and the shape-only build: checking a definition allocates no weights,
and training that clearly cannot fit in memory is refused, saying what it needs."""
import tracemalloc

import numpy as np
import pytest

from cynet import memory, registry
from cynet.definition import build_layers, parse, validate
from cynet.model import Model
from cynet.network import Network
from cynet.optimizers import make_optimizer
from test_cli import assert_user_error, run
from cli_fixtures import BUILTIN_TYPES, definition, write_dataset, write_json

# 40M parameters: 160 MB of weights and as much again of gradients when allocated
WIDE = {"input_shape": [1, 1, 4000],
        "layers": [{"type": "Flatten"}, {"type": "Dense", "out_features": 10_000},
                   {"type": "Dense", "out_features": 10}]}

# a terabyte of weights: no machine running these tests has it
HUGE = {"input_shape": [1, 1, 100_000],
        "layers": [{"type": "Flatten"}, {"type": "Dense", "out_features": 2_000_000},
                   {"type": "Dense", "out_features": 10}]}


def _peak_traced(call):
    """The peak of memory allocated (NumPy's arrays included) while ``call()`` runs."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_validate_allocates_no_weights():
    assert _peak_traced(lambda: validate(WIDE)) < 5_000_000


@pytest.mark.parametrize("command", ["validate", "summary"])
def test_cli_checks_a_large_definition_without_allocating_it(tmp_path, command):
    path = write_json(tmp_path / "wide.json", WIDE)
    peak = _peak_traced(lambda: run(command, path))
    result = run(command, path)
    assert result.exit_code == 0, result.output
    assert "40,110,010" in result.output  # 4000 * 10000 + 10000 + 10000 * 10 + 10
    assert peak < 5_000_000


@pytest.mark.parametrize("type_name", BUILTIN_TYPES)
def test_shape_only_build_matches_the_real_one(type_name):
    """Every built-in layer's shape-only build has the arrays of its real build (names,
    shapes, dtypes, sizes) and the same output shape, without owning their memory."""
    cls = registry.get(type_name)
    example = cls.example
    shape = [tuple(s) for s in example["input_shape"]] if cls.merges \
        else tuple(example["input_shape"])
    built = []
    for allocate in (True, False):
        layer = cls(**example["config"])
        layer.allocate = allocate
        built.append((layer, layer.build(shape)))
    (real, real_shape), (stand_in, shape) = built
    assert shape == real_shape
    for attribute in ("params", "grads", "buffers"):
        a, b = getattr(real, attribute), getattr(stand_in, attribute)
        assert sorted(a) == sorted(b), attribute
        for k in a:
            assert (a[k].shape, a[k].dtype, a[k].nbytes) == (b[k].shape, b[k].dtype,
                                                              b[k].nbytes), (attribute, k)
            if b[k].size > 1:
                assert not b[k].flags.owndata and 0 in b[k].strides, (attribute, k)


def test_a_model_too_large_for_the_machine_is_refused_before_allocating():
    with pytest.raises(memory.InsufficientMemoryError,
                       match=r"the model needs at least [0-9.]+ [GT]iB of memory \(parameters .*"
                             r"gradients .*\), but this machine has .* available") as info:
        Model.from_dict(HUGE)
    assert isinstance(info.value, MemoryError) and isinstance(info.value, ValueError)


def _network(doc):
    layers, _ = build_layers(parse(doc), 0, allocate=False)
    return Network(layers)


def test_training_need_counts_parameters_optimizer_state_and_a_batch():
    network = _network(WIDE)
    n_params = 40_110_010
    sgd = make_optimizer({"type": "sgd", "lr": 0.1, "momentum": 0.9})
    adam = make_optimizer({"type": "adam"})
    need = memory.training_need(network, (1, 1, 4000), 8, sgd)
    assert need["parameters"] == need["gradients"] == 4 * n_params
    # activations: the input and every layer's output, and twice the largest of them
    sizes = [4000, 4000, 10_000, 10]
    assert need["activations of a batch of 8"] == 8 * 4 * (sum(sizes) + 2 * 10_000)
    assert need["optimizer state"] == 4 * n_params * sgd.arrays_per_parameter()
    adam_need = memory.training_need(network, (1, 1, 4000), 8, adam)
    assert adam_need["optimizer state"] == 4 * n_params * adam.arrays_per_parameter()
    # SGD with momentum keeps a velocity, Adam two moments, at the least
    assert sgd.arrays_per_parameter() >= 1 and adam.arrays_per_parameter() >= 2


def test_check_training_refuses_what_clearly_does_not_fit():
    network = _network(WIDE)
    sgd = make_optimizer({"type": "sgd", "lr": 0.1})
    total = sum(memory.training_need(network, (1, 1, 4000), 64, sgd).values())
    memory.check_training(network, (1, 1, 4000), 64, sgd, free=total)
    with pytest.raises(memory.InsufficientMemoryError,
                       match=r"training needs at least 4.*MiB of memory \(parameters .*"
                             r"activations of a batch of 64 .*batch_size"):
        memory.check_training(network, (1, 1, 4000), 64, sgd, free=total - 1)


def test_what_the_model_already_holds_counts_as_available():
    model = Model.from_dict({**WIDE, "optimizer": {"type": "sgd", "lr": 0.1}})
    need = sum(memory.training_need(model.network, model.input_shape, 4,
                                    model.optimizer).values())
    held = 2 * 4 * 40_110_010  # parameters and gradients, allocated by the build
    memory.check_training(model.network, model.input_shape, 4, model.optimizer,
                          free=need - held)
    with pytest.raises(memory.InsufficientMemoryError):
        memory.check_training(model.network, model.input_shape, 4, model.optimizer,
                              free=need - held - 1)


@pytest.fixture
def little_memory(monkeypatch):
    """A machine with ``available`` bytes free."""
    def set_available(n):
        monkeypatch.setattr(memory, "available", lambda: n)
    return set_available


def test_fit_refuses_training_that_cannot_fit(little_memory):
    model = Model.from_dict({"input_shape": [1, 28, 28],
                             "layers": [{"type": "Conv2D", "out_channels": 64, "kernel_size": 3},
                                        {"type": "Flatten"}, {"type": "Dense", "out_features": 2}]})
    x, y = np.zeros((5, 1, 28, 28), np.float32), np.array([0, 1, 0, 1, 0])
    little_memory(0)  # all that is left is what the model holds
    # the batch is at most the data: 5 samples, not the batch_size asked for
    with pytest.raises(memory.InsufficientMemoryError, match="activations of a batch of 5 "):
        model.fit(x, y, epochs=1, batch_size=10**9)
    assert model.epoch == 0
    little_memory(2**30)
    model.fit(x, y, epochs=1, batch_size=10**9)
    assert model.epoch == 1


def test_cli_refuses_training_that_cannot_fit_and_leaves_no_run(tmp_path, little_memory):
    little_memory(256 * 2**20)  # and 6.7 MiB the model holds
    data = write_dataset(tmp_path / "d.npz", n_train=96)
    doc = definition(data=data, layers=[
        {"type": "Conv2D", "out_channels": 2000, "kernel_size": 3, "padding": 1},
        {"type": "Flatten"}, {"type": "Dense", "out_features": 3}])
    # 2000 * 12 * 12 values a sample, kept twice (conv output, flattened) and twice more
    # for the backward: a batch of 96 needs over 400 MiB, one of 4 under 20 MiB
    doc["training"]["batch_size"] = 96
    path = write_json(tmp_path / "m.json", doc)
    out = tmp_path / "run"
    assert_user_error(run("train", path, "--out", out), 2,
                      ["training needs at least", "activations of a batch of 96",
                       "262.7 MiB available", "--batch-size"])
    assert not out.exists()
    result = run("train", path, "--out", out, "--batch-size", "4", "--epochs", "1")
    assert result.exit_code == 0, result.output


def test_cli_refuses_a_model_larger_than_the_machine_but_validates_it(tmp_path):
    path = write_json(tmp_path / "m.json", HUGE)
    assert_user_error(run("train", path, "--out", tmp_path / "run"), 2,
                      ["the model needs at least", "parameters", "available"])
    result = run("validate", path)
    assert result.exit_code == 0, result.output
