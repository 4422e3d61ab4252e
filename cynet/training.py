"""Training and inference loops over a model: batches, the learning-rate schedule, the
validation split and the metrics of each epoch.

The functions take a :class:`cynet.Model` and use its public attributes (``network``,
``loss_fn``, ``optimizer``, ``schedule``, ``rng``, ``epoch``, ``history``); ``Model``'s
methods of the same names call them.
"""
import time
import warnings

import numpy as np

from . import input_range, memory, monitor
from ._suggest import layout_hint
from .augment import Augmentation
from .engine import session
from .schedules import lr_with_warmup

DEFAULT_PREDICT_BATCH = 256
_255 = np.float32(255)

__all__ = ["check_inputs", "check_labels", "to_float32", "validation_count", "correct",
           "train_step", "fit", "stopped_early", "epoch_lr", "predict", "evaluate"]


def check_inputs(x, input_shape):
    """``x`` as an array, checked as a batch of samples of the per-sample ``input_shape``."""
    x = np.asarray(x)
    if x.dtype.kind not in "uif":
        raise TypeError(f"x must be a numeric array, got dtype {x.dtype}")
    if x.ndim == len(input_shape) and tuple(x.shape) == tuple(input_shape):
        raise ValueError(f"x has shape {x.shape}: give a batch, shape (N,) + {tuple(input_shape)}")
    if x.shape[1:] != tuple(input_shape):
        raise ValueError(
            f"x has per-sample shape {x.shape[1:]}, but the model's input_shape is "
            f"{tuple(input_shape)}{layout_hint(x.shape[1:], input_shape)}")
    return x


def check_labels(y, n, loss, n_outputs):
    """``y`` as an array of ``n`` targets for ``loss``: for cross_entropy, integer class
    labels in ``[0, n_outputs)``."""
    y = np.asarray(y)
    if len(y) != n:
        raise ValueError(f"y has {len(y)} labels for {n} samples")
    if loss == "cross_entropy":
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise TypeError(f"y must be a 1-D array of integer class labels, got {y.dtype} {y.shape}")
        if n:
            lo, hi = int(y.min()), int(y.max())
            if lo < 0 or hi >= n_outputs:
                bad = lo if lo < 0 else hi
                raise ValueError(
                    f"y holds label {bad}, outside [0, {n_outputs}) for a model "
                    f"with {n_outputs} outputs"
                )
    return y


def to_float32(xb):
    """uint8 images scale to [0, 1]; other inputs are used as given, in float32."""
    if xb.dtype == np.uint8:
        # a float32 division, correctly rounded (faster than a 256-entry table lookup)
        return np.divide(xb, _255, dtype=np.float32)
    return xb.astype(np.float32, copy=False)


def validation_count(n, split):
    """How many of ``n`` samples a ``validation_split`` of ``split`` holds out (the last
    ones): at least one when ``split > 0``."""
    return max(1, int(round(n * split))) if split > 0 else 0


def correct(out, y):
    """Correct predictions: labels, or one-hot targets (mse), against the argmax."""
    if out.ndim != 2:
        return 0
    if np.ndim(y) == 2 and np.shape(y) == out.shape:
        y = np.argmax(y, axis=1)
    if np.ndim(y) != 1:
        return 0
    return int(np.count_nonzero(out.argmax(axis=1) == y))


def train_step(model, xb, yb):
    """One optimisation step on a batch; returns (loss, number of correct predictions)."""
    out = model.network.forward(to_float32(xb), training=True)
    loss, grad = model.loss_fn(out, yb)
    if not np.isfinite(loss):
        raise FloatingPointError(
            f"the loss became {loss} in epoch {model.epoch + 1}; "
            f"try a lower learning rate (optimizer.lr)"
        )
    model.network.backward(grad)
    model.optimizer.step(model.network.parameters(), model.network.gradients())
    return loss, correct(out, yb)


def fit(model, x, y, epochs=None, batch_size=None, validation_data=None, callback=None,
        on_batch=None, held_out="val"):
    """See ``Model.fit``. ``held_out``: what ``validation_data`` is, and so the prefix of
    its metrics: ``"val"``, or ``"test"`` for the test split (the command line's
    held-out figures without a validation split, never called validation)."""
    training = model.definition.training
    epochs = training["epochs"] if epochs is None else int(epochs)
    batch_size = training["batch_size"] if batch_size is None else int(batch_size)
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"epochs must be >= 0 and batch_size >= 1, got {epochs}, {batch_size}")
    if held_out not in ("val", "test"):
        raise ValueError(f"held_out must be 'val' or 'test', got {held_out!r}")
    x = check_inputs(x, model.input_shape)
    y = check_labels(y, len(x), model.definition.loss, model.n_outputs)
    split, n_val = training.get("validation_split") or 0.0, 0
    if validation_data is None and split > 0:
        n_val = validation_count(len(x), split)
        x, y, validation_data = x[:-n_val], y[:-n_val], (x[-n_val:], y[-n_val:])
        held_out = "val"
    if len(x) == 0:
        if validation_data is not None and split > 0 and n_val:
            from .definition import DefinitionError  # a ValueError; the CLI's exit 2

            raise DefinitionError(
                "training.validation_split",
                f"{split!r} holds out {n_val} of the {n_val + len(x)} samples, leaving none "
                f"to train on; use a smaller validation_split")
        raise ValueError("no training samples")
    memory.check_training(model.network, model.input_shape, min(batch_size, len(x)),
                          model.optimizer)
    _warn_of_unused_outputs(model, y)
    model.input_range = input_range.merge(model.input_range, input_range.observe(x))
    augment = Augmentation.from_config(training.get("augment") or {})
    target = model.epoch + epochs
    # the schedule spans the definition's epochs, so a run split over several fit
    # calls (or resumed) follows the same learning-rate curve as one uninterrupted call
    horizon = max(training["epochs"], target)
    with session():
        while model.epoch < target and not stopped_early(model):
            start = time.perf_counter()
            metrics = _epoch(model, x, y, horizon, batch_size, on_batch, augment)
            if validation_data is not None:
                val = evaluate(model, *validation_data, batch_size=max(batch_size, 256))
                metrics[f"{held_out}_loss"] = val["loss"]
                metrics[f"{held_out}_accuracy"] = val["accuracy"]
            metrics["seconds"] = time.perf_counter() - start
            model.history.append(metrics)
            if callback is not None:
                callback(metrics)
    return model.history


def stopped_early(model):
    """Whether the definition's early stopping ends training after the epochs so far
    (a function of the history, so a resumed run stops where the uninterrupted did)."""
    stopping = model.definition.training.get("early_stopping")
    if stopping is None or not model.history:
        return False
    key = stopping.get("monitor", monitor.DEFAULT_MONITOR)
    return monitor.should_stop(model.history, key,
                               stopping.get("patience", monitor.DEFAULT_PATIENCE),
                               stopping.get("min_delta", 0.0))


def epoch_lr(model, epoch, horizon):
    """The learning rate of ``epoch`` (0-based) in a run of ``horizon`` epochs: the
    warm-up's, then the schedule's."""
    return lr_with_warmup(model.schedule, model.base_lr, epoch, horizon,
                          model.definition.training.get("warmup_epochs", 0))


def _epoch(model, x, y, horizon, batch_size, on_batch, augment):
    """One epoch of shuffled (and augmented) minibatches; returns its metrics."""
    model.optimizer.lr = epoch_lr(model, model.epoch, horizon)
    order = model.rng.permutation(len(x))
    total_loss, n_correct = 0.0, 0
    n_batches = -(-len(x) // batch_size)
    for b, b0 in enumerate(range(0, len(x), batch_size)):
        idx = order[b0:b0 + batch_size]
        xb = x[idx]
        if augment:
            xb = augment(to_float32(xb), model.rng)
        loss, ok = model.train_step(xb, y[idx])
        total_loss += loss * len(idx)
        n_correct += ok
        if on_batch is not None:
            on_batch(b + 1, n_batches, loss)
    model.epoch += 1
    return {"epoch": model.epoch, "loss": total_loss / len(x),
            "accuracy": n_correct / len(x), "lr": model.optimizer.lr}


def _batches(model, x, batch_size):
    batch_size = DEFAULT_PREDICT_BATCH if batch_size is None else int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    with session():
        for b0 in range(0, len(x), batch_size):
            yield b0, model.network.forward(to_float32(x[b0:b0 + batch_size]), training=False)


class UnusedOutputsWarning(UserWarning):
    """A classifier has more outputs than its training labels have classes."""


def _warn_of_unused_outputs(model, y):
    """A classifier with more outputs than its training labels have classes trains,
    with a warning: the extra outputs are never a target (often a wrong
    ``out_features``). The classes are 0 to the largest label."""
    if model.definition.loss != "cross_entropy" or not len(y):
        return
    top = int(y.max())
    if model.n_outputs > top + 1:
        warnings.warn(f"the model has {model.n_outputs} outputs, but the data has {top + 1} "
                      f"classes (labels 0..{top}); the other outputs are never a target",
                      UnusedOutputsWarning, stacklevel=4)


def predict(model, x, batch_size=None):
    """Network outputs (class scores) in eval mode, computed in batches."""
    x = check_inputs(x, model.input_shape)
    input_range.warn_if_far_outside(model.input_range, x, stacklevel=4)
    out = np.empty((len(x),) + tuple(model.output_shape), dtype=np.float32)
    for b0, yb in _batches(model, x, batch_size):
        out[b0:b0 + len(yb)] = yb
    return out


def evaluate(model, x, y, batch_size=None):
    """``{"loss", "accuracy"}`` over ``(x, y)`` in eval mode."""
    x = check_inputs(x, model.input_shape)
    y = check_labels(y, len(x), model.definition.loss, model.n_outputs)
    if len(x) == 0:
        raise ValueError("cannot evaluate on zero samples")
    input_range.warn_if_far_outside(model.input_range, x, stacklevel=4)
    total_loss, n_correct = 0.0, 0
    for b0, out in _batches(model, x, batch_size):
        yb = y[b0:b0 + len(out)]
        total_loss += model.loss_fn(out, yb)[0] * len(out)
        n_correct += correct(out, yb)
    return {"loss": total_loss / len(x), "accuracy": n_correct / len(x)}
