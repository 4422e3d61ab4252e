"""The monitored metric of a run: its best epoch (``best.npz``) and early stopping.

Both are functions of the metrics history alone (one dict per finished epoch), so a
resumed run, whose checkpoint holds the history, decides exactly as the uninterrupted
one: no state of their own to save.

An epoch improves on the best so far when its value beats it by more than ``min_delta``
(lower for a loss, higher for an accuracy), as Keras' ``EarlyStopping``; the first epoch
with a value is the first best. Early stopping ends training once ``patience`` epochs in
a row have not improved.
"""
import math

MONITORS = ("val_loss", "val_accuracy")
DEFAULT_MONITOR = "val_accuracy"
DEFAULT_PATIENCE = 3  # epochs without improvement (PyTorch Lightning's default)

__all__ = ["MONITORS", "DEFAULT_MONITOR", "DEFAULT_PATIENCE", "held_out_key", "best_epoch",
           "should_stop", "stop_message"]


def held_out_key(monitor, held_out):
    """The history key of ``monitor`` when the held-out figures are ``held_out``'s
    ("val" or "test"): ``val_accuracy`` is ``test_accuracy`` on the test split."""
    return f"{held_out}_{monitor.split('_', 1)[1]}"


def _better(value, best, key, min_delta):
    if key.endswith("loss"):
        return value < best - min_delta
    return value > best + min_delta


def best_epoch(history, key, min_delta=0.0):
    """``(epoch, value, epochs since it)`` of the best ``key`` in ``history`` (epochs
    count from 1), or None when no epoch has a finite value of it."""
    best = None
    for m in history:
        value = m.get(key)
        if value is None or not math.isfinite(value):
            continue
        if best is None or _better(value, best[1], key, min_delta):
            best = (m["epoch"], value)
    if best is None:
        return None
    return best[0], best[1], history[-1]["epoch"] - best[0]


def should_stop(history, key, patience, min_delta=0.0):
    """Whether ``patience`` epochs have passed without improving ``key``."""
    best = best_epoch(history, key, min_delta)
    return best is not None and best[2] >= patience


def stop_message(history, key, patience, min_delta=0.0):
    epoch, value, _ = best_epoch(history, key, min_delta)
    by = f" by more than {min_delta:g}" if min_delta else ""
    return (f"early stopping after epoch {history[-1]['epoch']}: {key} has not improved{by} "
            f"for {patience} epochs (best {value:.4f} in epoch {epoch})")
