"""``cynet plot`` and ``cynet.plot``: training curves of real runs made by ``cynet train``.

What the PNG holds is checked twice: the figure's lines carry exactly the values of
metrics.jsonl (read independently here), and the written image has pixels of the train
and validation colours (the latter only when the run has validation values). Every user
error ends with exit 2 and one ``Error:`` line naming the file and the problem, both from
the command and as ``PlotError`` from the library; without matplotlib the command says how
to install it and exits 1. Headless: cynet draws with the Agg canvas only.
"""
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cynet import plot
from cli_fixtures import definition, read_metrics, subprocess_env, write_dataset, write_json
from test_cli import assert_user_error, ok, run

EPOCHS = 3
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TRAIN_RGB, VALIDATION_RGB = (31, 119, 180), (255, 127, 14)  # matplotlib's colours C0, C1


# --------------------------------------------------------------------------- helpers


def png_size(path):
    """(width, height) from the IHDR chunk, after checking the PNG signature."""
    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG: starts with {data[:8]!r}"
    assert data[12:16] == b"IHDR", f"{path}: no IHDR chunk first"
    return struct.unpack(">II", data[16:24])


def pixels_of(path, rgb):
    """How many pixels of the PNG have exactly the colour ``rgb``."""
    from matplotlib.image import imread

    image = np.rint(imread(path)[..., :3] * 255).astype(int)
    return int((image == np.array(rgb)).all(axis=-1).sum())


def leftovers(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith(".tmp-"))


# the held-out curve of each kind of run: its label and its metrics' prefix
HELD_OUT = {"validation": ("validation", "val"), "test": ("test", "test"),
            "no validation": (None, "val")}


class Runs:
    """Three finished runs made by the command line: one with a validation split, one
    without, whose held-out values are the test split's (``test_*``), and one of a dataset
    with no test split (the val_ values are null)."""

    def __init__(self, base):
        self.dirs = {}
        for kind, test, split in (("validation", True, 0.25), ("test", True, 0.0),
                                  ("no validation", False, 0.0)):
            data = write_dataset(base / f"{kind}.npz".replace(" ", "-"), test=test)
            doc = definition(data=data)
            doc["training"]["validation_split"] = split
            model = write_json(base / f"{kind}.json".replace(" ", "-"), doc)
            self.dirs[kind] = base / f"run-{kind}".replace(" ", "-")
            ok(run("train", model, "--epochs", EPOCHS, "--out", self.dirs[kind]))

    def copy(self, kind, tmp_path):
        """A private copy of a run, for tests that write into it."""
        return Path(shutil.copytree(self.dirs[kind], tmp_path / "run"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return Runs(tmp_path_factory.mktemp("plot-runs"))


@pytest.fixture
def without_matplotlib(monkeypatch):
    """matplotlib made unimportable, as if it were not installed. Submodules imported by
    earlier tests are blocked too: Python would hand those out without their parent."""
    for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


# --------------------------------------------------------------------------- the command


def test_plot_help_names_the_out_option_and_the_extra():
    result = ok(run("plot", "--help"))
    assert result.stdout.startswith("Usage: cynet plot") or "plot [OPTIONS] RUN_DIR" in result.stdout
    assert "--out" in result.stdout and "cynet-cnn[plot]" in result.stdout
    assert "plot" in ok(run("--help")).stdout


@pytest.mark.parametrize("kind", list(HELD_OUT))
def test_plot_writes_curves_png_into_the_run_dir(runs, tmp_path, kind):
    run_dir = runs.copy(kind, tmp_path)
    result = ok(run("plot", run_dir))
    path = run_dir / "curves.png"
    assert str(path) in result.stdout
    width, height = png_size(path)
    # three panels: loss, accuracy, learning rate
    assert (width, height) == (1.5 * plot.WIDTH_INCHES * plot.DPI, plot.HEIGHT_INCHES * plot.DPI)
    assert (width, height) == (1500, 400)
    assert pixels_of(path, TRAIN_RGB) > 100, "no training curve in the image"
    validation_pixels = pixels_of(path, VALIDATION_RGB)
    if HELD_OUT[kind][0] is not None:
        assert validation_pixels > 100, "no validation curve in the image"
    else:
        assert validation_pixels == 0, "a validation curve drawn for a run without one"
    assert leftovers(run_dir) == []


def test_out_writes_elsewhere_and_replaces_an_old_file(runs, tmp_path):
    out = tmp_path / "plots" / "mine.png"
    out.parent.mkdir()
    out.write_bytes(b"an old file")
    result = ok(run("plot", runs.dirs["validation"], "--out", out))
    assert str(out) in result.stdout
    assert png_size(out) == (1500, 400)
    assert not (runs.dirs["validation"] / "curves.png").exists()
    assert leftovers(out.parent) == []


def test_plot_run_returns_the_path_written(runs, tmp_path):
    run_dir = runs.copy("validation", tmp_path)
    assert plot.plot_run(run_dir) == run_dir / "curves.png"
    out = tmp_path / "other.png"
    assert plot.plot_run(str(run_dir), str(out)) == out
    assert out.read_bytes() == (run_dir / "curves.png").read_bytes()


# --------------------------------------------------------------------------- what is drawn


def lines_of(ax):
    """{label: (x, y)} of an axes' lines."""
    return {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
            for line in ax.get_lines()}


def assert_panels(figure, expected):
    """``expected``: {(panel title, y label): {line label: (x, y)}}, in panel order."""
    axes = figure.get_axes()
    assert [(ax.get_title(), ax.get_ylabel()) for ax in axes] == list(expected)
    for ax, want in zip(axes, expected.values()):
        assert ax.get_xlabel() == "epoch"
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), f"epoch ticks {ticks}"
        assert lines_of(ax) == want
        assert [t.get_text() for t in ax.get_legend().get_texts()] == list(want)


@pytest.mark.parametrize("kind", list(HELD_OUT))
def test_figure_lines_carry_the_metrics(runs, kind):
    metrics = read_metrics(runs.dirs[kind])  # parsed here, independently of cynet.plot
    epochs = [m["epoch"] for m in metrics]
    assert epochs == list(range(1, EPOCHS + 1))
    records = plot.read_metrics(runs.dirs[kind])
    assert records == metrics
    label, prefix = HELD_OUT[kind]
    other = {"val": "test", "test": "val"}[prefix]
    expected = {}
    for title, key in (("Loss", "loss"), ("Accuracy", "accuracy")):
        lines = {"train": (epochs, [m[key] for m in metrics])}
        assert all(f"{other}_{key}" not in m for m in metrics)  # one name for one split
        if label is not None:
            assert all(m[f"{prefix}_{key}"] is not None for m in metrics)
            lines[label] = (epochs, [m[f"{prefix}_{key}"] for m in metrics])
        else:
            assert all(m[f"{prefix}_{key}"] is None for m in metrics)
        expected[(title, key)] = lines
    expected[("Learning rate", "lr")] = {"learning rate": (epochs, [m["lr"] for m in metrics])}
    assert_panels(plot.curves_figure(records, title="a run"), expected)


def test_a_single_epoch_is_one_point_with_one_integer_tick(runs, tmp_path):
    first = read_metrics(runs.dirs["validation"])[0]
    run_dir = runs.copy("validation", tmp_path)
    (run_dir / "metrics.jsonl").write_text(json.dumps(first) + "\n", encoding="utf-8")
    figure = plot.curves_figure(plot.read_metrics(run_dir))
    assert_panels(figure, {
        ("Loss", "loss"): {"train": ([1], [first["loss"]]),
                           "validation": ([1], [first["val_loss"]])},
        ("Accuracy", "accuracy"): {"train": ([1], [first["accuracy"]]),
                                   "validation": ([1], [first["val_accuracy"]])},
        ("Learning rate", "lr"): {"learning rate": ([1], [first["lr"]])},
    })
    assert [list(ax.get_xticks()) for ax in figure.get_axes()] == [[1], [1], [1]]
    assert all(line.get_marker() == "o" for ax in figure.get_axes() for line in ax.get_lines())


def test_validation_is_drawn_only_where_present(tmp_path):
    """Null and non-finite values (Python's JSON may write NaN and Infinity) are left out."""
    rows = [
        (1, 2.0, 0.25, None, None),
        (2, 1.5, 0.5, 1.75, 0.375),
        (3, float("nan"), 0.625, float("inf"), 0.5),
        (4, 1.0, 0.75, 1.25, None),
    ]
    keys = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text(
        "".join(json.dumps(dict(zip(keys, r), seconds=0.5)) + "\n" for r in rows),
        encoding="utf-8")
    assert_panels(plot.curves_figure(plot.read_metrics(run_dir)), {
        ("Loss", "loss"): {"train": ([1, 2, 4], [2.0, 1.5, 1.0]),
                           "validation": ([2, 4], [1.75, 1.25])},
        ("Accuracy", "accuracy"): {"train": ([1, 2, 3, 4], [0.25, 0.5, 0.625, 0.75]),
                                   "validation": ([2, 3], [0.375, 0.5])},
    })
    assert png_size(plot.plot_run(run_dir)) == (1000, 400)


# --------------------------------------------------------------------------- user errors


def _with_metrics(runs, tmp_path, content):
    """A copy of the validation run whose metrics.jsonl is ``content`` (text or bytes, or
    a function of the real records giving a list of records/raw lines)."""
    run_dir = runs.copy("validation", tmp_path)
    if callable(content):
        lines = content(read_metrics(runs.dirs["validation"]))
        content = "".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines)
    path = run_dir / "metrics.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return run_dir, None


def _changed(index, **changes):
    """Records with ``changes`` applied to record ``index`` (a value None deletes it,
    unless the key is given as ``null_<key>``)."""
    def apply(records):
        record = records[index]
        for key, value in changes.items():
            if key.startswith("null_"):
                record[key[5:]] = None
            elif value is None:
                del record[key]
            else:
                record[key] = value
        return records
    return apply


def _no_metrics(runs, tmp_path):
    run_dir = runs.copy("validation", tmp_path)
    (run_dir / "metrics.jsonl").unlink()
    return run_dir, None


def _a_file(tmp_path):
    path = tmp_path / "file.txt"
    path.write_text("not a run\n", encoding="utf-8")
    return path


ERROR_CASES = [
    # (id, make(runs, tmp_path) -> (run_dir, out), needles)
    ("run dir missing", lambda r, t: (t / "nope", None), ["nope", "does not exist"]),
    ("run dir is a file", lambda r, t: (_a_file(t), None), ["file.txt", "not a directory"]),
    ("no metrics.jsonl", _no_metrics, ["metrics.jsonl is missing"]),
    ("empty metrics.jsonl", lambda r, t: _with_metrics(r, t, ""),
     ["metrics.jsonl is empty", "no epoch"]),
    ("blank lines only", lambda r, t: _with_metrics(r, t, "\n  \n"),
     ["metrics.jsonl is empty"]),
    ("bad JSON", lambda r, t: _with_metrics(r, t, lambda recs: [recs[0], "{not json", recs[2]]),
     ["metrics.jsonl line 2", "not valid JSON"]),
    ("truncated last line", lambda r, t: _with_metrics(
        r, t, lambda recs: [recs[0], json.dumps(recs[1])[:25]]),
     ["metrics.jsonl line 2", "not valid JSON"]),
    ("not an object", lambda r, t: _with_metrics(r, t, "[1, 2]\n"),
     ["metrics.jsonl line 1", "expected a JSON object"]),
    ("missing accuracy", lambda r, t: _with_metrics(r, t, _changed(2, accuracy=None)),
     ["metrics.jsonl line 3", "missing key 'accuracy'"]),
    ("missing val_loss and seconds", lambda r, t: _with_metrics(
        r, t, _changed(0, val_loss=None, seconds=None)),
     ["metrics.jsonl line 1", "missing keys", "'val_loss'", "'seconds'"]),
    ("string loss", lambda r, t: _with_metrics(r, t, _changed(1, loss="abc")),
     ["metrics.jsonl line 2", "'loss' is \"abc\", expected a number"]),
    ("null loss", lambda r, t: _with_metrics(r, t, _changed(1, null_loss=True)),
     ["line 2", "'loss' is null, expected a number"]),
    ("boolean epoch", lambda r, t: _with_metrics(r, t, _changed(0, epoch=True)),
     ["line 1", "'epoch' is true"]),
    ("string val_accuracy", lambda r, t: _with_metrics(r, t, _changed(2, val_accuracy="0.9")),
     ["line 3", "'val_accuracy'", "expected a number or null"]),
    ("integer too large for a float", lambda r, t: _with_metrics(
        r, t, lambda recs: [recs[0], json.dumps(recs[1]).replace(
            '"seconds": ', '"seconds": 1' + "0" * 400 + ", \"x\": ")]),
     ["line 2", "'seconds'"]),
    ("line numbers count blank lines", lambda r, t: _with_metrics(
        r, t, lambda recs: ["", recs[0], "", "oops"]),
     ["metrics.jsonl line 4", "not valid JSON"]),
    ("not UTF-8", lambda r, t: _with_metrics(r, t, b'{"epoch": 1, "loss": \xff}\n'),
     ["metrics.jsonl is not UTF-8"]),
    ("out directory missing", lambda r, t: (r.dirs["validation"], t / "nodir" / "c.png"),
     ["nodir", "does not exist"]),
    ("out directory is a file", lambda r, t: (r.dirs["validation"], _a_file(t) / "c.png"),
     ["file.txt", "is not a directory"]),
    ("out is a directory", lambda r, t: (r.dirs["validation"], t), ["is a directory"]),
]


@pytest.mark.parametrize("make, needles", [c[1:] for c in ERROR_CASES],
                         ids=[c[0] for c in ERROR_CASES])
def test_user_errors(runs, tmp_path, make, needles):
    run_dir, out = make(runs, tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(plot.PlotError) as info:
        plot.plot_run(run_dir, out)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"

    args = ["plot", run_dir] + (["--out", out] if out is not None else [])
    assert_user_error(run(*args), 2, needles)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before, "something was written"
    assert not (runs.dirs["validation"] / "curves.png").exists()


# --------------------------------------------------------------------------- matplotlib


def test_without_matplotlib_says_how_to_install_it(runs, tmp_path, without_matplotlib):
    run_dir = runs.copy("validation", tmp_path)
    result = run("plot", run_dir)
    assert_user_error(result, 1, ["matplotlib", 'pip install "cynet-cnn[plot]"'])
    with pytest.raises(plot.MatplotlibMissingError, match=r"cynet-cnn\[plot\]") as info:
        plot.plot_run(run_dir)
    assert isinstance(info.value, ImportError)
    assert not (run_dir / "curves.png").exists()
    assert len(plot.read_metrics(run_dir)) == EPOCHS  # reading needs no matplotlib


def test_import_cynet_does_not_import_matplotlib(runs):
    """Importing cynet, its CLI and cynet.plot, and reading metrics, load no matplotlib;
    drawing does (which shows that the check sees an import when there is one)."""
    code = (
        "import sys, cynet, cynet.cli, cynet.plot\n"
        "loaded = lambda: sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib')\n"
        "records = cynet.plot.read_metrics(sys.argv[1])\n"
        "print(loaded())\n"
        "cynet.plot.curves_figure(records)\n"
        "print('matplotlib' in loaded(), 'matplotlib.pyplot' in loaded())\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(runs.dirs["validation"])],
                            capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "True False"], result.stdout
