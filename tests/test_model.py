"""Tests of cynet.Model: training, inference, persistence and input checking.

* A LeNet-5-like network reaches >= 95% held-out accuracy on synthetic bar images.
* The same definition, seed and data give bit-identical weights; another seed does not.
* save -> load gives identical predictions and restores BatchNorm running statistics; the
  file is a plain npz (no pickle); arrays that do not fit the model are a ValueError.
* predict runs in eval mode (no dropout, running statistics), equals a whole-batch eval
  forward and does not depend on its batch size; evaluate agrees with a loss and accuracy
  computed here from predict.
* fit: validation metrics, validation_split, callback once per epoch, mse, every optimizer
  with and without a learning-rate schedule; bad labels, shapes and uint8 inputs.
"""
import copy
import json
import math

import numpy as np
import pytest

from cynet import Model, WeightsFileError

from model_fixtures import bars, blobs, every_layer_model, lenet, model_arrays

SHAPE = (1, 8, 8)
N_CLASSES = 3


def small_model(**top):
    """Conv - BatchNorm - ReLU - MaxPool - Flatten - Dropout - Dense on 1x8x8, 3 classes."""
    doc = {
        "input_shape": list(SHAPE),
        "layers": [
            {"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "padding": 1},
            {"type": "BatchNorm2D"},
            {"type": "ReLU"},
            {"type": "MaxPool2D", "kernel_size": 2},
            {"type": "Flatten"},
            {"type": "Dropout", "p": 0.3},
            {"type": "Dense", "out_features": N_CLASSES},
        ],
        "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9},
        "training": {"epochs": 2, "batch_size": 16, "seed": 7},
    }
    doc.update(copy.deepcopy(top))
    return doc


def small_data(n=160, seed=0):
    return blobs(n, SHAPE, N_CLASSES, seed=seed)


@pytest.fixture(scope="module")
def trained_small():
    """A trained small model (BatchNorm statistics moved) and its data; do not modify."""
    model = Model.from_dict(small_model())
    x, y = small_data()
    model.fit(x, y)
    return model, x, y


def cross_entropy_metrics(out, y):
    """Mean softmax cross-entropy (float64, log-sum-exp) and accuracy of scores ``out``."""
    z = out.astype(np.float64)
    lse = np.logaddexp.reduce(z, axis=1)
    loss = float(np.mean(lse - z[np.arange(len(y)), y]))
    return loss, float(np.mean(z.argmax(axis=1) == y))


def mse_metrics(out, y):
    onehot = np.eye(out.shape[1])[y]
    loss = float(np.mean((out.astype(np.float64) - onehot) ** 2))
    return loss, float(np.mean(out.argmax(axis=1) == y))


# --------------------------------------------------------------------------- learning

def test_lenet_learns_bars():
    x, y = bars(1200, size=20, seed=1)
    x_test, y_test = bars(400, size=20, seed=2)
    model = Model.from_dict(lenet(20, training={"epochs": 3, "batch_size": 32, "seed": 0}))
    history = model.fit(x, y)
    assert len(history) == 3
    assert history[-1]["loss"] < history[0]["loss"]
    result = model.evaluate(x_test, y_test)
    assert result["accuracy"] >= 0.95, (result, history)
    predicted = model.predict(x_test).argmax(axis=1)
    assert np.mean(predicted == y_test) == pytest.approx(result["accuracy"])


def test_bars_are_not_trivial_for_an_untrained_model():
    # the bar (not noise in the labels) is what the network learns
    x_test, y_test = bars(400, size=20, seed=2)
    model = Model.from_dict(lenet(20))
    assert model.evaluate(x_test, y_test)["accuracy"] < 0.3


# --------------------------------------------------------------------------- determinism

def fitted_arrays(doc, x, y):
    model = Model.from_dict(doc)
    history = model.fit(x, y)
    return model_arrays(model), [h["loss"] for h in history]


def test_same_seed_gives_bit_identical_weights():
    x, y = small_data()
    a, loss_a = fitted_arrays(small_model(), x, y)
    b, loss_b = fitted_arrays(small_model(), x, y)
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    assert loss_a == loss_b


def test_different_seed_gives_different_weights():
    x, y = small_data()
    a, _ = fitted_arrays(small_model(), x, y)
    b, _ = fitted_arrays(small_model(training={"epochs": 2, "batch_size": 16, "seed": 8}), x, y)
    for name in a:
        if name.endswith("weight"):
            assert not np.array_equal(a[name], b[name]), name


def test_same_seed_same_initial_weights_across_definitions_files(tmp_path):
    path = tmp_path / "model.json"
    path.write_text(json.dumps(small_model()))
    a = model_arrays(Model.from_json(str(path)))
    b = model_arrays(Model.from_dict(small_model()))
    for name in a:
        assert np.array_equal(a[name], b[name]), name


# --------------------------------------------------------------------------- persistence

def test_save_load_gives_identical_predictions(trained_small, tmp_path):
    model, x, _ = trained_small
    path = tmp_path / "m.npz"
    model.save(str(path))
    loaded = Model.load(str(path))
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert loaded.predict(x).dtype == np.float32
    original = model_arrays(model)
    restored = model_arrays(loaded)
    assert original.keys() == restored.keys()
    for name in original:
        assert restored[name].dtype == original[name].dtype, name
        assert np.array_equal(restored[name], original[name]), name
    # the BatchNorm statistics were trained away from their initial values, and restored
    assert not np.allclose(original["1.buffers.running_mean"], 0)
    assert not np.allclose(original["1.buffers.running_var"], 1)


def test_saved_file_is_a_plain_npz(trained_small, tmp_path):
    model, _, _ = trained_small
    path = tmp_path / "m.npz"
    model.save(str(path))
    with np.load(str(path), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    assert all(a.dtype != object for a in arrays.values())
    # every parameter and buffer is in there, with its values
    stored = sorted(v.tobytes() for v in arrays.values() if v.dtype == np.float32)
    expected = sorted(v.tobytes() for v in model_arrays(model).values())
    assert stored == expected
    # and the definition, as a JSON string
    texts = [str(a) for a in arrays.values() if a.dtype.kind == "U"]
    docs = [d for d in map(json.loads, texts) if isinstance(d, dict) and "input_shape" in d]
    assert len(docs) == 1, texts
    doc = docs[0]
    assert doc["input_shape"] == list(SHAPE)
    assert len(doc["layers"]) == len(small_model()["layers"])
    for stored, given in zip(doc["layers"], small_model()["layers"]):
        assert stored.items() >= given.items(), (stored, given)


def test_every_layer_type_trains_and_round_trips(tmp_path):
    model = Model.from_dict(every_layer_model())
    x, y = blobs(64, (2, 12, 12), 5, seed=8)
    history = model.fit(x, y)
    assert len(history) == 2 and all(np.isfinite(h["loss"]) for h in history)
    path = tmp_path / "every.npz"
    model.save(str(path))
    loaded = Model.load(str(path))
    assert np.array_equal(loaded.predict(x), model.predict(x))


def test_loaded_model_keeps_training(trained_small, tmp_path):
    model, x, y = trained_small
    path = tmp_path / "m.npz"
    model.save(str(path))
    loaded = Model.load(str(path))
    history = loaded.fit(x, y, epochs=1)
    assert np.isfinite(history[-1]["loss"])


def _shape_mismatch(arrays):
    name = next(k for k, v in arrays.items() if v.ndim == 4)
    arrays[name] = np.zeros((2,) + arrays[name].shape[1:], np.float32)


def _missing(arrays):
    del arrays[next(k for k, v in arrays.items() if v.dtype == np.float32)]


def _extra(arrays):
    arrays["layers.99.params.weight"] = np.zeros(3, np.float32)


def _integer(arrays):
    name = next(k for k, v in arrays.items() if v.dtype == np.float32)
    arrays[name] = arrays[name].astype(np.int64)


@pytest.mark.parametrize("corrupt", [_shape_mismatch, _missing, _extra, _integer],
                         ids=["shape", "missing", "extra", "integer"])
def test_loading_arrays_that_do_not_match_raises(trained_small, tmp_path, corrupt):
    model, _, _ = trained_small
    good = tmp_path / "good.npz"
    model.save(str(good))
    with np.load(str(good), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    corrupt(arrays)
    bad = tmp_path / "bad.npz"
    np.savez(str(bad), **arrays)
    with pytest.raises(WeightsFileError, match=r"bad\.npz: the arrays do not fit the model"):
        Model.load(str(bad))


def test_loading_weights_of_another_architecture_raises(trained_small, tmp_path):
    # the arrays of one model under the definition of another
    model, _, _ = trained_small
    path = tmp_path / "m.npz"
    model.save(str(path))
    with np.load(str(path), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    doc_key = next(k for k, v in arrays.items()
                   if v.dtype.kind == "U" and "input_shape" in json.loads(str(v)))
    doc = json.loads(str(arrays[doc_key]))
    doc["layers"][0]["out_channels"] = 6
    arrays[doc_key] = np.array(json.dumps(doc))
    np.savez(str(path), **arrays)
    with pytest.raises(WeightsFileError,
                       match=r"layers\[0\]\.weight: file has \(4, 1, 3, 3\), model needs \(6, 1"):
        Model.load(str(path))


def test_loading_a_file_that_is_not_a_model(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(WeightsFileError, match="not an .npz file"):
        Model.load(str(path))
    np.savez(str(path), w=np.zeros(3))
    with pytest.raises(WeightsFileError, match="not a cynet weights file"):
        Model.load(str(path))


# --------------------------------------------------------------------------- inference

def test_predict_is_eval_mode_and_batch_size_independent(trained_small, assert_close):
    model, _, _ = trained_small
    x, _ = small_data(37, seed=3)
    before = model_arrays(model)
    reference = model.forward(x, training=False)
    out = model.predict(x)
    assert out.shape == (37, N_CLASSES) and out.dtype == np.float32
    assert_close(out, reference, what="predict vs forward")
    assert np.array_equal(model.predict(x), out)  # no dropout: repeatable
    for batch_size in (1, 4, 16, 36, 37, 500):
        assert_close(model.predict(x, batch_size=batch_size), reference,
                     what=f"batch_size={batch_size}")
    after = model_arrays(model)
    for name in before:  # predicting does not touch the running statistics
        assert np.array_equal(before[name], after[name]), name
    # eval mode differs from training mode here (dropout, batch statistics)
    training_mode = copy.deepcopy(model).forward(x, training=True)  # leaves the fixture as it is
    assert not np.allclose(training_mode, reference, atol=1e-3)


@pytest.mark.filterwarnings("ignore::cynet.input_range.InputRangeWarning")  # on purpose
def test_predict_of_one_sample_does_not_depend_on_the_batch(trained_small, assert_close):
    model, _, _ = trained_small
    x, _ = small_data(20, seed=4)
    whole = model.predict(x)
    other = x.copy()
    other[1:] = other[1:] * 5 + 3
    assert_close(model.predict(other)[:1], whole[:1])
    assert_close(model.predict(x[:1]), whole[:1])


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("batch_size", [None, 7])
def test_evaluate_agrees_with_predict(loss, batch_size):
    model = Model.from_dict(small_model(loss=loss))
    x, y = small_data(120)
    model.fit(x[:80], y[:80], epochs=1)
    result = model.evaluate(x, y, batch_size=batch_size)
    assert set(result) == {"loss", "accuracy"}
    metrics = cross_entropy_metrics if loss == "cross_entropy" else mse_metrics
    expected_loss, expected_accuracy = metrics(model.predict(x), y)
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert result["accuracy"] == pytest.approx(expected_accuracy)


# --------------------------------------------------------------------------- fit

def test_fit_history_and_callback():
    model = Model.from_dict(small_model(training={"epochs": 3, "batch_size": 32, "seed": 1}))
    x, y = small_data()
    seen = []
    history = model.fit(x, y, callback=seen.append)
    assert len(seen) == 3 and len(history) == 3  # the definition's epochs
    assert seen == history
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for h in history:
        assert set(h) == {"epoch", "loss", "accuracy", "lr", "seconds"}
        assert np.isfinite(h["loss"]) and 0 <= h["accuracy"] <= 1 and h["seconds"] >= 0
    more = []
    model.fit(x, y, epochs=2, callback=more.append)
    assert [h["epoch"] for h in more] == [4, 5]


def test_fit_epochs_and_batch_size_arguments():
    model = Model.from_dict(small_model())
    x, y = small_data(50)
    calls = []
    model.fit(x, y, epochs=1, batch_size=50, callback=calls.append)
    model.fit(x, y, epochs=0, callback=calls.append)
    assert len(calls) == 1


def test_fit_reports_its_own_loss_and_accuracy():
    # one epoch of one full batch with a learning rate too small to matter: the reported
    # metrics are those of the training-mode forward pass before the step
    doc = small_model(optimizer={"type": "sgd", "lr": 1e-12})
    doc["layers"] = [l for l in doc["layers"] if l["type"] != "Dropout"]
    model = Model.from_dict(doc)
    x, y = small_data(64)
    out = model.forward(x, training=True)
    history = model.fit(x, y, epochs=1, batch_size=64)
    loss, accuracy = cross_entropy_metrics(out, y)
    assert history[0]["loss"] == pytest.approx(loss, rel=1e-5)
    assert history[0]["accuracy"] == pytest.approx(accuracy)


def test_fit_with_validation_data(trained_small):
    model = Model.from_dict(small_model())
    x, y = small_data()
    xv, yv = small_data(50, seed=9)
    history = model.fit(x, y, validation_data=(xv, yv))
    for h in history:
        assert {"val_loss", "val_accuracy"} <= set(h)
        assert np.isfinite(h["val_loss"]) and 0 <= h["val_accuracy"] <= 1
    final = model.evaluate(xv, yv)
    assert history[-1]["val_loss"] == pytest.approx(final["loss"], rel=1e-5)
    assert history[-1]["val_accuracy"] == pytest.approx(final["accuracy"])


def test_fit_with_validation_split():
    doc = small_model(training={"epochs": 2, "batch_size": 16, "seed": 2,
                                "validation_split": 0.25})
    model = Model.from_dict(doc)
    x, y = small_data(100)
    history = model.fit(x, y)
    assert all({"val_loss", "val_accuracy"} <= set(h) for h in history)
    # the held-out part is the last quarter (fit's documented choice)
    final = model.evaluate(x[75:], y[75:])
    assert history[-1]["val_loss"] == pytest.approx(final["loss"], rel=1e-5)
    assert history[-1]["val_accuracy"] == pytest.approx(final["accuracy"])
    # accuracy over 75 training samples, 25 validation samples: multiples of 1/75, 1/25
    for h in history:
        assert h["accuracy"] * 75 == pytest.approx(round(h["accuracy"] * 75))
        assert h["val_accuracy"] * 25 == pytest.approx(round(h["val_accuracy"] * 25))


def test_fit_without_validation_has_no_val_metrics():
    model = Model.from_dict(small_model())
    x, y = small_data(40)
    assert all("val_loss" not in h and "val_accuracy" not in h for h in model.fit(x, y))


@pytest.mark.parametrize("method", ["fit", "evaluate"])
@pytest.mark.parametrize("label", [N_CLASSES + 10, -3])
def test_labels_outside_the_outputs_raise(method, label):
    model = Model.from_dict(small_model())
    x, y = small_data(30)
    y = y.copy()
    y[17] = label
    before = model_arrays(model)
    with pytest.raises(ValueError, match=str(label)):
        getattr(model, method)(x, y)
    for name, value in model_arrays(model).items():
        assert np.array_equal(value, before[name]), name  # nothing trained


@pytest.mark.parametrize("shape", [(5, 1, 8, 7), (5, 2, 8, 8), (5, 64), (1, 8, 8), (5, 8, 8, 1)])
@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_wrong_input_shape_raises(method, shape):
    model = Model.from_dict(small_model())
    x = np.zeros(shape, np.float32)
    args = (x,) if method == "predict" else (x, np.zeros(len(x), np.int64))
    with pytest.raises(ValueError, match=r"x has (per-sample )?shape"):
        getattr(model, method)(*args)


@pytest.mark.filterwarnings("ignore::cynet.input_range.InputRangeWarning")  # on purpose
def test_uint8_inputs_are_scaled_to_unit_range(trained_small, assert_close):
    model, _, _ = trained_small
    x8 = np.random.default_rng(5).integers(0, 256, (24,) + SHAPE, dtype=np.uint8)
    scaled = (x8 / 255).astype(np.float32)
    assert_close(model.predict(x8), model.predict(scaled))
    # not the raw values
    assert not np.allclose(model.predict(x8), model.predict(x8.astype(np.float32)), atol=1e-3)
    y = np.arange(24) % N_CLASSES
    a, b = model.evaluate(x8, y), model.evaluate(scaled, y)
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)


def test_uint8_predictions_equal_those_of_x_over_255_exactly(trained_small):
    """The contract's wording: a model fed uint8 x gives the same predictions as fed
    x / 255 in float32 (exactly: the same float32 inputs, the same computation)."""
    model, _, _ = trained_small
    x8 = np.resize(np.arange(256, dtype=np.uint8), (4,) + SHAPE)  # every uint8 value
    a, b = model.predict(x8), model.predict((x8 / 255).astype(np.float32))
    assert np.array_equal(a, b), (
        f"{np.count_nonzero(a != b)} of {a.size} outputs differ, by up to "
        f"{np.abs(a - b).max():.3g}")


def test_uint8_training_matches_float_training():
    x, y = small_data(64)
    x8 = np.clip(np.round((x - x.min()) / (x.max() - x.min()) * 255), 0, 255).astype(np.uint8)
    a = Model.from_dict(small_model())
    b = Model.from_dict(small_model())
    ha = a.fit(x8, y)
    hb = b.fit((x8 / 255).astype(np.float32), y)
    assert ha[-1]["loss"] == pytest.approx(hb[-1]["loss"], rel=1e-3)


def test_mse_loss_trains():
    x, y = blobs(300, (10,), 4, seed=3)
    doc = {"input_shape": [10], "layers": [{"type": "Dense", "out_features": 16},
                                           {"type": "Tanh"},
                                           {"type": "Dense", "out_features": 4}],
           "loss": "mse", "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9},
           "training": {"epochs": 8, "batch_size": 20, "seed": 0}}
    model = Model.from_dict(doc)
    start = model.evaluate(x, y)
    history = model.fit(x, y)
    end = model.evaluate(x, y)
    assert end["loss"] < 0.5 * start["loss"], (start, end)
    assert end["accuracy"] > 0.8
    assert history[-1]["loss"] < history[0]["loss"]
    expected_loss, _ = mse_metrics(model.predict(x), y)
    assert end["loss"] == pytest.approx(expected_loss, rel=1e-5)


# --------------------------------------------------------------------------- optimizers

OPTIMIZERS = {
    "sgd": {"type": "sgd", "lr": 0.05},
    "sgd_momentum": {"type": "sgd", "lr": 0.02, "momentum": 0.9},
    "sgd_nesterov_wd": {"type": "sgd", "lr": 0.02, "momentum": 0.9, "nesterov": True,
                        "weight_decay": 1e-3},
    "adam": {"type": "adam", "lr": 0.01},
    "adam_wd": {"type": "adam", "lr": 0.01, "betas": [0.8, 0.99], "weight_decay": 1e-3},
    "adamw": {"type": "adamw", "lr": 0.01, "weight_decay": 0.05},
}
SCHEDULES = {"constant": None, "step": {"type": "step", "step_size": 2, "gamma": 0.5},
             "cosine": {"type": "cosine"}}
EPOCHS = 4


def expected_lrs(base, schedule):
    """PyTorch's StepLR and CosineAnnealingLR (T_max = epochs, eta_min = 0), per epoch."""
    if schedule is None:
        return [base] * EPOCHS
    if schedule["type"] == "step":
        return [base * schedule.get("gamma", 0.1) ** (e // schedule["step_size"])
                for e in range(EPOCHS)]
    return [base * (1 + math.cos(math.pi * e / EPOCHS)) / 2 for e in range(EPOCHS)]


@pytest.mark.parametrize("schedule", SCHEDULES.values(), ids=SCHEDULES.keys())
@pytest.mark.parametrize("optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_optimizer_and_schedule_reduce_the_loss(optimizer, schedule):
    opt = dict(optimizer)
    if schedule is not None:
        opt["schedule"] = schedule
    doc = small_model(optimizer=opt, training={"epochs": EPOCHS, "batch_size": 16, "seed": 4})
    model = Model.from_dict(doc)
    x, y = small_data(120, seed=6)
    start = model.evaluate(x, y)["loss"]
    lrs = []
    history = model.fit(x, y, callback=lambda m: lrs.append(model.optimizer.lr))
    end = model.evaluate(x, y)["loss"]
    assert end < 0.6 * start, (start, end, history)
    assert history[-1]["loss"] < history[0]["loss"]
    assert lrs == pytest.approx(expected_lrs(optimizer["lr"], schedule), rel=1e-9)


@pytest.mark.parametrize("optimizer", ["sgd_momentum", "adam", "adamw"])
def test_step_schedule_to_nearly_zero_freezes_the_weights(optimizer):
    """Black-box check that the schedule is applied: after one epoch, the learning rate
    drops by 1e-6 and the weights barely move any more."""
    opt = dict(OPTIMIZERS[optimizer], schedule={"type": "step", "step_size": 1, "gamma": 1e-6})
    model = Model.from_dict(small_model(optimizer=opt))
    x, y = small_data(96, seed=2)
    snapshots = [model_arrays(model)]
    model.fit(x, y, epochs=3, callback=lambda m: snapshots.append(model_arrays(model)))

    def moved(a, b):
        return sum(float(np.abs(a[k] - b[k]).sum()) for k in a if ".params." in k)

    first, later = moved(snapshots[0], snapshots[1]), moved(snapshots[1], snapshots[3])
    assert first > 0
    assert later < 1e-3 * first, (first, later)


def test_mse_with_one_hot_targets_reports_argmax_accuracy():
    model = Model.from_dict({**small_model(), "loss": "mse"})
    x, y = small_data(40)
    one_hot = np.eye(N_CLASSES, dtype=np.float32)[y]
    scores = model.predict(x)
    expected = float(np.mean(scores.argmax(axis=1) == y))
    assert model.evaluate(x, one_hot)["accuracy"] == pytest.approx(expected)


def test_uint8_batches_scale_to_the_nearest_float32_of_value_over_255():
    from cynet.training import to_float32

    every_byte = np.arange(256, dtype=np.uint8).reshape(4, 1, 8, 8)
    got = to_float32(every_byte)
    assert got.dtype == np.float32 and got.shape == every_byte.shape
    np.testing.assert_array_equal(got, (every_byte / 255.0).astype(np.float32))


def layer_by_layer(doc, x, grad_out):
    """Output and gradients of a fresh model of ``doc`` run one layer at a time, without
    a network (so without fusion)."""
    model = Model.from_dict(doc)
    h = x
    for layer in model.layers:
        h = layer.forward(h, training=True)
    g = grad_out
    for layer in reversed(model.layers):
        g = layer.backward(g)
        if g is None:
            break
    return h, model.gradients()


def step_types(model):
    return [type(step.layer).__name__ for step in model.network.steps()]


@pytest.mark.parametrize("threads", [1, 2])
def test_relu_fused_into_max_pool_changes_no_value_or_gradient(threads, rng, restore_threads):
    # the network runs each ReLU directly followed by a MaxPool2D inside the pooling;
    # layer by layer (unfused) gives the same outputs and gradients, to the bit
    import cynet

    cynet.set_num_threads(threads)
    doc = lenet(size=16)
    model = Model.from_dict(doc)
    assert step_types(model).count("ReLU") == 2  # of four: the two before a pool are fused
    x = rng.standard_normal((9, 1, 16, 16)).astype(np.float32)
    x[0, 0, :4] = -1.0  # whole windows without a positive value
    out = model.forward(x, training=True)
    grad_out = rng.standard_normal(out.shape).astype(np.float32)
    model.backward(grad_out)
    want_out, want_grads = layer_by_layer(doc, x, grad_out)
    np.testing.assert_array_equal(out, want_out)
    for k, g in model.gradients().items():
        np.testing.assert_array_equal(g, want_grads[k], err_msg=k)


def test_only_a_relu_right_before_a_max_pool_is_fused():
    doc = lenet(size=16)
    layers = doc["layers"]
    layers[2] = {"type": "AvgPool2D", "kernel_size": 2}       # ReLU -> AvgPool2D: kept
    layers[4:5] = [{"type": "ReLU"}, {"type": "Dropout", "p": 0.1}]  # ReLU -> Dropout
    model = Model.from_dict(doc)
    assert step_types(model) == [spec["type"] for spec in layers]


def test_a_replaced_layer_takes_effect_even_when_it_reuses_the_old_ones_id(rng):
    # a layer in the ReLU's place with the ReLU's id: what CPython gives a new object
    # allocated where a freed one was, made certain here by changing the object's class
    from cynet.layers import LeakyReLU

    doc = lenet(size=16)
    model = Model.from_dict(doc)
    x = rng.standard_normal((2, 1, 16, 16)).astype(np.float32)
    model.forward(x, training=True)  # the ReLU at 1 runs inside the pool at 2
    leaky = model.layers[1]
    leaky.__class__, leaky.negative_slope = LeakyReLU, 0.5
    assert "LeakyReLU" in step_types(model)
    h = x
    for layer in model.layers:  # the pool after the LeakyReLU must not apply a ReLU
        h = layer.forward(h, training=True)
    assert (h < 0).any()
    np.testing.assert_array_equal(model.forward(x, training=True), h)


def test_the_fusion_follows_a_changed_layer_list(rng):
    from cynet.layers import ReLU

    doc = lenet(size=16)
    model = Model.from_dict(doc)
    model.layers[4] = ReLU()  # a new object: still a ReLU before a pool
    assert step_types(model).count("ReLU") == 2
    del model.layers[1]       # conv - pool: nothing to fuse there any more
    assert step_types(model).count("ReLU") == 2
    assert step_types(model)[:2] == ["Conv2D", "MaxPool2D"]
    x = rng.standard_normal((2, 1, 16, 16)).astype(np.float32)
    got = model.forward(x, training=True)
    h = x
    for layer in model.layers:
        h = layer.forward(h, training=True)
    np.testing.assert_array_equal(got, h)


@pytest.mark.parametrize("input_shape, x_shape, needle", [
    ([8, 8, 1], (4, 1, 8, 8), "input_shape [8, 8, 1] looks channels-last"),
    ([1, 8, 8], (4, 8, 8, 1), "x.transpose(0, 3, 1, 2)"),
    ([1, 8, 8], (4, 1, 8, 9), None),
])
def test_a_channels_last_mix_up_says_cynet_is_nchw(input_shape, x_shape, needle):
    doc = {"input_shape": input_shape,
           "layers": [{"type": "Flatten"}, {"type": "Dense", "out_features": 2}]}
    model = Model.from_dict(doc)
    x = np.zeros(x_shape, np.float32)
    with pytest.raises(ValueError, match="per-sample shape") as info:
        model.predict(x)
    if needle is None:
        assert "NCHW" not in str(info.value)
    else:
        assert needle in str(info.value) and "NCHW" in str(info.value)
