"""The second-wave training options end to end: the learning rate of each epoch with a
warm-up, label smoothing as PyTorch's, best.npz, early stopping, honest names for the
held-out figures, and what ``cynet evaluate`` and ``cynet plot --confusion`` report.
(Augmentation has its own tests in test_augment.py; resuming a run that uses all of
these, killed mid-epoch, is in test_resume.py.)"""
import json
import math

import numpy as np
import pytest

import cynet
from cli_fixtures import definition, load_npz, read_metrics, write_dataset, write_json
from cynet import training
from cynet.schedules import CosineSchedule, StepSchedule, lr_with_warmup
from test_cli import assert_user_error, ok, parse_scores, run


# ------------------------------------------------------------------ warm-up and lr


@pytest.mark.parametrize("schedule", [CosineSchedule(), StepSchedule(2, 0.5)])
@pytest.mark.parametrize("warmup", [0, 1, 3])
def test_warmup_is_linear_then_the_schedule_over_the_remaining_epochs(schedule, warmup):
    epochs, base = 8, 0.1
    got = [lr_with_warmup(schedule, base, e, epochs, warmup) for e in range(epochs)]
    want = [base * (e + 1) / (warmup + 1) for e in range(warmup)]
    want += [schedule.lr_at(base, e, epochs - warmup) for e in range(epochs - warmup)]
    assert got == pytest.approx(want, rel=1e-15)
    if warmup:
        assert got[warmup - 1] < base == pytest.approx(got[warmup])


def test_metrics_record_the_learning_rate_of_each_epoch(tmp_path):
    data = write_dataset(tmp_path / "d.npz")
    doc = definition(data=data)
    doc["optimizer"] = {"type": "sgd", "lr": 0.08, "momentum": 0.9,
                        "schedule": {"type": "cosine"}}
    doc["training"].update(epochs=5, warmup_epochs=2)
    out = tmp_path / "run"
    result = ok(run("train", write_json(tmp_path / "m.json", doc), "--out", out))
    lrs = [m["lr"] for m in read_metrics(out)]
    want = [0.08 / 3, 0.08 * 2 / 3] + [0.08 * (1 + math.cos(math.pi * e / 3)) / 2
                                       for e in range(3)]
    assert lrs == pytest.approx(want, rel=1e-12)
    assert f"lr {want[0]:.4g}" in result.stderr


# ------------------------------------------------------------------ label smoothing


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.35, 1.0])
def test_label_smoothing_is_pytorchs(smoothing, dtype, rng, assert_close):
    torch = pytest.importorskip("torch")
    logits = (rng.standard_normal((9, 6)) * 4).astype(dtype)
    labels = rng.integers(0, 6, 9)
    loss, grad = cynet.losses.cross_entropy(logits, labels, label_smoothing=smoothing)
    t = torch.from_numpy(logits.copy()).requires_grad_(True)
    tl = torch.nn.functional.cross_entropy(t, torch.from_numpy(labels), label_smoothing=smoothing)
    tl.backward()
    assert loss == pytest.approx(tl.item(), rel=1e-6 if dtype is np.float32 else 1e-13)
    assert_close(grad, t.grad.numpy(), dtype, "grad")


def test_label_smoothing_gradient_matches_finite_differences(rng, numerical_grad,
                                                             assert_close):
    logits = rng.standard_normal((4, 5))
    labels = rng.integers(0, 5, 4)

    def loss():
        return cynet.losses.cross_entropy(logits, labels, label_smoothing=0.2)[0]

    grad = cynet.losses.cross_entropy(logits, labels, label_smoothing=0.2)[1]
    assert_close(grad, numerical_grad(loss, logits, 1e-5), np.float64, "grad", rtol=1e-7)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_label_smoothing_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="label_smoothing"):
        cynet.losses.cross_entropy(np.zeros((2, 3)), [0, 1], label_smoothing=bad)


def test_a_model_trains_with_the_smoothed_loss():
    doc = definition()
    doc["training"]["label_smoothing"] = 0.2
    model = cynet.Model.from_dict(doc)
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 1, 12, 12), dtype=np.float32), rng.integers(0, 3, 8)
    out = model.predict(x)
    expected = cynet.losses.cross_entropy(out, y, label_smoothing=0.2)[0]
    assert model.evaluate(x, y)["loss"] == pytest.approx(expected, rel=1e-6)
    assert expected != pytest.approx(cynet.losses.cross_entropy(out, y)[0], rel=1e-3)


# ------------------------------------------------ honest names, best.npz, stopping


def _same_arrays(a, b):
    a, b = load_npz(a), load_npz(b)
    return sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


def _split_run(tmp_path, **training_options):
    data = write_dataset(tmp_path / "d.npz", n_train=200, n_test=60, noise_labels=0.3)
    doc = definition(data=data)
    doc["training"].update(epochs=6, validation_split=0.25, **training_options)
    out = tmp_path / "run"
    result = ok(run("train", write_json(tmp_path / "m.json", doc), "--out", out))
    return data, doc, out, result


def test_no_validation_split_names_the_held_out_figures_test(tmp_path):
    data = write_dataset(tmp_path / "d.npz")
    out = tmp_path / "run"
    result = ok(run("train", write_json(tmp_path / "m.json", definition(data=data)),
                    "--out", out))
    for m in read_metrics(out):
        assert {"test_loss", "test_accuracy"} <= set(m)
        assert "val_loss" not in m and "val_accuracy" not in m
    assert "val_" not in result.stderr and "test_accuracy" in result.stderr
    assert "selected on the test split" in result.stderr  # best.npz says how it was chosen


def test_validation_figures_are_never_computed_on_the_test_split(tmp_path, monkeypatch):
    seen = []
    evaluate = training.evaluate

    def spy(model, x, y, batch_size=None):
        seen.append(x)
        return evaluate(model, x, y, batch_size)

    monkeypatch.setattr(training, "evaluate", spy)
    data, doc, out, result = _split_run(tmp_path)
    arrays = load_npz(data)
    n_val = training.validation_count(len(arrays["x_train"]), 0.25)
    held = arrays["x_train"][-n_val:, None]
    # one validation per epoch on the held-out training images, then the final test
    # evaluation, which is reported as the test split's
    epochs = doc["training"]["epochs"]
    assert len(seen) == epochs + 1
    for x in seen[:epochs]:
        assert x.shape == held.shape and np.array_equal(x, held)
    assert np.array_equal(seen[-1], arrays["x_test"][:, None])
    assert parse_scores(result.stdout, "test ")
    for m in read_metrics(out):
        assert {"val_loss", "val_accuracy"} <= set(m) and "test_loss" not in m


def test_best_npz_holds_the_epoch_with_the_best_validation_accuracy(tmp_path):
    data, doc, out, result = _split_run(tmp_path)
    metrics = read_metrics(out)
    accuracies = [m["val_accuracy"] for m in metrics]
    best = int(np.argmax(accuracies))  # the first of equal bests
    arrays = load_npz(data)
    n_val = training.validation_count(len(arrays["x_train"]), 0.25)
    model = cynet.Model.load(out / "best.npz")
    scores = model.evaluate(arrays["x_train"][-n_val:, None], arrays["y_train"][-n_val:])
    assert scores["accuracy"] == pytest.approx(accuracies[best])
    assert scores["loss"] == pytest.approx(metrics[best]["val_loss"], rel=1e-6)
    assert f"best epoch {best + 1} by val_accuracy" in result.stderr
    if best < len(metrics) - 1:  # a later epoch's weights are not the best
        assert not _same_arrays(out / "best.npz", out / "weights.npz")


@pytest.mark.parametrize("monitor", ["val_loss", "val_accuracy"])
def test_early_stopping_ends_after_patience_epochs_without_improvement(tmp_path, monitor):
    # no epoch can improve by more than min_delta = 10: the first is the best
    _, doc, out, result = _split_run(tmp_path, early_stopping={
        "monitor": monitor, "patience": 2, "min_delta": 10})
    metrics = read_metrics(out)
    assert [m["epoch"] for m in metrics] == [1, 2, 3]
    assert f"early stopping after epoch 3: {monitor} has not improved" in result.stderr
    assert "best epoch 1" in result.stderr
    # the final weights are the last epoch's, best.npz the first's
    assert not _same_arrays(out / "weights.npz", out / "best.npz")


def test_early_stopping_with_patience_beyond_the_epochs_trains_them_all(tmp_path):
    _, doc, out, result = _split_run(tmp_path, early_stopping={"patience": 100})
    assert len(read_metrics(out)) == doc["training"]["epochs"]
    assert "early stopping" not in result.stderr


def test_library_fit_stops_early_too():
    doc = definition()
    doc["training"].update(epochs=5, validation_split=0.25,
                           early_stopping={"monitor": "val_loss", "patience": 1,
                                           "min_delta": 10})
    model = cynet.Model.from_dict(doc)
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 1, 12, 12), dtype=np.float32), rng.integers(0, 3, 40)
    assert [m["epoch"] for m in model.fit(x, y)] == [1, 2]
    assert model.fit(x, y, epochs=3) and model.epoch == 2  # still stopped


# ------------------------------------------------------------- definition errors


@pytest.mark.parametrize("training_options, top, place, words", [
    ({"early_stopping": {"patience": 2}}, {}, "training.early_stopping",
     ["validation_split", "test set"]),
    ({"validation_split": 0.2, "early_stopping": {"monitor": "test_accuracy"}}, {},
     "training.early_stopping.monitor", ["val_accuracy"]),
    ({"validation_split": 0.2, "early_stopping": {"patience": 0}}, {},
     "training.early_stopping.patience", ["1"]),
    ({"validation_split": 0.2, "early_stopping": {"patiense": 2}}, {},
     "training.early_stopping.patiense", ["did you mean 'patience'"]),
    ({"label_smoothing": 0.1}, {"loss": "mse"}, "training.label_smoothing",
     ["cross_entropy"]),
    ({"label_smoothing": 1.5}, {}, "training.label_smoothing", ["1.5"]),
    ({"warmup_epochs": -1}, {}, "training.warmup_epochs", ["-1"]),
    ({"augment": {"random_erasing": {"p": 2}}}, {}, "training.augment.random_erasing.p",
     ["2"]),
    ({"augment": {"horizontal_flipp": True}}, {}, "training.augment.horizontal_flipp",
     ["horizontal_flip"]),
    ({"augment": {"random_crop": {"padding": -2}}}, {}, "training.augment.random_crop.padding",
     ["-2"]),
])
def test_bad_training_options_are_definition_errors(training_options, top, place, words):
    doc = definition(**top)
    doc["training"].update(training_options)
    with pytest.raises(cynet.DefinitionError) as info:
        cynet.Model.from_dict(doc)
    assert info.value.place == place, str(info.value)
    for word in words:
        assert word in str(info.value)


def test_the_cli_refuses_early_stopping_on_the_test_split(tmp_path):
    doc = definition(data=write_dataset(tmp_path / "d.npz"))
    doc["training"]["early_stopping"] = {"patience": 2}
    result = run("train", write_json(tmp_path / "m.json", doc), "--out", tmp_path / "run")
    assert_user_error(result, 2, ["training.early_stopping", "validation_split"])
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ evaluate, plot


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("evaluated")
    data = write_dataset(base / "d.npz", n_train=150, n_test=61)
    out = base / "run"
    ok(run("train", write_json(base / "m.json", definition(data=data)), "--out", out))
    arrays = load_npz(data)
    return out, arrays["x_test"][:, None], arrays["y_test"]


def _confusion(model, x, y):
    predicted = model.predict(x).argmax(axis=1)
    k = model.n_outputs
    matrix = np.zeros((k, k), np.int64)
    for t, p in zip(y, predicted):  # the obviously-right count
        matrix[t, p] += 1
    return matrix


def test_evaluate_names_what_it_evaluated_and_prints_per_class_figures(trained):
    out, x, y = trained
    model = cynet.Model.load(out / "weights.npz")
    matrix = _confusion(model, x, y)
    text = ok(run("evaluate", out)).stdout
    lines = text.splitlines()
    assert str(out / "model.json") in lines[0] and str(out / "weights.npz") in lines[0]
    assert "61 test images" in lines[0]
    loss, accuracy = parse_scores(text)
    assert accuracy == pytest.approx(np.trace(matrix) / len(y), abs=1e-4)
    per_class = lines[lines.index("per-class accuracy:") + 1:][:len(matrix)]
    for k, line in enumerate(per_class):
        share = matrix[k, k] / matrix[k].sum()
        assert line.split()[:2] == [str(k), f"{share:.4f}"]
        assert f"({matrix[k].sum()} images)" in line
    start = lines.index("confusion matrix (rows: true class, columns: predicted class):") + 2
    rows = [[int(v) for v in line.split()[1:]] for line in lines[start:start + len(matrix)]]
    assert np.array_equal(rows, matrix)


def test_evaluate_json_is_machine_readable(trained):
    out, x, y = trained
    model = cynet.Model.load(out / "best.npz")
    report = json.loads(ok(run("evaluate", out / "best.npz", "--json")).stdout)
    assert report["weights"] == str(out / "best.npz") and report["model"] is None
    assert report["images"] == len(y)
    assert report["accuracy"] == pytest.approx(model.evaluate(x, y)["accuracy"])
    assert report["loss"] == pytest.approx(model.evaluate(x, y)["loss"], rel=1e-6)
    matrix = _confusion(model, x, y)
    assert report["confusion_matrix"] == matrix.tolist()
    assert report["per_class_accuracy"] == pytest.approx(
        list(np.diag(matrix) / matrix.sum(axis=1)))


def test_plot_confusion_writes_a_png_and_data_needs_it(trained, tmp_path):
    pytest.importorskip("matplotlib")
    out, _, _ = trained
    target = tmp_path / "c.png"
    result = ok(run("plot", out, "--confusion", "--out", target))
    assert str(target) in result.stdout
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert_user_error(run("plot", out, "--data", "fashion-mnist-mini"), 2, ["--confusion"])


# ------------------------------------------------------- --resume --lr, --overwrite


def test_resume_with_lr_changes_the_rate_and_records_it(tmp_path):
    doc = definition(data=write_dataset(tmp_path / "d.npz"))
    model = write_json(tmp_path / "m.json", doc)
    out = tmp_path / "run"
    ok(run("train", model, "--epochs", 1, "--out", out))
    ok(run("train", model, "--epochs", 2, "--resume", out, "--lr", 0.004))
    ok(run("train", model, "--epochs", 3, "--resume", out))  # the new rate is kept
    metrics = read_metrics(out)
    assert [m["lr"] for m in metrics] == [0.05, 0.004, 0.004]
    assert "lr_override" not in metrics[0]
    assert [m.get("lr_override") for m in metrics[1:]] == [0.004, 0.004]
    assert json.loads((out / "model.json").read_text())["optimizer"]["lr"] == 0.004
    # any other change is still refused
    assert_user_error(run("train", model, "--epochs", 4, "--resume", out, "--batch-size", 8),
                      2, ["batch_size"])


def test_overwrite_replaces_a_run_and_keeps_other_files(tmp_path):
    doc = definition(data=write_dataset(tmp_path / "d.npz"))
    model = write_json(tmp_path / "m.json", doc)
    out = tmp_path / "run"
    ok(run("train", model, "--epochs", 3, "--out", out))
    (out / "notes.txt").write_text("mine")
    refused = run("train", model, "--epochs", 1, "--out", out)
    assert_user_error(refused, 2, ["already holds a run", "--overwrite"])
    ok(run("train", model, "--epochs", 1, "--out", out, "--overwrite"))
    assert [m["epoch"] for m in read_metrics(out)] == [1]
    assert (out / "notes.txt").read_text() == "mine"
    assert_user_error(run("train", model, "--overwrite"), 2, ["--overwrite", "--out"])


# ------------------------------------------------------------------ cynet schema


def test_schema_is_valid_and_accepts_every_shipped_definition(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    import glob
    import os

    schema = json.loads(ok(run("schema")).stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    models = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")
    files = sorted(glob.glob(os.path.join(models, "*.json")))
    assert len(files) >= 4
    for path in files:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        assert not list(validator.iter_errors(doc)), path
    # the second-wave forms and options too
    doc = definition()
    doc["layers"][0].update(padding=[[0, 1], [1, 0]], padding_mode="reflect", name="c")
    doc["layers"][1]["inputs"] = "c"
    doc["training"].update(validation_split=0.1, warmup_epochs=1, label_smoothing=0.1,
                           augment={"random_crop": {"padding": 2}, "horizontal_flip": True,
                                    "random_erasing": {"p": 0.3, "value": "random"}},
                           early_stopping={"monitor": "val_loss", "patience": 3})
    assert not list(validator.iter_errors(doc))
    cynet.Model.from_dict(doc)  # and cynet agrees


@pytest.mark.parametrize("change", [
    lambda d: d["layers"][0].update(kernal_size=3),
    lambda d: d["layers"][0].update(padding=1.5),
    lambda d: d["layers"][1].update(type="Relu"),
    lambda d: d["layers"][2].update(inputs=7),
    lambda d: d["training"].update(augment={"random_crop": {"padding": 0}}),
    lambda d: d["training"].update(augment={"flip": True}),
])
def test_schema_refuses_what_cynet_refuses(change):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(ok(run("schema")).stdout)
    doc = definition()
    change(doc)
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    with pytest.raises((cynet.DefinitionError, ValueError, TypeError)):
        cynet.Model.from_dict(doc)


# ------------------------------------------------------------------ --init


def test_init_starts_from_the_given_weights(tmp_path):
    doc = definition(data=write_dataset(tmp_path / "d.npz"))
    model = write_json(tmp_path / "m.json", doc)
    first = tmp_path / "first"
    ok(run("train", model, "--epochs", 2, "--out", first))
    # a learning rate too small to move anything: the run ends where it started
    tuned = tmp_path / "tuned"
    ok(run("train", model, "--epochs", 1, "--lr", 1e-30, "--init", first, "--out", tuned))
    start, end = load_npz(first / "weights.npz"), load_npz(tuned / "weights.npz")
    params = [k for k in start if k.startswith("layers.")]
    assert params and all(np.array_equal(start[k], end[k]) for k in params)
    # ...and from a weights file, the same
    again = tmp_path / "again"
    ok(run("train", model, "--epochs", 1, "--lr", 1e-30, "--init", first / "weights.npz",
           "--out", again))
    assert all(np.array_equal(start[k], load_npz(again / "weights.npz")[k]) for k in params)


def test_init_with_weights_of_another_model_or_with_resume_is_refused(tmp_path):
    data = write_dataset(tmp_path / "d.npz")
    small = write_json(tmp_path / "m.json", definition(data=data))
    other_doc = definition(data=data)
    other_doc["layers"][0]["out_channels"] = 6
    other = write_json(tmp_path / "o.json", other_doc)
    first = tmp_path / "first"
    ok(run("train", small, "--epochs", 1, "--out", first))
    assert_user_error(run("train", other, "--init", first, "--out", tmp_path / "x"), 2,
                      ["do not fit the model", "(4, 1, 3, 3)", "(6, 1, 3, 3)"])
    assert not (tmp_path / "x").exists()
    assert_user_error(run("train", small, "--init", first, "--resume", first), 2,
                      ["--init", "--resume"])
