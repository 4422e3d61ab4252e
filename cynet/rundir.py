"""A training run's directory: definition, metrics, checkpoints and final weights.

    model.json       the definition as trained (after command-line overrides)
    metrics.jsonl    one JSON object per finished epoch
    checkpoint.npz   after every epoch: weights, optimizer state, RNG states, epoch and a
                     fingerprint of the definition, so ``--resume`` continues exactly;
                     its metadata carries a format version (CHECKPOINT_FORMAT_VERSION)
    weights.npz      the final model (``cynet.Model.load``)
    .lock            locked (``flock``) by the process training in the directory, which
                     writes its pid into it; never removed, a lock dies with its process

Only one process trains in a run directory at a time: ``train --out`` and ``--resume``
take the lock for the whole run and refuse a directory another process holds.

Every file is written to a temporary name and renamed into place, so a run killed at
any moment leaves the previous good version of each file.
"""
import datetime
import errno
import json
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one process at a time is not enforced
    fcntl = None

from . import checkpoint
from ._atomic import TEMP_PREFIX, atomic_write
from .checkpoint import CHECKPOINT_FORMAT_VERSION, CheckpointError  # noqa: F401 (re-exported)
from .weights import WeightsFileError

DEFINITION = "model.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.npz"
WEIGHTS = "weights.npz"
BEST = "best.npz"
LOCK = ".lock"


def metrics_line(metrics):
    """An epoch's metrics as metrics.jsonl writes them (see ``RunDir.write_metrics``)."""
    held = "test" if "test_loss" in metrics else "val"
    keys = ("epoch", "loss", "accuracy", f"{held}_loss", f"{held}_accuracy", "lr", "seconds")
    line = {k: metrics.get(k) for k in keys}
    if "lr_override" in metrics:  # the rate given with --resume DIR --lr X
        line["lr_override"] = metrics["lr_override"]
    return line


class RunDirError(ValueError):
    """A run directory or checkpoint that cannot be used, and why."""


def atomic_write_text(path, text):
    atomic_write(path, lambda f: f.write(text), binary=False)


def default_dir(model_path, root="runs", create=False):
    """``runs/<model name>-<date>-<time>``, with a suffix if that already exists; with
    ``create``, the directory is made here, and a name another process took in the
    meantime is passed over (two runs started in the same second get two directories)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{Path(model_path).stem}-{stamp}"
    path, n = base, 1
    while True:
        if not path.exists():
            if not create:
                return path
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.mkdir()
                return path
            except FileExistsError:
                pass
            except OSError as exc:
                raise RunDirError(f"cannot create the run directory {path}: "
                                  f"{exc.strerror}") from None
        n += 1
        path = base.with_name(f"{base.name}-{n}")


class RunDir:
    """Reads and writes the files of one run directory."""

    def __init__(self, path):
        self.path = Path(path)
        self._lock_fd = None

    def lock(self):
        """Take the directory's exclusive lock (non-blocking) until :meth:`unlock` or the
        end of the process; a directory another process holds is a RunDirError naming
        that process's pid."""
        if fcntl is None or self._lock_fd is not None:
            return self
        path = self.path / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
                         | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except OSError as exc:
            raise RunDirError(f"cannot lock the run directory {self.path}: {path}: "
                              f"{exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise RunDirError(f"cannot lock the run directory {self.path}: "
                                  f"{exc.strerror}") from None
            who = f"another cynet process (pid {holder})" if holder else "another process"
            raise RunDirError(f"{self.path} is in use by {who}; wait for it to finish or "
                              f"stop it, or choose another directory") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd
        return self

    def unlock(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # the flock goes with the last descriptor
            self._lock_fd = None

    def create(self):
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create the run directory {self.path}: {exc.strerror}") from None
        return self

    def write_definition(self, doc):
        atomic_write_text(self.path / DEFINITION, json.dumps(doc, indent=2, allow_nan=False) + "\n")

    def write_metrics(self, history):
        """One JSON object per epoch: ``epoch``, ``loss``, ``accuracy``, the held-out
        ``val_loss``, ``val_accuracy`` (null without held-out data) or, computed on the
        test split, ``test_loss``, ``test_accuracy``, then ``lr`` and ``seconds``, and
        ``lr_override`` for an epoch trained after ``--resume DIR --lr X``."""
        text = "".join(json.dumps(metrics_line(m)) + "\n" for m in history)
        atomic_write_text(self.path / METRICS, text)

    def checkpoint_path(self):
        return self.path / CHECKPOINT

    def save_checkpoint(self, model, doc):
        checkpoint.write(self.checkpoint_path(), model, doc)

    def load_checkpoint(self):
        """``(arrays, meta, definition)`` of the last checkpoint (see ``checkpoint.read``)."""
        self.check_has_checkpoint()
        return checkpoint.read(self.checkpoint_path())

    def check_has_checkpoint(self):
        """Refuse (RunDirError) a path that is no directory or holds no checkpoint."""
        if not self.path.is_dir():
            raise RunDirError(f"{self.path}: no such run directory")
        if not self.checkpoint_path().exists():
            if (self.path / DEFINITION).exists():
                raise RunDirError(f"{self.checkpoint_path()} is missing: the run in {self.path} "
                                  f"was stopped before its first checkpoint; start it again "
                                  f"with --out {self.path}")
            raise RunDirError(f"{self.checkpoint_path()} is missing: nothing to resume in "
                              f"{self.path}")

    def remove_temporaries(self):
        """Remove the temporary files a killed writer of the run's files left behind
        (``.tmp-*`` of their suffixes; a plot's ``.png`` one may be in use). Call it with
        the lock held."""
        suffixes = {Path(name).suffix for name in (DEFINITION, METRICS, CHECKPOINT, WEIGHTS)}
        for path in self.path.glob(TEMP_PREFIX + "*"):
            try:
                if path.suffix in suffixes and path.is_file() and not path.is_symlink():
                    path.unlink()
            except OSError:
                pass

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

    def remove_run(self):
        """Delete the files a run writes here (its definition, metrics, checkpoint,
        weights, best weights and plots), and nothing else. Call it with the lock held."""
        for name in (CHECKPOINT, METRICS, WEIGHTS, BEST, DEFINITION, "curves.png",
                     "confusion.png"):
            try:
                (self.path / name).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise RunDirError(f"cannot remove {self.path / name} to overwrite the run: "
                                  f"{exc.strerror}") from None

    def best_path(self):
        """The weights of the best epoch so far by the monitored metric."""
        return self.path / BEST


def run_files(path):
    """The files of the run directory ``path`` that a command must never overwrite."""
    return [Path(path) / name for name in (DEFINITION, METRICS, CHECKPOINT, WEIGHTS)]


def check_not_overwriting(out, protected):
    """Refuse (RunDirError) an output path that is one of the ``protected`` files (that
    exist), say a run's checkpoint or the command's own input: writing it would lose it."""
    for path in protected:
        try:
            same = os.path.samefile(out, path)
        except OSError:  # either does not exist (or cannot be examined): no clash
            continue
        if same:
            raise RunDirError(f"refusing to write to {out}: it is {path}, which this command "
                              f"reads or which belongs to a run; choose another output path")


def _read_pid(fd):
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def check_resumable(checkpoint_doc, meta, doc):
    """Refuse a resume whose definition differs from the checkpoint's, naming the change."""
    checkpoint.check_resumable(checkpoint_doc, meta, doc, error=RunDirError)
