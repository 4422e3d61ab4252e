"""Graph definitions (cynet.graph, API §4a): names and inputs, their checks, and what the
network does with them: outputs let go after their last reader, gradients summed where an
output fans out, fusion only where a pool is a ReLU's sole reader, arrays named by layer."""
import copy
import re

import numpy as np
import pytest

from cynet import DefinitionError, Model
from cynet.graph import INPUT, Wiring, resolve
from cynet.network import Network

STEM = [{"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "padding": 1, "name": "a"},
        {"type": "ReLU", "name": "r"}]
HEAD = [{"type": "Flatten"}, {"type": "Dense", "out_features": 3}]


def graph(*middle, input_shape=(2, 6, 6)):
    return {"input_shape": list(input_shape), "layers": copy.deepcopy(STEM) + list(middle)
            + copy.deepcopy(HEAD), "training": {"seed": 0}}


RESIDUAL = graph({"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "padding": 1},
                 {"type": "BatchNorm2D", "name": "b"},
                 {"type": "Add", "inputs": ["r", "b"]},
                 {"type": "ReLU"})


# --------------------------------------------------------------------------- checks

def bad(*middle, place, fragments):
    return pytest.param(graph(*middle), place, fragments)


BAD = {
    "unknown input, with a hint": bad({"type": "Add", "inputs": ["r", "rr"]},
                                      place="layers[2].inputs[1]",
                                      fragments=["no layer is called 'rr'", "did you mean 'r'"]),
    "a later layer": bad({"type": "Add", "inputs": ["r", "z"]}, {"type": "ReLU", "name": "z"},
                         place="layers[2].inputs[1]", fragments=["'z' comes later (layers[3])"]),
    "itself": bad({"type": "ReLU", "name": "s", "inputs": "s"}, place="layers[2].inputs",
                  fragments=["'s' is this layer itself"]),
    "duplicate name": bad({"type": "ReLU", "name": "a"}, place="layers[2].name",
                          fragments=["duplicate name 'a'", "layers[0]"]),
    "a name with a dot": bad({"type": "ReLU", "name": "x.y"}, place="layers[2].name",
                             fragments=["letters, digits and _"]),
    "a name starting with a digit": bad({"type": "ReLU", "name": "1x"}, place="layers[2].name",
                                        fragments=["'1x'"]),
    "a name that is not a string": bad({"type": "ReLU", "name": 3}, place="layers[2].name",
                                       fragments=["got 3"]),
    "the name input": bad({"type": "ReLU", "name": "input"}, place="layers[2].name",
                          fragments=["'input' names the model's input"]),
    "empty inputs": bad({"type": "ReLU", "inputs": []}, place="layers[2].inputs",
                        fragments=["non-empty list of names"]),
    "inputs not names": bad({"type": "ReLU", "inputs": [1]}, place="layers[2].inputs",
                            fragments=["non-empty list of names"]),
    "a dead branch": bad({"type": "ReLU", "name": "dead"}, {"type": "Identity", "inputs": "r"},
                         place="layers[2]", fragments=["'dead' is read by no later layer"]),
    "a merge of one input": bad({"type": "Add"}, place="layers[2]",
                                fragments=["Add merges two inputs or more"]),
    "a merge given one name": bad({"type": "Concat", "inputs": "r"}, place="layers[2].inputs",
                                  fragments=["Concat merges two inputs or more"]),
    "one-input layer given two": bad({"type": "ReLU", "inputs": ["a", "r"]},
                                     place="layers[2].inputs",
                                     fragments=["ReLU takes one input, got 2"]),
    "Add of two shapes": bad({"type": "MaxPool2D", "kernel_size": 2, "name": "p"},
                             {"type": "Add", "inputs": ["p", "r"]}, place="layers[3]",
                             fragments=["Add cannot take inputs of shapes",
                                        "(4, 3, 3)", "(4, 6, 6)"]),
    "Concat that does not fit": bad({"type": "MaxPool2D", "kernel_size": 2, "name": "p"},
                                    {"type": "Concat", "inputs": ["p", "r"]}, place="layers[3]",
                                    fragments=["agree on every other axis"]),
    "Concat along the batch": bad({"type": "Concat", "dim": 0, "inputs": ["a", "r"]},
                                  place="layers[2]", fragments=["dim must name an axis"]),
}


@pytest.mark.parametrize("doc, place, fragments", BAD.values(), ids=BAD.keys())
def test_a_wrong_graph_is_a_definition_error_at_its_place(doc, place, fragments):
    with pytest.raises(DefinitionError) as info:
        Model.from_dict(doc)
    assert info.value.place == place, str(info.value)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_the_checks_do_not_need_the_layers():
    wiring = resolve([{"type": "X"}, {"type": "Y", "name": "y"},
                      {"type": "Z", "inputs": ["input", "y", "layers.0"]}], DefinitionError)
    assert wiring.names == ("layers.0", "y", "layers.2")
    assert wiring.inputs == ((INPUT,), (0,), (INPUT, 1, 0))
    assert not wiring.is_chain() and Wiring.chain(3).is_chain()


# --------------------------------------------------------------------------- the network

def test_a_chain_keeps_its_names_and_a_graph_names_by_layer():
    chain = Model.from_dict(graph())
    assert sorted(chain.parameters()) == ["a.bias", "a.weight", "layers.3.bias",
                                          "layers.3.weight"]
    model = Model.from_dict(RESIDUAL)
    assert {"a.weight", "layers.2.weight", "b.weight", "layers.7.weight"} <= set(model.parameters())
    assert sorted(model.buffers()) == ["b.running_mean", "b.running_var"]


def _numeric_forward(model, x):
    """The residual network computed layer by layer, by hand."""
    L = model.layers
    a = L[0].forward(x)
    r = np.maximum(a, 0)
    b = L[3].forward(L[2].forward(r), training=False)
    s = np.maximum(r + b, 0)
    return L[7].forward(s.reshape(len(x), -1))


def test_forward_follows_the_inputs(rng):
    model = Model.from_dict(RESIDUAL)
    x = rng.standard_normal((3, 2, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x), _numeric_forward(model, x), rtol=1e-5,
                               atol=1e-6)


def test_a_fanned_out_output_gets_the_sum_of_its_gradients():
    """Float64 central differences of the whole residual graph, whose 'r' feeds a conv
    and the Add: the input gradient and every parameter's."""
    from cynet.testing import gradcheck_model

    result = gradcheck_model(RESIDUAL, raise_on_failure=False)
    assert result.ok and result.checked > 100, str(result)


def test_outputs_are_let_go_after_their_last_reader(rng):
    """A chain of six residual blocks: a pass holds the input and the two outputs a block
    reads at most, never every output of the chain."""
    blocks = []
    for k in range(6):
        before = "r" if k == 0 else f"s{k - 1}"
        blocks += [{"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "padding": 1,
                    "inputs": before},
                   {"type": "Add", "name": f"s{k}", "inputs": [before, f"layers.{2 + 2 * k}"]}]
    model = Model.from_dict(graph(*blocks))
    model.predict(rng.standard_normal((2, 2, 6, 6)).astype(np.float32))
    assert model.network.peak_outputs <= 3
    assert len(model.layers) == 16


def test_relu_is_fused_into_a_pool_only_where_the_pool_is_its_sole_reader(rng):
    sole = Model.from_dict(graph({"type": "MaxPool2D", "kernel_size": 2}))
    shared = Model.from_dict(graph({"type": "MaxPool2D", "kernel_size": 2, "name": "p"},
                                   {"type": "AvgPool2D", "kernel_size": 2, "inputs": "r",
                                    "name": "q"},
                                   {"type": "Add", "inputs": ["p", "q"]}))
    kinds = [[type(s.layer).__name__ for s in m.network.steps()] for m in (sole, shared)]
    assert "ReLU" not in kinds[0] and "ReLU" in kinds[1], kinds
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    for model in (sole, shared):  # fused or not, the same numbers as unfused layers
        out = model.predict(x)
        for layer in model.layers:
            layer.absorb = lambda previous: False
        np.testing.assert_array_equal(model.predict(x), out)


def test_a_graph_round_trips_through_to_dict_save_and_load(tmp_path, rng):
    model = Model.from_dict(RESIDUAL)
    doc = model.to_dict()
    assert doc["layers"][4] == {"type": "Add", "inputs": ["r", "b"]}
    assert doc["layers"][3]["name"] == "b"
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    model.fit(x, np.array([0, 2]), epochs=1, batch_size=2)
    model.save(tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz") as f:
        assert {"b.weight", "b.running_mean", "layers.2.weight"} <= set(f.files)
    loaded = Model.load(tmp_path / "w.npz")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_a_layer_named_in_an_error_is_called_by_its_name():
    model = Model.from_dict(RESIDUAL)
    assert re.fullmatch(r"layers\[3\] 'b' \(BatchNorm2D from cynet-cnn .*\)",
                        model.network.describe(model.layers[3]))


def test_a_network_without_wiring_is_a_chain():
    model = Model.from_dict(graph())
    network = Network(model.layers)
    assert network.wiring.is_chain()
