"""The ``cynet`` command: thin click commands over the library.

Exit status: 0 done; 2 bad usage, definition or input data; 1 failure while running
(including a loss that became NaN/inf); 130 on Ctrl-C, after the checkpoint is saved.
A user error prints one ``Error: ...`` line; ``--debug`` or ``CYNET_DEBUG=1`` shows the
traceback instead.
"""
import errno
import os
import shlex
import sys
import warnings
from pathlib import Path

import click

EXIT_USAGE, EXIT_FAILURE, EXIT_INTERRUPTED = 2, 1, 130


class UserError(click.ClickException):
    """One line on stderr and an exit status, no traceback. A line break in the message
    (a file name may hold one) is shown as ``\\n``, so the error stays one line."""

    def __init__(self, message, exit_code=EXIT_USAGE):
        super().__init__(str(message).replace("\r", "\\r").replace("\n", "\\n"))
        self.exit_code = exit_code


def _debug_enabled(ctx):
    env = os.environ.get("CYNET_DEBUG", "").strip() not in ("", "0")
    return env or bool(ctx.find_root().params.get("debug"))


# what an OSError says of a path the user gave (missing, too long, not writable...), as
# opposed to a failure while running (a full disk, an I/O error)
_PATH_ERRORS = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.EACCES,
                errno.EPERM, errno.EROFS, errno.ELOOP, errno.EEXIST}


def _as_user_error(exc):
    """The exit status and message for an exception the user can act on, else None."""
    from ._regular import NotARegularFileError
    from .data import DataError
    from .definition import DefinitionError
    from .checkpoint import CheckpointError
    from .weights import WeightsFileError
    from .plot import MatplotlibMissingError, PlotError
    from .memory import InsufficientMemoryError
    from .network import LayerOutputError
    from .registry import LayerNotFoundError
    from .rundir import RunDirError
    from .training_run import DataMismatchError

    if isinstance(exc, (DefinitionError, DataError, RunDirError, DataMismatchError,
                        LayerNotFoundError, WeightsFileError, CheckpointError, PlotError,
                        NotARegularFileError, InsufficientMemoryError)):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, (MatplotlibMissingError, LayerOutputError)):
        return EXIT_FAILURE, str(exc)
    if isinstance(exc, FloatingPointError):
        return EXIT_FAILURE, str(exc)
    if isinstance(exc, MemoryError):
        return EXIT_FAILURE, "out of memory; try a smaller --batch-size"
    if isinstance(exc, OSError):  # a path the user gave cannot be used: bad usage
        code = EXIT_USAGE if exc.errno in _PATH_ERRORS else EXIT_FAILURE
        return code, f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")
    return None


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """A warning as one line on stderr, ``Warning: ...`` (no source line)."""
    text = str(message).replace("\r", "\\r").replace("\n", "\\n")
    click.echo(f"Warning: {text}", err=True)


class CynetGroup(click.Group):
    """Turns library exceptions into one-line errors with the documented exit status;
    takes ``--debug`` after the verb too (``cynet train m.json --debug``)."""

    def parse_args(self, ctx, args):
        end = args.index("--") if "--" in args else len(args)
        if "--debug" in args[1:end]:  # not the first: that one is the group's already
            args = ["--debug"] + [a for a in args[:end] if a != "--debug"] + args[end:]
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            return self._invoke(ctx)

    def _invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if _debug_enabled(ctx):
                raise
            known = _as_user_error(exc)
            if known is not None:
                raise UserError(known[1], known[0]) from None
            raise UserError(
                f"internal error: {type(exc).__name__}: {exc} (run with --debug for the "
                f"traceback and please report it)",
                EXIT_FAILURE,
            ) from None


def _version():
    from . import __version__

    return __version__


@click.group(cls=CynetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="cynet")
@click.option("--debug", is_flag=True, help="Show tracebacks (also CYNET_DEBUG=1).")
def main(debug):
    """Build and train convolutional networks from JSON model definitions."""


MODEL_FILE = click.Path(dir_okay=False, path_type=Path)


@main.command()
@click.argument("model", type=MODEL_FILE)
@click.option("--data", metavar="SPEC",
              help="fashion-mnist-mini (default), fashion-mnist, an IDX directory or an .npz.")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs to train in total.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per training step.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Learning rate.")
@click.option("--seed", type=click.IntRange(min=0), help="Seed for weights and data order.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory (default runs/<model name>-<date>-<time>).")
@click.option("--resume", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Continue the run in DIR from its last checkpoint (--lr may change its "
                   "learning rate).")
@click.option("--overwrite", is_flag=True,
              help="With --out: replace the run already in that directory.")
@click.option("--init", type=click.Path(path_type=Path), metavar="WEIGHTS",
              help="Start from these weights (a weights .npz or a run directory) to "
                   "fine-tune them.")
def train(model, data, epochs, batch_size, lr, seed, out, resume, overwrite, init):
    """Train MODEL (a JSON definition) and write a run directory."""
    from .training_run import Interrupted, Overrides, WriteFailed, train as run_training

    if out is not None and resume is not None:
        raise click.UsageError("give either --out or --resume, not both")
    if overwrite and out is None:
        raise click.UsageError("--overwrite goes with --out (the run directory to replace)")
    if init is not None and resume is not None:
        raise click.UsageError("give either --init or --resume, not both: a resumed run "
                               "starts from its checkpoint")
    overrides = Overrides(data=data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    import numpy as np

    np.seterr(all="ignore")  # a diverging loss is reported once, as an error, below
    try:
        _, run, test = run_training(model, overrides, out=out, resume=resume,
                                    overwrite=overwrite, init=init)
    except (Interrupted, WriteFailed) as exc:
        flags = "".join(f" {flag} {shlex.quote(str(value))}" for flag, value in overrides.flags())
        command = f"cynet train {shlex.quote(str(model))}{flags}"
        if exc.epoch is None:
            saved, how = f"nothing to resume in {exc.run_dir}", f"start again with: {command} --out"
        else:
            saved = f"the checkpoint after epoch {exc.epoch} is saved in {exc.run_dir}"
            how = f"continue with: {command} --resume"
        how = f"{how} {shlex.quote(str(exc.run_dir))}"
        if isinstance(exc, Interrupted):
            when = " before the first checkpoint was saved; " if exc.epoch is None else ": "
            click.echo(f"Interrupted{when}{saved}; {how}", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        error = exc.error
        fix = "free some space" if error.errno in (errno.ENOSPC, errno.EDQUOT) else "fix that"
        # a run directory the user may not write is bad usage; a full disk, a failure
        raise UserError(f"cannot write {error.filename}: {error.strerror or error}; {saved}; "
                        f"{fix}, then {how}",
                        EXIT_USAGE if error.errno in _PATH_ERRORS else EXIT_FAILURE) from None
    if test is not None:
        click.echo(f"test loss {test['loss']:.4f}  test accuracy {test['accuracy']:.4f}")
    click.echo(f"weights saved to {run.weights_path()}")


@main.command()
@click.argument("weights", type=click.Path(path_type=Path), metavar="RUN_DIR_OR_WEIGHTS")
@click.option("--data", metavar="SPEC", help="Dataset (default: the model's own).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def evaluate(weights, data, as_json):
    """Loss, accuracy, per-class accuracy and the confusion matrix of a trained model on
    the test split."""
    import json

    import numpy as np

    from .confusion import FASHION_MNIST_CLASSES, count, per_class_accuracy
    from .data import load_data
    from .rundir import DEFINITION
    from .training_run import DataMismatchError, check_data, load_trained_from

    model, source = load_trained_from(weights)
    definition = source.parent / DEFINITION if Path(weights).is_dir() else None
    dataset = load_data(data or model.definition.data)
    if dataset.x_test is None:
        raise DataMismatchError(f"{dataset.name} has no test split (x_test, y_test)")
    check_data(model, dataset)
    outputs = model.predict(dataset.x_test)  # one pass for every figure
    matrix = count(outputs, dataset.y_test)
    result = {"loss": model.loss_fn(outputs, dataset.y_test)[0],
              "accuracy": np.trace(matrix) / len(dataset.x_test)}
    per_class = per_class_accuracy(matrix)
    names = (FASHION_MNIST_CLASSES if dataset.name.startswith("fashion-mnist")
             and len(matrix) == len(FASHION_MNIST_CLASSES) else None)
    if as_json:
        click.echo(json.dumps({
            "model": None if definition is None else str(definition), "weights": str(source),
            "data": dataset.name, "images": len(dataset.x_test), "loss": result["loss"],
            "accuracy": result["accuracy"],
            "per_class_accuracy": [None if np.isnan(a) else float(a) for a in per_class],
            "confusion_matrix": matrix.tolist(),
            "classes": list(names) if names else None}))
        return
    model_text = f"model {definition}, weights {source}" if definition else f"model {source}"
    click.echo(f"{model_text}, on {len(dataset.x_test)} test images of {dataset.name}")
    click.echo(f"loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}")
    click.echo("per-class accuracy:")
    for k, (acc, total) in enumerate(zip(per_class, matrix.sum(axis=1))):
        label = f"{k}" + (f" {names[k]}" if names else "")
        shown = "-" if np.isnan(acc) else f"{acc:.4f}"
        click.echo(f"  {label:<16} {shown}  ({total} images)")
    click.echo("confusion matrix (rows: true class, columns: predicted class):")
    width = max(len(str(int(matrix.max()))), len(str(len(matrix) - 1))) + 1
    click.echo("    " + "".join(f"{j:>{width}}" for j in range(len(matrix))))
    for i, row in enumerate(matrix):
        click.echo(f"{i:>3} " + "".join(f"{v:>{width}}" for v in row))


@main.command()
@click.argument("weights", type=click.Path(path_type=Path), metavar="RUN_DIR_OR_WEIGHTS")
@click.argument("inputs", type=click.Path(dir_okay=False, path_type=Path), metavar="INPUT.npz")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the scores (default: INPUT-scores.npz next to INPUT).")
def predict(weights, inputs, out):
    """Class scores for the images in INPUT.npz's array `x`."""
    import numpy as np

    from ._atomic import check_writable_target
    from .data import load_inputs
    from .rundir import check_not_overwriting, run_files
    from .weights import atomic_savez
    from .training_run import load_trained

    out = out or inputs.with_name(inputs.stem + "-scores.npz")
    check_writable_target(out)  # a FIFO or device is refused before any work
    check_not_overwriting(out, [inputs, weights] + (run_files(weights) if weights.is_dir() else []))
    model = load_trained(weights)
    x = load_inputs(inputs, model.input_shape)
    scores = model.predict(x)
    labels = scores.argmax(axis=1) if scores.ndim == 2 else np.zeros(0, np.int64)
    atomic_savez(out, {"scores": scores, "labels": labels})
    click.echo(f"wrote scores {scores.shape} and predicted labels to {out}")


def _load_definition(path):
    from . import registry
    from .definition import build_layers, load_json, parse

    registry.isolate_imports()  # checking a definition: a plugin's os._exit cannot end it
    definition = parse(load_json(path))
    layers, out_shape = build_layers(definition, 0, allocate=False)
    return definition, layers, out_shape


@main.command()
@click.argument("model", type=MODEL_FILE)
def summary(model):
    """Layers (name, type, inputs), output shapes, multiply-adds and parameter counts of
    MODEL, and the totals."""
    from . import registry

    definition, layers, _ = _load_definition(model)
    wiring = definition.wiring
    rows = [("#", "Name", "Type", "Inputs", "Output shape", "Mult-adds", "Params", "From")]
    total = total_macs = 0
    for i, layer in enumerate(layers):
        count = sum(int(v.size) for v in layer.params.values())
        macs = _multiply_adds(layer)
        total, total_macs = total + count, total_macs + (macs or 0)
        kind = definition.layers[i]["type"]
        info = registry.source(kind)
        origin = "" if info is None or info.origin == "builtin" else f"{info.package} {info.version}"
        inputs = ", ".join("input" if j < 0 else wiring.names[j] for j in wiring.inputs[i])
        rows.append((str(i), wiring.names[i], kind, inputs, str(tuple(layer.output_shape or ())),
                     "?" if macs is None else f"{macs:,}", f"{count:,}", origin))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    right = {0, 5, 6}  # the numbers
    click.echo(f"input shape {tuple(definition.input_shape)}")
    for n, row in enumerate(rows):
        click.echo("  ".join(cell.rjust(w) if c in right else cell.ljust(w)
                             for c, (cell, w) in enumerate(zip(row, widths))).rstrip())
        if n == 0:
            click.echo("-" * (sum(widths) + 2 * (len(widths) - 1)))
    click.echo(f"total multiply-adds per sample: {total_macs:,}")
    click.echo(f"total parameters: {total:,}")


def _multiply_adds(layer):
    """A layer's multiply-adds per sample, or None when its own method fails (a plugin)."""
    try:
        return int(layer.multiply_adds())
    except Exception:  # a plugin's method: the summary still shows everything else
        return None


@main.command()
@click.argument("model", type=MODEL_FILE)
def validate(model):
    """Check MODEL without training (exit 0 when valid)."""
    definition, layers, out_shape = _load_definition(model)
    params = sum(int(v.size) for layer in layers for v in layer.params.values())
    click.echo(f"{model} is valid: {len(layers)} layers, input {tuple(definition.input_shape)}, "
               f"output {out_shape}, {params:,} parameters")


@main.command()
@click.option("--detail", is_flag=True,
              help="Import every plugin to check that it loads (listing alone reads only "
                   "the packages' metadata).")
def layers(detail):
    """Every layer type with its package and version, and broken plugins."""
    from . import registry

    registry.isolate_imports(detail)
    available = registry.available()
    width = max(len(i.type) for i in available)
    for info in available:
        click.echo(f"{info.type.ljust(width)}  {info.package} {info.version}  ({info.origin})")
    failures = registry.failures(load=detail)
    if failures:
        click.echo(f"\n{len(failures)} plugin layer(s) could not be loaded:")
        for f in failures:
            click.echo(f"  {f.type} from {f.package} {f.version}: {f.error}")
    if not detail and any(i.origin == "entry point" for i in available):
        click.echo("\n(plugins are imported when used; `cynet layers --detail` checks that "
                   "each one loads)")


@main.command()
@click.argument("types", nargs=-1, metavar="[TYPE]...")
def gradcheck(types):
    """Numerical gradient check (float64) of the named or all layer types."""
    from . import isolation, registry
    from .testing import gradcheck_layer

    registry.isolate_imports()
    names = list(types) or [info.type for info in registry.available()]
    for name in types:
        registry.get(name)  # unknown names are a usage error, before any work
    failed = 0
    for name in names:
        info = registry.source(name)
        # a plugin's check runs in a child first: its os._exit or crash cannot end this one
        isolated = isolation.gradcheck(name) if info.origin == "entry point" else None
        try:
            if isolated is not None:
                ok, line = isolated
            else:
                result = gradcheck_layer(name, raise_on_failure=False)
                line, ok = str(result), result.ok
        except BaseException as exc:  # a layer whose example cannot even run, whatever it
            # raises (a plugin's SystemExit or KeyboardInterrupt included)
            line, ok = f"{name}: FAILED to run: {type(exc).__name__}: {exc}", False
        failed += not ok
        click.echo(line)
    graph_failed = False
    if not types:  # and a small residual graph end to end: fan-out, Add, Concat
        from .testing import gradcheck_model

        graph = gradcheck_model(raise_on_failure=False)
        click.echo(f"residual graph (fan-out, Add, Concat), end to end: "
                   f"{str(graph).split(': ', 1)[1]}")
        graph_failed = not graph.ok
    click.echo(f"{len(names) - failed} of {len(names)} layer types passed")
    if failed or graph_failed:
        raise click.exceptions.Exit(EXIT_FAILURE)


@main.command()
def schema():
    """The JSON Schema of model definitions (for editors), on stdout."""
    import json

    from .schema import definition_schema

    click.echo(json.dumps(definition_schema(), indent=2))


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path), metavar="RUN_DIR")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="F.png",
              help="Where to write the PNG (default: RUN_DIR/curves.png, or "
                   "RUN_DIR/confusion.png with --confusion).")
@click.option("--confusion", is_flag=True,
              help="Draw the confusion matrix of the run's model on the test split instead.")
@click.option("--data", metavar="SPEC", help="With --confusion: the dataset (default: the "
                                             "model's own).")
def plot(run_dir, out, confusion, data):
    """Loss, accuracy and learning rate per epoch of a run, or its confusion matrix, as a
    PNG (needs the cynet-cnn[plot] extra)."""
    from .plot import plot_confusion, plot_run
    from .rundir import check_not_overwriting, run_files

    if data is not None and not confusion:
        raise click.UsageError("--data goes with --confusion")
    if out is not None:  # --out run/metrics.jsonl would replace the metrics with a PNG
        check_not_overwriting(out, run_files(run_dir))
    if confusion:
        click.echo(f"wrote the confusion matrix to {plot_confusion(run_dir, out, data)}")
        return
    click.echo(f"wrote the training curves to {plot_run(run_dir, out)}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
