"""A training run's directory: definition, metrics, checkpoints and final weights.

    model.json       the definition as trained (after command-line overrides)
    metrics.jsonl    one JSON object per finished epoch
    checkpoint.npz   after every epoch: weights, optimizer state, RNG states, epoch and a
                     fingerprint of the definition, so ``--resume`` continues exactly;
                     its metadata carries a format version (CHECKPOINT_FORMAT_VERSION)
    weights.npz      the final model (``cynet.Model.load``)

Every file is written to a temporary name and renamed into place, so a run killed at
any moment leaves the previous good version of each file.
"""
import datetime
import json
from pathlib import Path

from . import checkpoint
from ._atomic import atomic_write
from .checkpoint import CHECKPOINT_FORMAT_VERSION, CheckpointError  # noqa: F401 (re-exported)
from .weights import WeightsFileError

DEFINITION = "model.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.npz"
WEIGHTS = "weights.npz"


class RunDirError(ValueError):
    """A run directory or checkpoint that cannot be used, and why."""


def atomic_write_text(path, text):
    atomic_write(path, lambda f: f.write(text), binary=False)


def default_dir(model_path, root="runs"):
    """``runs/<model name>-<date>-<time>``, with a suffix if that already exists."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{Path(model_path).stem}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


class RunDir:
    """Reads and writes the files of one run directory."""

    def __init__(self, path):
        self.path = Path(path)

    def create(self):
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create the run directory {self.path}: {exc.strerror}") from None
        return self

    def write_definition(self, doc):
        atomic_write_text(self.path / DEFINITION, json.dumps(doc, indent=2, allow_nan=False) + "\n")

    def write_metrics(self, history):
        """One JSON object per epoch with all six keys (val_ ones null without validation)."""
        keys = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")
        text = "".join(json.dumps({k: m.get(k) for k in keys}) + "\n" for m in history)
        atomic_write_text(self.path / METRICS, text)

    def checkpoint_path(self):
        return self.path / CHECKPOINT

    def save_checkpoint(self, model, doc):
        checkpoint.write(self.checkpoint_path(), model, doc)

    def load_checkpoint(self):
        """``(arrays, meta, definition)`` of the last checkpoint (see ``checkpoint.read``)."""
        if not self.path.is_dir():
            raise RunDirError(f"{self.path}: no such run directory")
        if not self.checkpoint_path().exists():
            raise RunDirError(f"{self.checkpoint_path()} is missing: nothing to resume in "
                              f"{self.path}")
        return checkpoint.read(self.checkpoint_path())

    def restore(self, model, arrays, meta):
        """Load a checkpoint's ``arrays`` and ``meta`` into ``model`` (built from its
        definition); a state that does not fit is a CheckpointError naming the file."""
        try:
            checkpoint.load_training_state(model, arrays, meta,
                                           source=str(self.checkpoint_path()))
        except WeightsFileError as exc:
            raise CheckpointError(str(exc)) from None

    def weights_path(self):
        return self.path / WEIGHTS


def check_resumable(checkpoint_doc, meta, doc):
    """Refuse a resume whose definition differs from the checkpoint's, naming the change."""
    checkpoint.check_resumable(checkpoint_doc, meta, doc, error=RunDirError)
