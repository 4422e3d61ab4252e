"""Training curves of a run directory (loss, accuracy and learning rate per epoch) and
confusion matrices, as PNGs.

    records = read_metrics("runs/lenet")          # the epochs of metrics.jsonl, checked
    figure = curves_figure(records, title="lenet") # a matplotlib Figure
    path = plot_run("runs/lenet")                  # runs/lenet/curves.png, written atomically
    figure = confusion_figure(matrix, title=...)   # a confusion matrix (rows: true labels)

The held-out curve is labelled by what it was computed on: "validation" for ``val_*``,
"test" for ``test_*`` (a run without a validation split). Files of earlier releases,
without ``lr`` or ``test_*``, plot as before.

matplotlib is an optional extra (``pip install "cynet-cnn[plot]"``) and is imported only
when a figure is drawn, so ``import cynet`` never loads it. The figure is built with the
object-oriented API and rendered with the Agg canvas: no pyplot, no global backend.
"""
import json
import math
from pathlib import Path

from ._atomic import atomic_write, check_writable_target
from ._regular import NotARegularFileError
from .rundir import METRICS

DEFAULT_NAME = "curves.png"
CONFUSION_NAME = "confusion.png"
INSTALL_HINT = 'pip install "cynet-cnn[plot]"'

# every line of metrics.jsonl has these, and the held-out pair of one of HELD_OUT (the
# val_ one null without held-out data); lr from the second wave on
REQUIRED_KEYS = ("epoch", "loss", "accuracy", "seconds")
HELD_OUT = {"val": "validation", "test": "test"}
NULLABLE_KEYS = ("val_loss", "val_accuracy", "test_loss", "test_accuracy", "lr")

# (panel title, y label, training key, held-out key without its prefix)
PANELS = (("Loss", "loss", "loss", "loss"),
          ("Accuracy", "accuracy", "accuracy", "accuracy"))

WIDTH_INCHES, HEIGHT_INCHES, DPI = 10.0, 4.0, 100  # a 1000 x 400 pixel PNG (two panels)


class PlotError(ValueError):
    """A run directory whose metrics cannot be plotted, or an output path that cannot be
    written, and why."""


class MatplotlibMissingError(ImportError):
    """Plotting was asked for but matplotlib (the ``plot`` extra) is not installed."""


def _is_number(value):
    """An int or float (not a bool) that has a float value (JSON integers may not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def held_out_of(record):
    """"test" when a metrics line holds the test split's figures, else "val"."""
    return "test" if "test_loss" in record or "test_accuracy" in record else "val"


def _check_record(record, path, line_number):
    where = f"{path} line {line_number}"
    if not isinstance(record, dict):
        raise PlotError(f"{where}: expected a JSON object, got {json.dumps(record)[:60]}")
    held = held_out_of(record)
    expected_keys = REQUIRED_KEYS + (f"{held}_loss", f"{held}_accuracy")
    missing = [k for k in expected_keys if k not in record]
    if missing:
        raise PlotError(f"{where}: missing key{'s' if len(missing) > 1 else ''} "
                        + ", ".join(repr(k) for k in missing))
    for key in expected_keys + ("lr",):
        value = record.get(key)
        if value is None and key in NULLABLE_KEYS:
            continue
        if not _is_number(value):
            expected = "a number or null" if key in NULLABLE_KEYS else "a number"
            raise PlotError(f"{where}: {key!r} is {json.dumps(value)[:60]}, expected {expected}")


def read_metrics(run_dir):
    """The finished epochs of ``run_dir/metrics.jsonl``, one dict per epoch, in file order.

    Raises ``PlotError`` naming the file (and the line) when the directory or the file is
    missing, the file holds no epoch yet, or a line is not a JSON object with the keys
    ``epoch``, ``loss``, ``accuracy``, ``seconds`` (numbers) and ``val_loss``,
    ``val_accuracy`` or ``test_loss``, ``test_accuracy`` (numbers or null), and ``lr``
    if any (a number or null). Blank lines are skipped; other keys are ignored.
    """
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise PlotError(f"run directory {run_dir} does not exist")
    if not run_dir.is_dir():
        raise PlotError(f"{run_dir} is not a directory (expected a run directory)")
    path = run_dir / METRICS
    if not path.is_file():
        raise PlotError(f"{path} is missing: {run_dir} is not a cynet run directory, "
                        f"or its run has not started")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PlotError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise PlotError(f"cannot read {path}: {exc.strerror or exc}") from None
    records = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PlotError(f"{path} line {line_number}: not valid JSON ({exc.msg})") from None
        _check_record(record, path, line_number)
        records.append(record)
    if not records:
        raise PlotError(f"{path} is empty: no epoch of this run has finished yet")
    return records


def _matplotlib():
    """``(Figure, FigureCanvasAgg, MaxNLocator)``, or MatplotlibMissingError."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise MatplotlibMissingError(
            f"plotting needs matplotlib, which is not installed; install it with: "
            f"{INSTALL_HINT}") from None
    return Figure, FigureCanvasAgg, MaxNLocator


def _series(records, key):
    """Epochs and values of ``key`` for the records where it has a finite value (a null
    or a NaN/infinite value, which JSON from Python may hold, is not drawn)."""
    points = [(r["epoch"], float(r[key])) for r in records
              if r.get(key) is not None and math.isfinite(r[key])]
    return [p[0] for p in points], [p[1] for p in points]


def curves_figure(records, title=None):
    """A matplotlib ``Figure`` (Agg canvas attached) with a panel each for loss and
    accuracy per epoch (the training curve, and the held-out one, labelled "validation"
    or "test", at the epochs that have one) and, when the records hold it, one for the
    learning rate."""
    Figure, FigureCanvasAgg, MaxNLocator = _matplotlib()
    lr = _series(records, "lr")
    panels = len(PANELS) + bool(lr[0])
    figure = Figure(figsize=(WIDTH_INCHES * panels / len(PANELS), HEIGHT_INCHES), dpi=DPI,
                    layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, panels)
    epochs = sorted({r["epoch"] for r in records})
    for ax, (panel_title, ylabel, train_key, held_key) in zip(axes, PANELS):
        ax.plot(*_series(records, train_key), marker="o", markersize=3, label="train")
        for prefix, label in HELD_OUT.items():
            held_epochs, held_values = _series(records, f"{prefix}_{held_key}")
            if held_epochs:
                ax.plot(held_epochs, held_values, marker="o", markersize=3, label=label)
        ax.set_title(panel_title)
        ax.set_ylabel(ylabel)
        ax.legend()
    if lr[0]:
        ax = axes[-1]
        ax.plot(*lr, marker="o", markersize=3, label="learning rate")
        ax.set_title("Learning rate")
        ax.set_ylabel("lr")
        ax.legend()
    for ax in axes:
        ax.set_xlabel("epoch")
        if len(epochs) == 1:  # the locator would put fractions of an epoch around it
            ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    if title:
        figure.suptitle(title)
    return figure


def confusion_figure(matrix, title=None):
    """A matplotlib ``Figure`` of a confusion matrix (``matrix[i, j]``: images of true
    class ``i`` predicted as ``j``), each cell showing its count, rows normalised for the
    colours."""
    import numpy as np

    Figure, FigureCanvasAgg, _ = _matplotlib()
    matrix = np.asarray(matrix)
    k = len(matrix)
    size = min(max(4.0, 0.6 * k + 2), 20.0)
    figure = Figure(figsize=(size, size), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    totals = np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(matrix / totals, cmap="Blues", vmin=0, vmax=1)
    if k <= 30:
        for i in range(k):
            for j in range(k):
                share = matrix[i, j] / totals[i, 0]
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if share > 0.5 else "black")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if title:
        ax.set_title(title)
    return figure


def _output_path(run_dir, out, default=DEFAULT_NAME):
    out = Path(out) if out is not None else Path(run_dir) / default
    if out.is_dir():
        raise PlotError(f"cannot write the plot to {out}: it is a directory")
    try:
        check_writable_target(out)
    except NotARegularFileError as exc:
        raise PlotError(f"cannot write the plot: {exc}") from None
    parent = out.parent
    if not parent.is_dir():
        problem = "does not exist" if not parent.exists() else "is not a directory"
        raise PlotError(f"cannot write the plot to {out}: the directory {parent} {problem}")
    return out


def plot_run(run_dir, out=None):
    """Draw the loss and accuracy curves of ``run_dir`` into the PNG ``out`` (default
    ``run_dir/curves.png``), replacing it atomically; returns the path written."""
    _matplotlib()  # say that the extra is missing before anything else
    records = read_metrics(run_dir)
    out = _output_path(run_dir, out)
    name = Path(run_dir).resolve().name
    epochs = len(records)
    figure = curves_figure(records, title=f"{name}: {epochs} epoch{'s' if epochs != 1 else ''}")
    atomic_write(out, lambda f: figure.savefig(f, format="png"))
    return out


def plot_confusion(run_dir, out=None, data=None):
    """Draw the confusion matrix of ``run_dir``'s trained model on the test split of its
    data (or of ``data``, a dataset spec) into the PNG ``out`` (default
    ``run_dir/confusion.png``); returns the path written."""
    _matplotlib()
    from .confusion import confusion_matrix
    from .data import load_data
    from .training_run import DataMismatchError, check_data, load_trained_from

    if not Path(run_dir).is_dir():
        raise PlotError(f"{run_dir} is not a directory (expected a run directory)")
    model, source = load_trained_from(run_dir)
    dataset = load_data(data or model.definition.data)
    if dataset.x_test is None:
        raise DataMismatchError(f"{dataset.name} has no test split (x_test, y_test)")
    check_data(model, dataset)
    out = _output_path(run_dir, out, CONFUSION_NAME)
    matrix = confusion_matrix(model, dataset.x_test, dataset.y_test)
    accuracy = matrix.trace() / max(matrix.sum(), 1)
    figure = confusion_figure(matrix, title=f"{Path(run_dir).resolve().name}: {dataset.name} "
                                            f"test split, accuracy {accuracy:.4f}")
    atomic_write(out, lambda f: figure.savefig(f, format="png"))
    return out
