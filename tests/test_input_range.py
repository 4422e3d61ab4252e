"""cynet.input_range: training records how its inputs were scaled and their range;
weights files and checkpoints keep the record; predict and evaluate warn, once and in
one line on the command line, on float input far outside it. And the other warnings
training gives: more outputs than the data has classes."""
import json
import warnings

import numpy as np
import pytest

from cynet import Model, WeightsFileError, input_range
from cynet.input_range import InputRangeWarning
from cynet.training import UnusedOutputsWarning
from cli_fixtures import banded_images, definition, write_dataset, write_json
from test_cli import ok, run

DOC = {"input_shape": [1, 6, 6],
       "layers": [{"type": "Flatten"}, {"type": "Dense", "out_features": 3}],
       "training": {"epochs": 1, "batch_size": 8, "seed": 0}}


def images(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 1, 6, 6), dtype=np.uint8), rng.integers(0, 3, n)


@pytest.fixture(scope="module")
def uint8_model():
    x, y = images()
    model = Model.from_dict(DOC)
    model.fit(x, y)
    return model, x, y


def quiet(call):
    """``call()``'s result and the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [w for w in caught if issubclass(w.category, UserWarning)]


def test_training_records_the_scaling_and_the_range(uint8_model):
    model, x, _ = uint8_model
    record = model.input_range
    assert record["dtype"] == "uint8" and record["scale"] == pytest.approx(1 / 255)
    assert record["min"] == pytest.approx(x.min() / 255)
    assert record["max"] == pytest.approx(x.max() / 255)


def test_float_training_is_recorded_as_given():
    x = np.linspace(-3, 5, 24 * 36, dtype=np.float32).reshape(24, 1, 6, 6)
    model = Model.from_dict(DOC)
    model.fit(x, images()[1])
    assert model.input_range == {"dtype": "float32", "scale": 1.0, "min": -3.0, "max": 5.0}
    model.fit(x * 2, images()[1], epochs=1)  # a second call widens the record
    assert (model.input_range["min"], model.input_range["max"]) == (-6.0, 10.0)


def test_predict_warns_once_on_0_255_floats_for_a_model_trained_on_uint8(uint8_model):
    model, x, y = uint8_model
    scores, caught = quiet(lambda: model.predict(x.astype(np.float32)))
    assert len(caught) == 1 and caught[0].category is InputRangeWarning
    message = str(caught[0].message)
    assert "far outside" in message and "[0, 1]" in message and "\n" not in message
    assert caught[0].filename == __file__  # points at the caller's line
    assert scores.shape == (len(x), 3)
    _, caught = quiet(lambda: model.evaluate(x.astype(np.float32), y))
    assert [w.category for w in caught] == [InputRangeWarning]


@pytest.mark.parametrize("x", [
    pytest.param(lambda x: x, id="uint8, scaled the same way"),
    pytest.param(lambda x: x.astype(np.float32) / 255, id="float in the range"),
    pytest.param(lambda x: x.astype(np.float32) / 255 * 1.5 - 0.2, id="float a little beyond"),
])
def test_input_in_the_training_range_gives_no_warning(uint8_model, x):
    model, images_, y = uint8_model
    _, caught = quiet(lambda: model.predict(x(images_)))
    assert caught == []


def test_the_record_survives_save_and_load_and_old_files_load(uint8_model, tmp_path):
    model, x, _ = uint8_model
    model.save(tmp_path / "w.npz")
    loaded = Model.load(tmp_path / "w.npz")
    assert loaded.input_range == model.input_range
    _, caught = quiet(lambda: loaded.predict(x.astype(np.float32)))
    assert [w.category for w in caught] == [InputRangeWarning]
    # a file written before the record was kept: loads, and nothing is known to warn of
    arrays = dict(np.load(tmp_path / "w.npz", allow_pickle=False))
    meta = json.loads(arrays["cynet_meta"].item())
    del meta["inputs"]
    arrays["cynet_meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "old.npz", **arrays)
    old = Model.load(tmp_path / "old.npz")
    assert old.input_range is None
    assert quiet(lambda: old.predict(x.astype(np.float32)))[1] == []


@pytest.mark.parametrize("inputs, needle", [
    ("0-1", "inputs must be an object"),
    ({"dtype": "uint8", "scale": 1, "min": 0}, "inputs must be an object"),
    ({"dtype": "uint8", "scale": 1, "min": 0, "max": "1"}, "inputs.max"),
    ({"dtype": "uint8", "scale": 1, "min": 2, "max": 1}, "min > max"),
    ({"dtype": 8, "scale": 1, "min": 0, "max": 1}, "inputs.dtype"),
    ({"dtype": "uint8", "scale": True, "min": 0, "max": 1}, "inputs.scale"),
])
def test_a_damaged_record_is_a_weights_file_error(uint8_model, tmp_path, inputs, needle):
    model, _, _ = uint8_model
    model.save(tmp_path / "w.npz")
    arrays = dict(np.load(tmp_path / "w.npz", allow_pickle=False))
    meta = json.loads(arrays["cynet_meta"].item())
    meta["inputs"] = inputs
    arrays["cynet_meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(WeightsFileError, match=needle):
        Model.load(tmp_path / "bad.npz")


def test_merge_and_observe():
    a = input_range.observe(np.array([[0, 255]], np.uint8))
    assert (a["min"], a["max"]) == (0.0, 1.0)
    b = input_range.observe(np.array([[-2.0, 0.5]], np.float32))
    merged = input_range.merge(a, b)
    assert (merged["min"], merged["max"]) == (-2.0, 1.0)
    assert input_range.merge(None, a) == a


# --------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("ranges")
    data = write_dataset(base / "d.npz", n_train=48, n_test=24)
    model = write_json(base / "m.json", definition(data=data))
    ok(run("train", model, "--out", base / "run", "--epochs", "1"))
    return base


def test_cli_predict_and_evaluate_warn_in_one_line(trained_run, tmp_path):
    x = banded_images(8, seed=3)[0]
    np.savez(tmp_path / "floats.npz", x=x.astype(np.float32))
    result = ok(run("predict", trained_run / "run", tmp_path / "floats.npz",
                    "--out", tmp_path / "s.npz"))
    warned = [line for line in result.stderr.splitlines() if line.startswith("Warning: ")]
    assert len(warned) == 1 and "far outside" in warned[0], result.stderr
    assert "InputRangeWarning" not in result.stderr and "warnings.warn" not in result.stderr
    np.savez(tmp_path / "scaled.npz", x=x.astype(np.float32) / 255)
    result = ok(run("predict", trained_run / "run", tmp_path / "scaled.npz",
                    "--out", tmp_path / "s2.npz"))
    assert "Warning" not in result.stderr
    xs, ys = banded_images(8, seed=4)
    np.savez(tmp_path / "test.npz", x_train=xs, y_train=ys, x_test=xs.astype(np.float32),
             y_test=ys)
    result = ok(run("evaluate", trained_run / "run", "--data", tmp_path / "test.npz"))
    assert sum(line.startswith("Warning: ") for line in result.stderr.splitlines()) == 1


# --------------------------------------------------------------------------- unused outputs


def test_more_outputs_than_classes_trains_with_a_warning_naming_both():
    x, y = images()
    doc = dict(DOC, layers=[{"type": "Flatten"}, {"type": "Dense", "out_features": 10}])
    model = Model.from_dict(doc)
    history, caught = quiet(lambda: model.fit(x, y))
    assert len(history) == 1
    assert [w.category for w in caught] == [UnusedOutputsWarning]
    message = str(caught[0].message)
    assert "10 outputs" in message and "3 classes" in message
    model = Model.from_dict(DOC)  # as many outputs as classes: no warning
    assert quiet(lambda: model.fit(x, y))[1] == []


def test_cli_warns_of_more_outputs_than_classes(tmp_path):
    data = write_dataset(tmp_path / "d.npz", n_train=48, n_test=24)
    doc = definition(data=data)
    doc["layers"][-1]["out_features"] = 7
    result = ok(run("train", write_json(tmp_path / "m.json", doc), "--out", tmp_path / "r",
                    "--epochs", "1"))
    warned = [line for line in result.stderr.splitlines() if line.startswith("Warning: ")]
    assert len(warned) == 1, result.stderr
    assert "7 outputs" in warned[0] and "3 classes" in warned[0]
