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
import hashlib
import json
from pathlib import Path

import numpy as np

from ._atomic import atomic_write
from ._npzfile import DEFINITION_ARRAY, read_cynet_file
from .definition import DefinitionError, build_layers, parse
from .model import WeightsFileError, atomic_savez

DEFINITION = "model.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.npz"
WEIGHTS = "weights.npz"

# of checkpoint.npz; a checkpoint of a higher version is refused
CHECKPOINT_FORMAT_VERSION = 1
CHECKPOINT_META = "cynet_checkpoint"


class RunDirError(ValueError):
    """A run directory or checkpoint that cannot be used, and why."""


class CheckpointError(RunDirError):
    """A checkpoint file that is damaged, not a checkpoint, or of a newer format."""


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


def _canonical(doc):
    """The parts of a definition that must match for a resumed run to be the same run."""
    doc = json.loads(json.dumps(doc))
    doc.get("training", {}).pop("epochs", None)  # may be raised to train further
    return doc


def fingerprint(doc):
    text = json.dumps(_canonical(doc), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def differences(old, new, place=""):
    """Human-readable list of what differs between two JSON values."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{place}.{key}" if place else str(key)
            if key not in new:
                out.append(f"{where} was {json.dumps(old[key])}, now absent")
            elif key not in old:
                out.append(f"{where} is new ({json.dumps(new[key])})")
            else:
                out.extend(differences(old[key], new[key], where))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out.extend(differences(a, b, f"{place}[{i}]"))
        return out
    if old != new or type(old) is not type(new):  # 1, 1.0 and true fingerprint apart
        return [f"{place or 'definition'} changed from {json.dumps(old)} to {json.dumps(new)}"]
    return []


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
        atomic_write_text(self.path / DEFINITION, json.dumps(doc, indent=2) + "\n")

    def write_metrics(self, history):
        """One JSON object per epoch with all six keys (val_ ones null without validation)."""
        keys = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")
        text = "".join(json.dumps({k: m.get(k) for k in keys}) + "\n" for m in history)
        atomic_write_text(self.path / METRICS, text)

    def checkpoint_path(self):
        return self.path / CHECKPOINT

    def save_checkpoint(self, model, doc):
        arrays, meta = model.training_state()
        meta.update(format_version=CHECKPOINT_FORMAT_VERSION, fingerprint=fingerprint(doc))
        arrays = dict(arrays)
        arrays[CHECKPOINT_META] = np.array(json.dumps(meta))
        arrays[DEFINITION_ARRAY] = np.array(json.dumps(doc))
        atomic_savez(self.checkpoint_path(), arrays)

    def load_checkpoint(self):
        """``(arrays, meta, definition)`` of the last checkpoint, after checking the
        file's format version and that its definition is valid and has the fingerprint
        recorded with it; any problem is a CheckpointError naming the file."""
        path = self.checkpoint_path()
        if not self.path.is_dir():
            raise RunDirError(f"{self.path}: no such run directory")
        if not path.exists():
            raise RunDirError(f"{path} is missing: nothing to resume in {self.path}")
        meta, doc, arrays = read_cynet_file(path, CheckpointError, CHECKPOINT_META,
                                            "checkpoint", CHECKPOINT_FORMAT_VERSION)
        try:
            build_layers(parse(doc), 0)
        except DefinitionError as exc:
            raise CheckpointError(f"{path}: its model definition is invalid: {exc}") from None
        if "fingerprint" not in meta:
            raise CheckpointError(f"{path}: no fingerprint of the definition in its "
                                  "metadata; the file is damaged")
        if meta["fingerprint"] != fingerprint(doc):
            raise CheckpointError(f"{path}: its definition does not match the fingerprint "
                                  "recorded with it; the file is damaged")
        return arrays, meta, doc

    def restore(self, model, arrays, meta):
        """Load a checkpoint's ``arrays`` and ``meta`` into ``model`` (built from its
        definition); a state that does not fit is a CheckpointError naming the file."""
        try:
            model.load_training_state(arrays, meta, source=str(self.checkpoint_path()))
        except WeightsFileError as exc:
            raise CheckpointError(str(exc)) from None

    def weights_path(self):
        return self.path / WEIGHTS


def check_resumable(checkpoint_doc, meta, doc):
    """Refuse a resume whose definition differs from the checkpoint's, naming the change."""
    if meta.get("fingerprint") == fingerprint(doc):
        return
    changes = differences(_canonical(checkpoint_doc), _canonical(doc)) or [
        "no difference found, yet the fingerprints differ"]
    raise RunDirError(
        "the definition differs from the checkpoint's, so the run cannot be resumed: "
        + "; ".join(changes[:5])
        + (f" (and {len(changes) - 5} more)" if len(changes) > 5 else "")
    )
