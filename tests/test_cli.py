"""The ``cynet`` command line, in-process with click's CliRunner.

Every verb on tiny models and tiny synthetic ``.npz`` datasets written to temporary
folders (one smoke test uses the packaged fashion-mnist-mini): what each writes and
prints, and a table of user errors per verb, each of which must end with the documented
exit status and exactly one ``Error: ...`` line naming the problem, never a traceback.
Real subprocesses (kill, Ctrl-C, exact resume) are in test_resume.py.
"""
import json
import math
import re
import shlex
import traceback
import uuid
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import cynet
from cynet import registry
from cynet.cli import main
from cli_fixtures import (BUILTIN_TYPES, METRIC_KEYS, N_CLASSES, RUN_FILES, SMALL,
                          WITH_DROPOUT, OnPath, banded_images, definition, epoch_lines,
                          error_lines, fake_distribution, load_npz, read_metrics,
                          write_dataset, write_json)

# variables of the caller's environment that would change what the CLI does
CLEAN_ENV = {"CYNET_DEBUG": None, "CYNET_DISABLE_PLUGIN_AUTOLOAD": None}


def run(*args, env=None, **kwargs):
    """``cynet ARGS...`` in-process; stdout and stderr are kept apart."""
    full_env = dict(CLEAN_ENV)
    full_env.update(env or {})
    return CliRunner().invoke(main, [str(a) for a in args], env=full_env, **kwargs)


def describe(result):
    return (f"exit {result.exit_code}, exception {result.exception!r}\n"
            f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}")


def ok(result):
    assert result.exit_code == 0, describe(result)
    assert "Traceback" not in result.output
    return result


def assert_user_error(result, code, needles):
    """Exit ``code``, exactly one ``Error:`` line (on stderr) containing every needle (a
    string, or a compiled regex), no traceback and no exception escaping click."""
    assert result.exit_code == code, describe(result)
    assert result.exception is None or isinstance(result.exception, SystemExit), describe(result)
    assert "Traceback" not in result.output, describe(result)
    errors = error_lines(result.stderr)
    assert len(errors) == 1, describe(result)
    assert not error_lines(result.stdout), describe(result)
    line = errors[0]
    # the error comes last; a user error is not reported as an internal error
    assert result.stderr.rstrip("\n").splitlines()[-1] == line, describe(result)
    assert "internal error" not in line, describe(result)
    for needle in needles:
        if isinstance(needle, re.Pattern):
            assert needle.search(line), f"{needle.pattern!r} not in {line!r}"
        else:
            assert needle in line, f"{needle!r} not in {line!r}"
    return line


def parse_scores(text, prefix=""):
    """(loss, accuracy) from ``loss 0.1234  accuracy 0.5678`` (after ``prefix``)."""
    match = re.search(rf"{prefix}loss\s+([-\d.naif]+)\s+{prefix}accuracy\s+([\d.]+)", text)
    assert match, f"no '{prefix}loss ... {prefix}accuracy ...' in {text!r}"
    return float(match.group(1)), float(match.group(2))


def weights_equal(a, b):
    arrays_a, arrays_b = load_npz(a), load_npz(b)
    assert sorted(arrays_a) == sorted(arrays_b)
    return {k: np.array_equal(arrays_a[k], arrays_b[k]) for k in arrays_a}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for key in CLEAN_ENV:
        monkeypatch.delenv(key, raising=False)


class Toy:
    """A tiny dataset, a definition using it and one finished 3-epoch run of it."""

    def __init__(self, base):
        self.base = base
        self.data = write_dataset(base / "toy.npz")
        self.other_data = write_dataset(base / "other.npz", n_train=40, n_test=30, seed=7)
        self.doc = definition(data=self.data)
        self.model = write_json(base / "toy.json", self.doc)
        self.run_dir = base / "toy-run"
        self.train = ok(run("train", self.model, "--out", self.run_dir))
        arrays = load_npz(self.data)
        self.x_test, self.y_test = arrays["x_test"], arrays["y_test"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return Toy(tmp_path_factory.mktemp("toy"))


@pytest.fixture
def on_path():
    helper = OnPath()
    yield helper
    helper.close()


@pytest.fixture
def isolated_script_layers(monkeypatch):
    """``register_layer`` has no public inverse: give the test a copy of the registry's
    table of script-registered layers, so its registrations vanish afterwards."""
    monkeypatch.setattr(registry._registry, "_script", {})


# --------------------------------------------------------------------------- version, help

SUBCOMMAND_OPTIONS = {
    "train": ["--data", "--epochs", "--batch-size", "--lr", "--seed", "--out", "--resume"],
    "evaluate": ["--data", "--json"],
    "predict": ["--out"],
    "summary": [],
    "validate": [],
    "layers": [],
    "gradcheck": [],
}


def test_version():
    result = ok(run("--version"))
    assert "cynet" in result.stdout
    assert cynet.__version__ in result.stdout


def test_group_help_lists_every_subcommand_and_debug():
    result = ok(run("--help"))
    for name in SUBCOMMAND_OPTIONS:
        assert re.search(rf"^\s+{name}\b", result.stdout, re.M), f"{name} not in help"
    assert "--debug" in result.stdout and "--version" in result.stdout


@pytest.mark.parametrize("command", sorted(SUBCOMMAND_OPTIONS))
def test_subcommand_help(command):
    result = ok(run(command, "--help"))
    assert result.stdout.startswith(f"Usage: cynet {command}") or \
        f"Usage: main {command}" in result.stdout, result.stdout
    for option in SUBCOMMAND_OPTIONS[command]:
        assert option in result.stdout, f"{option} missing from `cynet {command} --help`"


# --------------------------------------------------------------------------- train


def test_train_writes_the_run_directory_with_the_overrides_applied(tmp_path, toy):
    out = tmp_path / "run"
    result = ok(run("train", toy.model, "--epochs", 2, "--lr", 0.1, "--seed", 5,
                    "--batch-size", 16, "--out", out))

    # and the lock file (cynet.rundir), which stays
    assert sorted(p.name for p in out.iterdir()) == sorted(RUN_FILES + (".lock",)), \
        "stray files (temporaries?)"

    # model.json: the definition as trained, after the overrides
    trained = json.loads((out / "model.json").read_text())
    assert trained["training"]["epochs"] == 2
    assert trained["training"]["batch_size"] == 16
    assert trained["training"]["seed"] == 5
    assert trained["optimizer"]["lr"] == 0.1
    assert trained["optimizer"]["type"] == "sgd" and trained["optimizer"]["momentum"] == 0.9
    assert trained["layers"] == SMALL["layers"]
    assert trained["input_shape"] == SMALL["input_shape"]
    assert trained["data"] == str(toy.data)

    # metrics.jsonl: one object per epoch with the seven keys
    metrics = read_metrics(out)
    assert [m["epoch"] for m in metrics] == [1, 2]
    for m in metrics:
        assert METRIC_KEYS <= set(m), m
        assert all(math.isfinite(m[k]) for k in METRIC_KEYS), m
        assert 0 <= m["accuracy"] <= 1 and 0 <= m["test_accuracy"] <= 1
        assert "val_loss" not in m and "val_accuracy" not in m  # not validation
        assert m["seconds"] >= 0 and m["loss"] >= 0

    # weights.npz: plain arrays, the model of the last epoch
    arrays = load_npz(out / "weights.npz")
    assert arrays and all(a.dtype != object for a in arrays.values())
    model = cynet.Model.load(out / "weights.npz")
    assert model.definition.training["batch_size"] == 16
    expected = model.evaluate(toy.x_test[:, None], toy.y_test)
    # validation_split 0: the held-out metrics are the test split's, and named so; here of
    # the final weights
    assert metrics[-1]["test_loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert metrics[-1]["test_accuracy"] == pytest.approx(expected["accuracy"])

    # checkpoint.npz: readable without pickle
    assert load_npz(out / "checkpoint.npz")

    # stdout: the test accuracy at the end
    test_loss, test_accuracy = parse_scores(result.stdout, "test ")
    assert test_accuracy == pytest.approx(expected["accuracy"], abs=1e-4)
    assert test_loss == pytest.approx(expected["loss"], abs=1e-4)

    # stderr (not a terminal): one plain line per epoch, no carriage returns
    assert "\r" not in result.stderr and "\r" not in result.stdout
    lines = epoch_lines(result.stderr)
    assert len(lines) == 2, result.stderr
    for n, (line, m) in enumerate(zip(lines, metrics), start=1):
        assert line.startswith(f"epoch {n}/2"), line
        assert f"{m['loss']:.4f}" in line and f"{m['accuracy']:.4f}" in line, line
        assert f"test_loss {m['test_loss']:.4f}" in line, line
        assert f"test_accuracy {m['test_accuracy']:.4f}" in line and "val_" not in line, line
        assert re.search(r"\d+(\.\d+)?\s*s\b", line) and "img/s" in line, line


def test_train_is_reproducible_with_a_seed(tmp_path, toy):
    for name in ("a", "b"):
        ok(run("train", toy.model, "--epochs", 2, "--seed", 3, "--out", tmp_path / name))
    same = weights_equal(tmp_path / "a" / "weights.npz", tmp_path / "b" / "weights.npz")
    assert all(same.values()), same
    losses = [[m["loss"] for m in read_metrics(tmp_path / n)] for n in ("a", "b")]
    assert losses[0] == losses[1]


def test_data_option_overrides_the_definitions_data(tmp_path, toy):
    model = write_json(tmp_path / "elsewhere.json", definition(data=tmp_path / "nowhere.npz"))
    out = tmp_path / "run"
    ok(run("train", model, "--data", toy.other_data, "--epochs", 1, "--out", out))
    assert json.loads((out / "model.json").read_text())["data"] == str(toy.other_data)


def test_train_without_out_writes_runs_model_name_date_time(tmp_path, toy, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ok(run("train", toy.model, "--epochs", 1))
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1, runs
    stem = Path(toy.model).stem
    assert runs[0].name.startswith(f"{stem}-") and re.search(r"\d{4}", runs[0].name), runs[0]
    assert {p.name for p in runs[0].iterdir()} >= set(RUN_FILES)


def test_resume_raising_epochs_equals_a_straight_run(tmp_path):
    data = write_dataset(tmp_path / "d.npz", n_train=64, n_test=16)
    model = write_json(tmp_path / "m.json", definition(WITH_DROPOUT, data=data))
    ok(run("train", model, "--epochs", 3, "--out", tmp_path / "straight"))
    ok(run("train", model, "--epochs", 1, "--out", tmp_path / "split"))
    ok(run("train", model, "--epochs", 3, "--resume", tmp_path / "split"))
    same = weights_equal(tmp_path / "straight" / "weights.npz", tmp_path / "split" / "weights.npz")
    assert all(same.values()), same
    assert [m["epoch"] for m in read_metrics(tmp_path / "split")] == [1, 2, 3]


def test_interrupted_run_continues_with_the_command_it_suggests(tmp_path, toy, monkeypatch):
    """Ctrl-C (KeyboardInterrupt) in epoch 2 of a run started with command-line overrides:
    exit 130, and the command printed to continue must work and reach the weights of an
    uninterrupted run."""
    model = write_json(tmp_path / "nodata.json", definition(WITH_DROPOUT))  # no "data"
    overrides = ["--data", toy.data, "--epochs", 3, "--lr", 0.03, "--batch-size", 16,
                 "--seed", 11]
    ok(run("train", model, *overrides, "--out", tmp_path / "straight"))

    steps = {"n": 0}
    original = cynet.Model.train_step

    def interrupted_step(self, xb, yb):
        steps["n"] += 1
        if steps["n"] == 96 // 16 + 3:  # the third batch of epoch 2
            raise KeyboardInterrupt
        return original(self, xb, yb)

    monkeypatch.setattr(cynet.Model, "train_step", interrupted_step)
    result = run("train", model, *overrides, "--out", tmp_path / "run")
    monkeypatch.setattr(cynet.Model, "train_step", original)
    assert result.exit_code == 130, describe(result)
    assert "Traceback" not in result.output
    assert [m["epoch"] for m in read_metrics(tmp_path / "run")] == [1]
    match = re.search(r"cynet (train .*--resume \S+)", result.stderr)
    assert match, f"no resume command in {result.stderr!r}"
    suggested = shlex.split(match.group(1))

    resumed = run(*suggested)
    assert resumed.exit_code == 0, (f"the suggested command `cynet {match.group(1)}` "
                                    f"failed:\n{describe(resumed)}")
    same = weights_equal(tmp_path / "straight" / "weights.npz", tmp_path / "run" / "weights.npz")
    assert all(same.values()), same


def test_smoke_train_on_the_packaged_dataset(tmp_path):
    from cynet.data import DataError, load_data

    try:
        load_data("fashion-mnist-mini")
    except DataError as exc:
        pytest.skip(f"the packaged dataset is not installed: {exc}")
    doc = {
        "input_shape": [1, 28, 28],
        "layers": [
            {"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "stride": 2},
            {"type": "ReLU"},
            {"type": "MaxPool2D", "kernel_size": 2},
            {"type": "Flatten"},
            {"type": "Dense", "out_features": 10},
        ],
        "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9},
        "training": {"epochs": 3, "batch_size": 64, "seed": 0},
    }
    model = write_json(tmp_path / "smoke.json", doc)
    result = ok(run("train", model, "--epochs", 1, "--out", tmp_path / "run"))
    _, accuracy = parse_scores(result.stdout, "test ")
    assert accuracy > 0.3, result.stdout  # 10 classes: well above chance after one epoch
    assert len(epoch_lines(result.stderr)) == 1
    assert "fashion-mnist-mini" in result.stderr


# --------------------------------------------------------------------------- evaluate


def test_evaluate_a_run_dir_and_its_weights_file(toy):
    model = cynet.Model.load(toy.run_dir / "weights.npz")
    expected = model.evaluate(toy.x_test[:, None], toy.y_test)
    reported = []
    for target in (toy.run_dir, toy.run_dir / "weights.npz"):
        result = ok(run("evaluate", target))
        loss, accuracy = parse_scores(result.stdout)
        assert loss == pytest.approx(expected["loss"], abs=1e-4)
        assert accuracy == pytest.approx(expected["accuracy"], abs=1e-4)
        reported.append(result.stdout.split("\n", 1)[1])  # (the first line names the file)
    assert reported[0] == reported[1]
    # the test accuracy train printed is the same evaluation
    assert parse_scores(toy.train.stdout, "test ") == pytest.approx(parse_scores(reported[0]))


def test_evaluate_with_other_data(toy):
    arrays = load_npz(toy.other_data)
    expected = cynet.Model.load(toy.run_dir / "weights.npz").evaluate(
        arrays["x_test"][:, None], arrays["y_test"])
    result = ok(run("evaluate", toy.run_dir, "--data", toy.other_data))
    loss, accuracy = parse_scores(result.stdout)
    assert loss == pytest.approx(expected["loss"], abs=1e-4)
    assert accuracy == pytest.approx(expected["accuracy"], abs=1e-4)


def test_evaluate_a_run_dir_without_weights_uses_its_checkpoint(tmp_path, toy):
    out = tmp_path / "run"
    ok(run("train", toy.model, "--epochs", 2, "--out", out))
    final = parse_scores(ok(run("evaluate", out)).stdout)
    (out / "weights.npz").unlink()  # as if killed after the last checkpoint
    assert parse_scores(ok(run("evaluate", out)).stdout) == final


# --------------------------------------------------------------------------- predict


@pytest.mark.parametrize("form", ["uint8 (N, H, W)", "float32 (N, C, H, W)"])
@pytest.mark.parametrize("source", ["run dir", "weights file"])
def test_predict_default_and_explicit_out(tmp_path, toy, form, source):
    x, _ = banded_images(10, seed=99)
    if form.startswith("float32"):
        x = (x[:, None] / 255).astype(np.float32)
    inputs = tmp_path / "images.npz"
    np.savez(inputs, x=x)
    target = toy.run_dir if source == "run dir" else toy.run_dir / "weights.npz"
    expected = cynet.Model.load(toy.run_dir / "weights.npz").predict(
        x[:, None] if x.ndim == 3 else x)

    ok(run("predict", target, inputs))
    default = tmp_path / "images-scores.npz"
    explicit = tmp_path / "sub" / "custom.npz"
    explicit.parent.mkdir()
    ok(run("predict", target, inputs, "--out", explicit))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images-scores.npz", "images.npz", "sub"]
    for path in (default, explicit):
        out = load_npz(path)
        assert {"scores", "labels"} <= set(out)
        assert out["scores"].shape == (10, N_CLASSES)
        np.testing.assert_allclose(out["scores"], expected, rtol=1e-5, atol=1e-6)
        assert out["labels"].shape == (10,)
        np.testing.assert_array_equal(out["labels"], expected.argmax(axis=1))


# --------------------------------------------------------------------------- summary, validate

SUMMARY_DOC = {
    "input_shape": [3, 10, 10],
    "layers": [
        {"type": "Conv2D", "out_channels": 6, "kernel_size": 3, "padding": 1},
        {"type": "BatchNorm2D"},
        {"type": "ReLU"},
        {"type": "AvgPool2D", "kernel_size": 2},
        {"type": "Conv2D", "out_channels": 8, "kernel_size": 2, "bias": False},
        {"type": "Flatten"},
        {"type": "Dense", "out_features": 10},
        {"type": "Dropout", "p": 0.1},
        {"type": "Dense", "out_features": 5, "bias": False},
    ],
}


def expected_summary(doc):
    """(type, output shape, parameter count) per layer, computed here from the definition."""
    rows, shape = [], tuple(doc["input_shape"])
    for spec in doc["layers"]:
        kind, params = spec["type"], 0
        if kind == "Conv2D":
            c, h, w = shape
            k, p, s = spec["kernel_size"], spec.get("padding", 0), spec.get("stride", 1)
            out = spec["out_channels"]
            shape = (out, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
            params = out * c * k * k + (out if spec.get("bias", True) else 0)
        elif kind == "BatchNorm2D":
            params = 2 * shape[0]
        elif kind in ("AvgPool2D", "MaxPool2D"):
            k = spec["kernel_size"]
            shape = (shape[0], shape[1] // k, shape[2] // k)
        elif kind == "Flatten":
            shape = (int(np.prod(shape)),)
        elif kind == "Dense":
            out = spec["out_features"]
            params = shape[0] * out + (out if spec.get("bias", True) else 0)
            shape = (out,)
        rows.append((kind, shape, params))
    return rows


def test_summary_lists_layers_shapes_and_parameter_counts(tmp_path):
    rows = expected_summary(SUMMARY_DOC)
    total = sum(r[2] for r in rows)
    assert total == 168 + 12 + 192 + 1290 + 50  # the helper itself, checked by hand
    result = ok(run("summary", write_json(tmp_path / "s.json", SUMMARY_DOC)))
    lines = result.stdout.splitlines()
    position = 0
    for kind, shape, params in rows:
        # the next line naming this layer type, in order
        for position in range(position, len(lines)):
            if re.search(rf"\b{kind}\b", lines[position]):
                break
        else:
            pytest.fail(f"no row for {kind} {shape} in\n{result.stdout}")
        line = lines[position]
        shape_pattern = r"\D{1,3}".join(str(d) for d in shape)
        assert re.search(rf"(?<!\d){shape_pattern}(?!\d)", line), (line, shape)
        numbers = re.findall(r"\d[\d,]*", line)
        assert int(numbers[-1].replace(",", "")) == params, (line, params)
        position += 1
    assert re.search(rf"total\D*({total:,}|{total})\b", result.stdout, re.I), result.stdout


def test_summary_shows_multiply_adds_names_and_inputs(tmp_path):
    result = ok(run("summary", write_json(tmp_path / "s.json", SUMMARY_DOC)))
    # conv 6*10*10 outputs of 3*3*3 taps, conv 8*4*4 of 6*2*2, dense 128*10, dense 10*5
    macs = [6 * 10 * 10 * 27, 8 * 4 * 4 * 24, 128 * 10, 10 * 5]
    assert f"total multiply-adds per sample: {sum(macs):,}" in result.stdout
    for n in macs:
        assert re.search(rf"(?<![\d,]){n:,}(?![\d,])", result.stdout), (n, result.stdout)
    doc = {"input_shape": [2, 4, 4], "layers": [
        {"type": "Conv2D", "out_channels": 2, "kernel_size": 1, "name": "c"},
        {"type": "ReLU", "name": "r"},
        {"type": "Add", "inputs": ["c", "r"]},
        {"type": "Flatten"}, {"type": "Dense", "out_features": 3}]}
    lines = ok(run("summary", write_json(tmp_path / "g.json", doc))).stdout.splitlines()
    add = next(line for line in lines if " Add " in line)
    assert re.search(r"\blayers\.2\s+Add\s+c, r\s+\(2, 4, 4\)", add), add
    first = next(line for line in lines if " Conv2D " in line)
    assert re.search(r"\bc\s+Conv2D\s+input\b", first), first


def test_validate_accepts_a_valid_definition(tmp_path, toy):
    result = ok(run("validate", toy.model))
    assert "valid" in result.stdout
    assert not error_lines(result.output)


def _set(path, value):
    """A change to a definition: set the value at ``path`` (keys and indices)."""
    def change(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _delete(path):
    def change(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return change


# (id, a change to SMALL or the raw file text, strings the Error line must contain)
BAD_DEFINITIONS = [
    ("misspelt layer argument", _set(["layers", 0, "kernal_size"], 3),
     ["layers[0].kernal_size", "kernel_size"]),
    ("unknown layer type", _set(["layers", 0, "type"], "Conv2d"),
     ["layers[0].type", "Conv2d", "Conv2D"]),
    ("misspelt top-level key", _set(["optimiser"], {"type": "sgd", "lr": 0.1}),
     ["optimiser", "optimizer"]),
    ("missing layers", _delete(["layers"]), ["layers"]),
    ("empty layers", _set(["layers"], []), ["layers"]),
    ("layer without type", _delete(["layers", 1, "type"]), ["layers[1]", "type"]),
    ("kernel size 0", _set(["layers", 0, "kernel_size"], 0), ["layers[0]", "kernel_size"]),
    ("bool out_channels", _set(["layers", 0, "out_channels"], True),
     ["layers[0].out_channels"]),
    ("pool larger than its input", _set(["layers", 2, "kernel_size"], 20), ["layers[2]"]),
    ("no class scores at the end", _delete(["layers", 3]), ["layers[3]"]),
    ("negative learning rate", _set(["optimizer", "lr"], -0.1), ["optimizer.lr"]),
    ("unknown optimizer", _set(["optimizer", "type"], "sgdd"), ["optimizer.type", "sgd"]),
    ("fractional epochs", _set(["training", "epochs"], 2.5), ["training.epochs"]),
    ("zero batch size", _set(["training", "batch_size"], 0), ["training.batch_size"]),
    ("input_shape a string", _set(["input_shape"], "28x28"), ["input_shape"]),
    ("data not a string", _set(["data"], 5), ["data"]),
    ("malformed JSON", '{"input_shape": [1, 12, 12], "layers": [', ["JSON", "line 1"]),
    ("empty file", "", ["JSON"]),
    ("not an object", "[1, 2]", ["definition"]),
    ("missing file", None, ["absent.json"]),
]


@pytest.mark.parametrize("command", ["validate", "summary", "train"])
@pytest.mark.parametrize("change, needles",
                         [c[1:] for c in BAD_DEFINITIONS], ids=[c[0] for c in BAD_DEFINITIONS])
def test_bad_definitions(tmp_path, toy, command, change, needles):
    path = tmp_path / ("absent.json" if change is None else "bad.json")
    if isinstance(change, str):
        path.write_text(change, encoding="utf-8")
    elif change is not None:
        doc = definition(data=toy.data)
        change(doc)
        write_json(path, doc)
    result = run(command, path, *(["--out", tmp_path / "run"] if command == "train" else []))
    assert_user_error(result, 2, needles)
    if command != "train":  # nothing else is printed
        assert result.output.strip() == error_lines(result.stderr)[0], describe(result)
    else:
        assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- debug


def _bad_definition(tmp_path):
    doc = definition()
    doc["layers"][0]["kernal_size"] = 3
    return write_json(tmp_path / "bad.json", doc)


@pytest.mark.parametrize("how", ["--debug", "--debug after the verb", "CYNET_DEBUG=1"])
def test_debug_shows_the_traceback(tmp_path, how):
    path = _bad_definition(tmp_path)
    if how == "--debug":
        result = run("--debug", "validate", path)
    elif how == "--debug after the verb":
        result = run("validate", path, "--debug")
    else:
        result = run("validate", path, env={"CYNET_DEBUG": "1"})
    assert result.exit_code != 0
    # the exception propagates out of the command (CliRunner catches it for us) ...
    assert isinstance(result.exception, cynet.DefinitionError), describe(result)
    assert "kernal_size" in str(result.exception)
    text = "".join(traceback.format_exception(*result.exc_info))
    assert "Traceback" in text and "definition.py" in text


def test_without_debug_no_traceback(tmp_path):
    result = run("validate", _bad_definition(tmp_path), env={"CYNET_DEBUG": "0"})
    assert_user_error(result, 2, ["layers[0].kernal_size"])


# --------------------------------------------------------------------------- layers


def test_layers_lists_every_builtin_with_package_and_version():
    result = ok(run("layers"))
    for name in BUILTIN_TYPES:
        rows = [l for l in result.stdout.splitlines() if re.match(rf"\s*{name}\b", l)]
        assert len(rows) == 1, (name, result.stdout)
        assert re.search(rf"\bcynet\b.*{re.escape(cynet.__version__)}", rows[0]), rows[0]


def test_layers_lists_a_working_plugin(tmp_path, on_path):
    on_path(fake_distribution(
        tmp_path, "cli-good-plugin", "2.3", {"CliGoodDouble": "cli_good_mod:Double"},
        {"cli_good_mod": """
            import cynet

            class Double(cynet.Layer):
                def forward(self, x, training=True):
                    return 2 * x

                def backward(self, grad_out):
                    return 2 * grad_out
        """}))
    result = ok(run("layers"))
    rows = [l for l in result.stdout.splitlines() if "CliGoodDouble" in l]
    assert len(rows) == 1 and "cli-good-plugin" in rows[0] and "2.3" in rows[0], result.stdout


# (id, module source or None for no module, text the reported error must contain)
BROKEN_PLUGINS = [
    ("import error", "raise ImportError('cli-test: a dependency is missing')",
     "a dependency is missing"),
    ("other exception at import", "raise RuntimeError('cli-test kaboom')", "kaboom"),
    ("module not installed", None, "cli_broken_mod"),
    ("not a Layer", "Thing = 42", "42"),
    ("SystemExit at import", "import sys\nsys.exit('cli-test bye')", "bye"),
]


@pytest.mark.parametrize("source, fragment", [c[1:] for c in BROKEN_PLUGINS],
                         ids=[c[0] for c in BROKEN_PLUGINS])
def test_layers_reports_a_broken_plugin_without_failing(tmp_path, on_path, source, fragment):
    modules = {} if source is None else {"cli_broken_mod": source}
    on_path(fake_distribution(tmp_path, "cli-broken-plugin", "1.0",
                              {"CliBrokenLayer": "cli_broken_mod:Thing"}, modules))
    listed = ok(run("layers"))  # from the metadata alone: nothing imported, nothing to report
    assert re.search(r"^\s*CliBrokenLayer\b.*cli-broken-plugin 1\.0", listed.stdout, re.M)
    assert "could not be loaded" not in listed.stdout and "--detail" in listed.stdout
    result = ok(run("layers", "--detail"))
    for name in BUILTIN_TYPES:
        assert re.search(rf"^\s*{name}\b.*\bcynet\b", result.stdout, re.M), name
    rows = [l for l in result.stdout.splitlines()
            if "CliBrokenLayer" in l and "cli-broken-plugin" in l and fragment in l]
    assert rows, f"the broken plugin is not reported with its error:\n{result.output}"

    # a definition using it is a definition error naming the plugin, not a crash
    doc = definition()
    doc["layers"].insert(1, {"type": "CliBrokenLayer"})
    result = run("validate", write_json(tmp_path / "uses.json", doc))
    assert_user_error(result, 2, ["layers[1].type", "cli-broken-plugin"])


# --------------------------------------------------------------------------- gradcheck


class _WrongGradient(cynet.Layer):
    """2x forward, 3x backward: a gradient check must catch it."""

    example = {"config": {}, "input_shape": (2, 3, 3)}

    def forward(self, x, training=True):
        return 2 * x

    def backward(self, grad_out):
        return 3 * grad_out


def test_gradcheck_of_every_layer_type_passes(isolated_script_layers):
    result = ok(run("gradcheck"))
    for name in BUILTIN_TYPES:
        assert re.search(rf"^{name}: ok\b", result.stdout, re.M), (name, result.stdout)
    assert "FAILED" not in result.stdout
    counts = re.search(r"(\d+) of (\d+)", result.stdout.splitlines()[-1])
    assert counts and counts.group(1) == counts.group(2) and int(counts.group(2)) >= 12


@pytest.mark.parametrize("names", [["Conv2D"], ["ReLU", "BatchNorm2D"]])
def test_gradcheck_of_named_types(names):
    result = ok(run("gradcheck", *names))
    checked = [l.split(":")[0] for l in result.stdout.splitlines() if ": ok" in l]
    assert checked == names, result.stdout


@pytest.mark.parametrize("names, needle", [
    (["Conv2d"], "Conv2D"),  # suggests the right spelling
    (["NoSuchLayerAtAll"], "NoSuchLayerAtAll"),
    (["ReLU", "NoSuchLayerAtAll"], "NoSuchLayerAtAll"),  # refused before any work
])
def test_gradcheck_unknown_type_is_a_usage_error(names, needle):
    result = run("gradcheck", *names)
    assert_user_error(result, 2, [needle])
    assert ": ok" not in result.stdout


class _CannotRun(cynet.Layer):
    """A layer whose example cannot even run."""

    def forward(self, x, training=True):
        raise RuntimeError("cli-test: forward is broken")

    def backward(self, grad_out):
        return grad_out


@pytest.mark.parametrize("layer", [_WrongGradient, _CannotRun], ids=lambda c: c.__name__)
def test_gradcheck_fails_a_broken_layer(isolated_script_layers, layer):
    name = f"Cli{layer.__name__.strip('_')}_{uuid.uuid4().hex[:8]}"
    cynet.register_layer(name)(layer)
    result = run("gradcheck", "ReLU", name)
    assert result.exit_code == 1, describe(result)
    assert "Traceback" not in result.output
    assert re.search(r"^ReLU: ok\b", result.stdout, re.M), result.stdout
    assert re.search(rf"^{name}: FAILED\b", result.stdout, re.M), result.stdout


# --------------------------------------------------------------------------- user errors


def _write_x(path, **arrays):
    np.savez(path, **arrays)
    return path


def _dataset_with(tmp_path, **changes):
    """toy-like data with some arrays replaced."""
    x, y = banded_images(40)
    xt, yt = banded_images(20, seed=1)
    arrays = {"x_train": x, "y_train": y, "x_test": xt, "y_test": yt}
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    return _write_x(tmp_path / "data.npz", **arrays)


def _labels_with(value, n=40, dtype=np.int64):
    _, y = banded_images(n)
    y = y.astype(dtype)
    y[n // 2] = value
    return y


def _fresh_run(ctx, *extra):
    out = ctx.tmp / "run"
    ok(run("train", ctx.toy.model, "--epochs", 1, *extra, "--out", out))
    return out


def _changed_model(ctx, change):
    doc = definition(data=ctx.toy.data)
    change(doc)
    return write_json(ctx.tmp / "changed.json", doc)


class Ctx:
    def __init__(self, tmp, toy):
        self.tmp, self.toy = tmp, toy


def _corrupt(ctx, name):
    path = ctx.tmp / name
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return path


def _corrupt_zip(ctx, name):
    """The start of a real .npz (a zip's magic number), then garbage."""
    good = ctx.tmp / "good.npz"
    np.savez(good, x_train=np.zeros((4, 12, 12), np.uint8), y_train=np.zeros(4, np.uint8))
    path = ctx.tmp / name
    path.write_bytes(good.read_bytes()[:200] + b"\x00" * 50)
    return path


def _text(ctx, name, text):
    path = ctx.tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def _existing_file(ctx):
    path = ctx.tmp / "a-file"
    path.write_text("x")
    return path


def _empty_dir(ctx):
    path = ctx.tmp / "empty"
    path.mkdir()
    return path


def _inputs(ctx, **arrays):
    return _write_x(ctx.tmp / "in.npz", **arrays)


R = re.compile
# an unreadable file is said to be one (not, say, blamed on pickled object arrays)
NOT_READABLE = R(r"(?i)not an? |corrupt|truncated|cannot read|unreadable|invalid")

# (id, ctx -> command line, exit status, needles of the Error line)
USER_ERRORS = [
    # ---- train: definitions and files
    ("train: missing model file",
     lambda c: ["train", c.tmp / "absent.json"], 2, ["absent.json"]),
    ("train: malformed JSON",
     lambda c: ["train", _text(c, "bad.json", '{"input_shape": [1, 12, 12],, }')], 2,
     ["bad.json", "JSON"]),
    ("train: binary model file (not UTF-8)",
     lambda c: ["train", _corrupt(c, "binary.json")], 2, ["binary.json"]),
    ("validate: JSON nested too deeply",
     lambda c: ["validate", _text(c, "deep.json", "[" * 100_000 + "]" * 100_000)], 2,
     ["deep.json", "nested"]),
    ("train: unknown layer type",
     lambda c: ["train", _changed_model(c, _set(["layers", 0, "type"], "Conv2d"))], 2,
     ["layers[0].type", "Conv2d"]),
    ("train: model path is a directory",
     lambda c: ["train", _empty_dir(c)], 2, ["empty"]),
    # ---- train: data
    ("train: data file missing",
     lambda c: ["train", c.toy.model, "--data", c.tmp / "nowhere.npz"], 2, ["nowhere.npz"]),
    ("train: definition's data file missing",
     lambda c: ["train", _changed_model(c, _set(["data"], str(c.tmp / "gone.npz")))], 2,
     ["gone.npz"]),
    ("train: unknown dataset name",
     lambda c: ["train", c.toy.model, "--data", "fashion-mnst"], 2,
     ["fashion-mnst", "fashion-mnist"]),
    ("train: corrupt npz (random bytes)",
     lambda c: ["train", c.toy.model, "--data", _corrupt(c, "corrupt.npz")], 2,
     ["corrupt.npz", NOT_READABLE]),
    ("train: truncated npz",
     lambda c: ["train", c.toy.model, "--data", _corrupt_zip(c, "truncated.npz")], 2,
     ["truncated.npz", NOT_READABLE]),
    ("train: npz without y_train",
     lambda c: ["train", c.toy.model, "--data", _dataset_with(c.tmp, y_train=None)], 2,
     ["y_train"]),
    ("train: label above the classes",
     lambda c: ["train", c.toy.model, "--data", _dataset_with(c.tmp, y_train=_labels_with(7))],
     2, [R(r"(?<![\d.])7(?![\d.])"), "3"]),
    ("train: label equal to n_outputs",
     lambda c: ["train", c.toy.model, "--data", _dataset_with(c.tmp, y_train=_labels_with(3))],
     2, [R(r"(?<![\d.\[])3(?![\d.])")]),
    ("train: negative label",
     lambda c: ["train", c.toy.model, "--data", _dataset_with(c.tmp, y_train=_labels_with(-1))],
     2, ["-1"]),
    ("train: test label out of range",
     lambda c: ["train", c.toy.model, "--data",
                _dataset_with(c.tmp, y_test=_labels_with(5, n=20))], 2, ["test", R(r"\b5\b")]),
    ("train: image size vs input_shape",
     lambda c: ["train", c.toy.model, "--data", _dataset_with(
         c.tmp, x_train=banded_images(40, size=10)[0], x_test=banded_images(20, size=10)[0])], 2,
     [R(r"10, 10\)"), R(r"1, 12, 12\)")]),
    ("train: channels vs input_shape",
     lambda c: ["train", c.toy.model, "--data", _dataset_with(
         c.tmp, x_train=np.repeat(banded_images(40)[0][:, None], 3, axis=1),
         x_test=np.repeat(banded_images(20, seed=1)[0][:, None], 3, axis=1))], 2,
     [R(r"3, 12, 12\)"), R(r"1, 12, 12\)")]),
    # ---- train: while running
    pytest.param(
        "train: loss becomes NaN/inf",
        lambda c: ["train", c.toy.model, "--lr", "1e30", "--out", c.tmp / "run"], 1,
        [R(r"epoch 1\b"), R(r"learning rate|\blr\b")],
        marks=pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning",
                                         "ignore:invalid value:RuntimeWarning")),
    # ---- train: options and run directories
    ("train: --epochs 0", lambda c: ["train", c.toy.model, "--epochs", 0], 2, ["--epochs"]),
    ("train: --lr negative", lambda c: ["train", c.toy.model, "--lr", "-1"], 2, ["--lr"]),
    ("train: --batch-size not a number",
     lambda c: ["train", c.toy.model, "--batch-size", "many"], 2, ["--batch-size"]),
    ("train: unknown option", lambda c: ["train", c.toy.model, "--epoch", 2], 2, ["--epoch"]),
    ("train: --resume of a dir without checkpoint",
     lambda c: ["train", c.toy.model, "--resume", _empty_dir(c)], 2, ["checkpoint"]),
    ("train: --resume of a missing dir",
     lambda c: ["train", c.toy.model, "--resume", c.tmp / "no-run"], 2, ["no-run"]),
    ("train: --resume with a changed layer",
     lambda c: ["train", _changed_model(c, _set(["layers", 0, "out_channels"], 6)),
                "--resume", _fresh_run(c)], 2,
     ["layers[0].out_channels", R(r"\b4\b"), R(r"\b6\b")]),
    # (--resume DIR --lr X is accepted: test_training_options; a definition's own
    # change of the rate is not)
    ("train: --resume with a changed learning rate in the definition",
     lambda c: ["train", _changed_model(c, _set(["optimizer", "lr"], 0.2)),
                "--resume", _fresh_run(c)], 2, ["optimizer.lr", "0.2"]),
    ("train: --resume with another optimizer",
     lambda c: ["train", _changed_model(c, _set(["optimizer"], {"type": "adam", "lr": 0.05})),
                "--resume", _fresh_run(c)], 2, ["optimizer"]),
    ("train: --resume with another seed",
     lambda c: ["train", c.toy.model, "--seed", "9", "--resume", _fresh_run(c)], 2,
     ["training.seed"]),
    ("train: --out is an existing run",
     lambda c: ["train", c.toy.model, "--out", _fresh_run(c)], 2, ["--resume"]),
    ("train: --out is a file",
     lambda c: ["train", c.toy.model, "--out", _existing_file(c)], 2, ["a-file"]),
    ("train: --out and --resume",
     lambda c: ["train", c.toy.model, "--out", c.tmp / "o", "--resume", c.toy.run_dir], 2,
     ["--out", "--resume"]),
    # ---- evaluate
    ("evaluate: missing path",
     lambda c: ["evaluate", c.tmp / "nothing-here"], 2, ["nothing-here"]),
    ("evaluate: a dir that is not a run", lambda c: ["evaluate", _empty_dir(c)], 2, ["empty"]),
    ("evaluate: corrupt weights file",
     lambda c: ["evaluate", _corrupt(c, "weights.npz")], 2, ["weights.npz"]),
    ("evaluate: npz that is not a weights file",
     lambda c: ["evaluate", c.toy.data], 2, ["toy.npz"]),
    ("evaluate: data without a test split",
     lambda c: ["evaluate", c.toy.run_dir, "--data",
                _dataset_with(c.tmp, x_test=None, y_test=None)], 2, ["test"]),
    ("evaluate: data of the wrong shape",
     lambda c: ["evaluate", c.toy.run_dir, "--data", _dataset_with(
         c.tmp, x_train=banded_images(40, size=10)[0], x_test=banded_images(20, size=10)[0])],
     2, [R(r"10, 10\)")]),
    ("evaluate: labels out of range",
     lambda c: ["evaluate", c.toy.run_dir, "--data",
                _dataset_with(c.tmp, y_test=_labels_with(9, n=20))], 2, [R(r"\b9\b")]),
    # ---- predict
    ("predict: missing input file",
     lambda c: ["predict", c.toy.run_dir, c.tmp / "absent.npz"], 2, ["absent.npz"]),
    ("predict: input without x",
     lambda c: ["predict", c.toy.run_dir, _inputs(c, images=banded_images(4)[0])], 2,
     [R(r"\bx\b")]),
    ("predict: input of the wrong shape",
     lambda c: ["predict", c.toy.run_dir, _inputs(c, x=banded_images(4, size=10)[0])], 2,
     [R(r"10, 10\)"), R(r"12, 12\)")]),
    ("predict: corrupt input",
     lambda c: ["predict", c.toy.run_dir, _corrupt(c, "in.npz")], 2, ["in.npz"]),
    ("predict: corrupt weights file",
     lambda c: ["predict", _corrupt(c, "weights.npz"), _inputs(c, x=banded_images(4)[0])], 2,
     ["weights.npz"]),
    ("predict: missing weights",
     lambda c: ["predict", c.tmp / "no-run", _inputs(c, x=banded_images(4)[0])], 2, ["no-run"]),
]


def _case(case):
    """A USER_ERRORS row as a pytest.param named by its first value."""
    if hasattr(case, "marks"):  # already a pytest.param (a NamedTuple itself)
        return pytest.param(*case.values[1:], id=case.values[0], marks=case.marks)
    return pytest.param(*case[1:], id=case[0])


@pytest.mark.parametrize("make_args, code, needles", [_case(c) for c in USER_ERRORS])
def test_user_errors(tmp_path, toy, make_args, code, needles):
    result = run(*make_args(Ctx(tmp_path, toy)))
    assert_user_error(result, code, needles)


def test_existing_run_is_left_alone_when_refused(tmp_path, toy):
    out = _fresh_run(Ctx(tmp_path, toy))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert_user_error(run("train", toy.model, "--out", out), 2, ["--resume"])
    changed = write_json(tmp_path / "changed.json",
                         definition(data=toy.data, training={"epochs": 1, "batch_size": 8}))
    assert_user_error(run("train", changed, "--resume", out), 2, ["batch_size"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_metrics_keep_every_key_when_there_is_no_validation_data(tmp_path):
    from cli_fixtures import definition, read_metrics, write_dataset, write_json

    data = write_dataset(tmp_path / "train_only.npz", test=False)
    model = write_json(tmp_path / "m.json", definition(data=data))
    out = tmp_path / "run"
    result = CliRunner().invoke(cynet.cli.main, ["train", str(model), "--out", str(out),
                                                 "--epochs", "2"])
    assert result.exit_code == 0, result.output
    for line in read_metrics(out):
        assert set(line) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr",
                             "seconds"}
        assert line["val_loss"] is None and line["val_accuracy"] is None


def test_evaluate_of_a_file_that_is_not_an_npz_names_it(tmp_path):
    bogus = tmp_path / "model.json"
    bogus.write_text("{}")
    result = CliRunner().invoke(cynet.cli.main, ["evaluate", str(bogus)])
    assert result.exit_code == 2
    assert "not an .npz file" in result.output and "Traceback" not in result.output


def test_python_m_cynet_is_the_command_line():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "cynet", "--version"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and cynet.__version__ in out.stdout, out.stderr
    out = subprocess.run([sys.executable, "-m", "cynet", "validate", "no-such.json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Error:" in out.stderr and "Traceback" not in out.stderr
