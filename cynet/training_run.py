"""A training run as the command line does it: definition + data -> run directory.

``train(...)`` validates everything before training, writes the run directory as it goes
(see ``cynet.rundir``) and can continue a killed or interrupted run from its checkpoint
to the very weights an uninterrupted run ends with.
"""
import copy
from dataclasses import dataclass
from pathlib import Path

from . import memory, monitor, training as training_loop
from ._npzfile import NpzReader
from .checkpoint import CHECKPOINT_META, differences, fingerprint
from .data import load_data
from .definition import load_json
from .model import Model
from .progress import Progress
from .rundir import (CHECKPOINT, DEFINITION, WEIGHTS, RunDir, RunDirError,
                     check_not_overwriting, check_resumable, default_dir)
from .training import check_inputs, check_labels, validation_count


class DataMismatchError(ValueError):
    """The data does not fit the model (input shape or labels)."""


class Interrupted(Exception):
    """Training was interrupted (Ctrl-C); the last checkpoint is on disk, or ``epoch`` is
    None: the run was stopped before its first checkpoint, and ``--out run_dir`` starts
    it again."""

    def __init__(self, run_dir, epoch):
        self.run_dir, self.epoch = run_dir, epoch
        if epoch is None:
            super().__init__(f"interrupted before the first checkpoint was saved in {run_dir}")
        else:
            super().__init__(f"interrupted; the checkpoint after epoch {epoch} is in {run_dir}")


class WriteFailed(Exception):
    """Writing into the run directory failed (a full disk, say); as for Interrupted, the
    last checkpoint is on disk, or ``epoch`` is None: nothing is saved yet. ``error`` is
    the OSError, naming the file."""

    def __init__(self, run_dir, epoch, error):
        self.run_dir, self.epoch, self.error = run_dir, epoch, error
        super().__init__(f"{error.strerror or error}: {error.filename}")


def _stopped(exc, run_dir, epoch):
    """What a KeyboardInterrupt or an OSError while the run writes its files becomes."""
    if isinstance(exc, OSError):
        return WriteFailed(run_dir, epoch, exc)
    return Interrupted(run_dir, epoch)


@dataclass
class Overrides:
    """Command-line values that replace the definition's."""

    data: str = None
    epochs: int = None
    batch_size: int = None
    lr: float = None
    seed: int = None

    def flags(self):
        """The command-line options these overrides came from, as (flag, value) pairs."""
        names = {"data": "--data", "epochs": "--epochs", "batch_size": "--batch-size",
                 "lr": "--lr", "seed": "--seed"}
        return [(flag, getattr(self, key)) for key, flag in names.items()
                if getattr(self, key) is not None]

    def apply(self, doc):
        doc = copy.deepcopy(doc)
        if not isinstance(doc, dict):
            return doc  # validation reports it
        training = doc.setdefault("training", {})
        if not isinstance(training, dict):
            return doc
        for key in ("epochs", "batch_size", "seed"):
            if getattr(self, key) is not None:
                training[key] = getattr(self, key)
        if self.lr is not None:
            optimizer = doc.setdefault("optimizer", {"type": "sgd"})
            if isinstance(optimizer, dict):
                optimizer["lr"] = self.lr
        if self.data is not None:
            doc["data"] = self.data
        return doc


def check_data(model, dataset):
    """Raise DataMismatchError naming what in ``dataset`` does not fit ``model``."""
    splits = [("training", dataset.x_train, dataset.y_train)]
    if dataset.x_test is not None:
        splits.append(("test", dataset.x_test, dataset.y_test))
    for split, x, y in splits:
        try:
            check_inputs(x, model.input_shape)
            check_labels(y, len(x), model.definition.loss, model.n_outputs)
        except (TypeError, ValueError) as exc:
            raise DataMismatchError(f"{split} data of {dataset.name}: {exc}") from None


def _seed_from_checkpoint(doc, checkpoint_doc):
    """A resumed run without an explicit seed keeps the checkpoint's seed."""
    training = doc.get("training") if isinstance(doc, dict) else None
    if isinstance(training, dict) and training.get("seed") is None:
        training["seed"] = (checkpoint_doc.get("training") or {}).get("seed")
    return doc


def train(model_path, overrides=None, out=None, resume=None, stream=None, bar=None,
          overwrite=False, init=None):
    """Train the definition at ``model_path``; returns ``(model, run_dir, test_metrics)``.
    The run directory is locked for the whole run (see ``cynet.rundir``): a directory
    another process trains in is refused. ``overwrite``: an ``out`` that holds a run is
    emptied of that run's files first (never of anything else) instead of refused.
    ``init``: a weights file or run directory whose weights (and buffers) the model
    starts from, for fine-tuning; they must fit the definition exactly."""
    held = []
    try:
        return _train(model_path, overrides, out, resume, stream, bar, held, overwrite, init)
    finally:
        for run in held:
            run.unlock()


def _already_a_run(run):
    return RunDirError(f"{run.path} already holds a run; continue it with --resume "
                       f"{run.path}, replace it with --overwrite, or choose another --out")


def _train(model_path, overrides, out, resume, stream, bar, held, overwrite=False,
           init=None):
    overrides = overrides or Overrides()
    doc = overrides.apply(load_json(model_path))
    lr_override = None  # the learning rate a resume was given, by --lr now or before
    if resume is not None:
        run = RunDir(resume)
        held.append(run)
        run.check_has_checkpoint()
        run.lock()  # before reading: the checkpoint is then the last one written
        arrays, meta, checkpoint_doc = run.load_checkpoint()
        doc = _seed_from_checkpoint(doc, checkpoint_doc)
        if overrides.lr is None and _lr_overridden(meta):  # a rate set by an earlier --lr
            lr_override = _lr_of(checkpoint_doc)
            doc = _with_lr(doc, lr_override)
        elif overrides.lr is not None:
            lr_override = overrides.lr
    model = Model.from_dict(doc)
    trained_doc = model.definition.to_dict()
    if resume is not None:  # say what changed before anything else can go wrong
        # --lr may change the rate of a resumed run (to recover from divergence): the
        # rest must be the checkpoint's
        check_resumable(checkpoint_doc, meta,
                        trained_doc if overrides.lr is None
                        else _with_lr(trained_doc, _lr_of(checkpoint_doc)))
    if init is not None:  # before the data and the run directory: a misfit costs nothing
        start = load_trained(init)
        model.load_state_arrays(start.state_arrays(), source=str(init))
    dataset = load_data(model.definition.data)
    check_data(model, dataset)
    # before the run directory is made: a refused run leaves nothing to clean up
    memory.check_training(model.network, model.input_shape,
                          min(model.definition.training["batch_size"], len(dataset.x_train)),
                          model.optimizer)

    if resume is not None:
        run.restore(model, arrays, meta)
        if not model.definition.training.get("validation_split") and dataset.x_test is not None:
            _relabel_test_metrics(model.history)
        run.remove_temporaries()  # of a killed run; we hold the lock, so none is in use
        try:
            run.write_definition(trained_doc)  # --epochs may have been raised
            # the checkpoint is the source of truth: a run killed between writing it and
            # metrics.jsonl (or a damaged metrics.jsonl) gets the lines the checkpoint has
            run.write_metrics(model.history)
        except (KeyboardInterrupt, OSError) as exc:  # the checkpoint is untouched: resume again
            raise _stopped(exc, run.path, model.epoch) from None
    else:
        if out is not None:
            run = RunDir(out)
            if run.checkpoint_path().exists() and not overwrite:
                raise _already_a_run(run)
            # `train model.json --out .` would replace the definition with the run's copy
            check_not_overwriting(run.path / DEFINITION, [model_path])
            run.create()
        else:
            run = RunDir(default_dir(model_path, create=True))
        held.append(run)
        run.lock()
        if overwrite:
            run.remove_run()  # with the lock held: no other process writes it now
        if run.checkpoint_path().exists():  # written by a process that held the lock
            raise _already_a_run(run)
        run.remove_temporaries()
        try:
            run.write_definition(trained_doc)
            run.save_checkpoint(model, trained_doc)  # something to resume before epoch 1
        except (KeyboardInterrupt, OSError) as exc:
            # the checkpoint is there (the interrupt came after its rename) or not at
            # all (atomic_write removed its temporary file): resumable, or restartable
            # with the same --out
            raise _stopped(exc, run.path,
                           0 if run.checkpoint_path().exists() else None) from None

    training = model.definition.training
    split = training.get("validation_split") or 0.0
    n_train = len(dataset.x_train) - validation_count(len(dataset.x_train), split)
    validation, held_out = None, "val"
    if not split and dataset.x_test is not None:
        # the held-out figures are the test split's: called so, never validation
        validation, held_out = (dataset.x_test, dataset.y_test), "test"
    stopping = training.get("early_stopping") or {}
    monitored = monitor.held_out_key(stopping.get("monitor", monitor.DEFAULT_MONITOR), held_out)
    min_delta = stopping.get("min_delta", 0.0)
    progress = Progress(training["epochs"], n_train, stream=stream, bar=bar)
    held_text = f"{split:g} held out for validation" if split else (
        "the test split held out" if validation else "no held-out data")
    progress.message(f"training {model_path} on {dataset.name} ({n_train} images, "
                     f"{held_text}) into {run.path}")

    saved = {"epoch": model.epoch}

    def epoch_done(metrics):
        if lr_override is not None:
            metrics["lr_override"] = lr_override  # in the history: later resumes keep it
        # best.npz first: a run killed before its checkpoint redoes this epoch (the same
        # weights) and writes it again; one killed after finds it written
        best = monitor.best_epoch(model.history, monitored, min_delta)
        if best is not None and best[0] == model.epoch:
            model.save(run.best_path())
        run.save_checkpoint(model, trained_doc)  # then the metrics never run ahead of it
        saved["epoch"] = model.epoch
        run.write_metrics(model.history)
        progress.end_epoch(metrics)

    def on_batch(done, total, loss):
        progress.start_epoch(model.epoch + 1)
        progress.batch(done, total, loss)

    try:
        training_loop.fit(model, dataset.x_train, dataset.y_train,
                          epochs=max(0, training["epochs"] - model.epoch),
                          validation_data=validation, callback=epoch_done, on_batch=on_batch,
                          held_out=held_out)
        model.save(run.weights_path())
    except (KeyboardInterrupt, OSError) as exc:
        raise _stopped(exc, run.path, saved["epoch"]) from None
    if stopping and training_loop.stopped_early(model):
        patience = stopping.get("patience", monitor.DEFAULT_PATIENCE)
        progress.message(monitor.stop_message(model.history, monitored, patience, min_delta))
    best = monitor.best_epoch(model.history, monitored, min_delta)
    if best is not None:
        where = ("selected on the test split: set training.validation_split to select on "
                 "held-out training data" if held_out == "test" else "on the validation split")
        progress.message(f"best epoch {best[0]} by {monitored} ({best[1]:.4f}), {where}: "
                         f"{run.best_path()}")
    test = None
    if dataset.x_test is not None:
        test = model.evaluate(dataset.x_test, dataset.y_test)
    return model, run, test


def _lr_of(doc):
    return ((doc or {}).get("optimizer") or {}).get("lr")


def _with_lr(doc, lr):
    """``doc`` with its optimizer's learning rate replaced by ``lr``."""
    doc = copy.deepcopy(doc)
    if isinstance(doc, dict) and isinstance(doc.get("optimizer"), dict) and lr is not None:
        doc["optimizer"]["lr"] = lr
    return doc


def _lr_overridden(meta):
    """Whether a resume with ``--lr`` trained some of the checkpoint's epochs."""
    history = meta.get("history")
    return isinstance(history, list) and any(
        isinstance(m, dict) and "lr_override" in m for m in history)


def _relabel_test_metrics(history):
    """A run resumed from a checkpoint of an earlier release, which called the test
    split's figures ``val_*``, gets them under their true names (only such a run's
    history holds ``val_*`` without a validation split)."""
    for m in history:
        for what in ("loss", "accuracy"):
            if f"val_{what}" in m and f"test_{what}" not in m:
                m[f"test_{what}"] = m.pop(f"val_{what}")


def load_trained(path):
    """A model from a run directory (its final weights, else its checkpoint) or a weights
    file. A run's weights must belong to its ``model.json``; a checkpoint file given in
    place of a weights file is refused, saying what to give instead."""
    return load_trained_from(path)[0]


def load_trained_from(path):
    """``(model, file)``: :func:`load_trained` and the file its weights came from."""
    path = Path(path)
    if path.is_dir():
        run = RunDir(path)
        if run.weights_path().exists():
            model = Model.load(run.weights_path())
            _check_belongs(run, model)
            return model, run.weights_path()
        if not run.checkpoint_path().exists():
            raise RunDirError(f"{path}: not a run directory (it holds neither {WEIGHTS} nor "
                              f"{CHECKPOINT})")
        arrays, meta, doc = run.load_checkpoint()
        model = Model.from_dict(doc)
        run.restore(model, arrays, meta)
        return model, run.checkpoint_path()
    if not path.exists():
        raise RunDirError(f"{path} does not exist (expected a run directory or a weights .npz)")
    if is_checkpoint(path):
        raise RunDirError(
            f"{path} is a training checkpoint, not a weights file: give its run directory "
            f"({path.parent}), which uses the run's final weights, or its checkpoint while "
            "the run is unfinished")
    return Model.load(path), path


def is_checkpoint(path):
    """Whether ``path`` is an .npz holding a checkpoint's metadata (read from the zip's
    directory only; a file that is not a readable .npz is not one)."""
    try:
        with NpzReader(path, ValueError) as npz:
            return CHECKPOINT_META in npz.names
    except ValueError:
        return False


def _check_belongs(run, model):
    """A run directory's weights must be those of its model.json (a changed or copied
    model.json would otherwise evaluate one model under another's name)."""
    definition = run.path / DEFINITION
    if not definition.exists():
        return
    try:
        doc = load_json(definition)
    except ValueError:
        return  # reported where model.json itself is used
    trained = model.definition.to_dict()
    if fingerprint(doc) != fingerprint(trained):
        changes = differences(doc, trained) or ["the definitions differ"]
        raise RunDirError(
            f"{run.weights_path()} does not belong to {definition}: "
            + "; ".join(changes[:3]) + (f" (and {len(changes) - 3} more)" if len(changes) > 3
                                        else ""))


__all__ = ["train", "load_trained", "load_trained_from", "Overrides", "Interrupted", "WriteFailed",
           "DataMismatchError"]
