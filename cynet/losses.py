"""Loss functions: each returns ``(loss, grad)``, the mean loss as a Python float and its
gradient with respect to the network's output, in the output's dtype.

The semantics are those of ``torch.nn.functional.cross_entropy`` and ``mse_loss`` with
``reduction="mean"``. Inputs are never modified; ``grad`` is a new array.
"""

import numpy as np

from ._args import as_float_array, as_real, check_ndim
from ._suggest import did_you_mean
from .engine import ops

__all__ = ["cross_entropy", "mse", "get_loss"]


def _label_array(labels, n, name):
    """``labels`` as an integer array of shape (n,) (values not checked)."""
    arr = np.asarray(labels)
    if arr.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must be integer class indices, got dtype {arr.dtype}"
            + (f" (first value {arr.reshape(-1)[0].item()!r})" if arr.size else ""))
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one label per row, got {arr.shape}")
    return arr


def _check_labels(labels, n, k, name):
    """``labels`` as an int64 array of shape (n,) with every value in [0, k)."""
    arr = _label_array(labels, n, name)
    bad = (arr < 0) | (arr >= k)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{name}[{i}] = {arr[i].item()} is not a class index in [0, {k})")
    return arr.astype(np.int64, copy=False)


def cross_entropy(logits, labels, label_smoothing=0.0):
    """Softmax cross-entropy of ``logits`` (N, K) against integer ``labels`` (N,), averaged
    over the batch. Returns ``(loss, dloss/dlogits)``. ``label_smoothing`` (in [0, 1]) is
    PyTorch's: the target is ``(1 - s) * onehot(label) + s / K``."""
    label_smoothing = as_real(label_smoothing, "label_smoothing", ge=0, le=1)
    logits = as_float_array(logits, "logits")  # C-contiguous, as the kernel needs
    check_ndim(logits, "logits", 2, "(N, K)")
    n, k = logits.shape
    if n == 0 or k == 0:
        raise ValueError(
            f"logits must have at least one row and one class, got shape {logits.shape}")
    arr = _label_array(labels, n, "labels")
    grad = np.empty_like(logits)
    # one pass in the engine's kernel; it reports the first label outside [0, K) instead
    loss, bad = ops.softmax_cross_entropy(
        logits, np.ascontiguousarray(arr, dtype=np.int64), grad, label_smoothing)
    if bad >= 0:
        raise ValueError(f"labels[{bad}] = {arr[bad].item()} is not a class index in [0, {k})")
    return loss, grad


def mse(outputs, targets):
    """Mean over all elements of ``(outputs - targets) ** 2``. Returns ``(loss, dloss/doutputs)``.

    When ``outputs`` is (N, K) and ``targets`` is a 1-D integer array, the targets are class
    labels and are one-hot encoded first.
    """
    outputs = as_float_array(outputs, "outputs")
    if outputs.size == 0:
        raise ValueError(f"outputs must not be empty, got shape {outputs.shape}")
    raw = np.asarray(targets)
    if outputs.ndim == 2 and raw.ndim == 1 and raw.dtype.kind in "iu":
        n, k = outputs.shape
        labels = _check_labels(raw, n, k, "targets")
        diff = outputs.copy()
        diff[np.arange(n), labels] -= outputs.dtype.type(1)
    else:
        if raw.dtype.kind not in "iuf":
            raise TypeError(f"targets must be a numeric array, got dtype {raw.dtype}")
        if raw.shape != outputs.shape:
            raise ValueError(
                f"targets has shape {raw.shape}, expected outputs' shape {outputs.shape} "
                f"(or ({outputs.shape[0]},) integer labels when outputs is (N, K))")
        diff = np.subtract(outputs, raw, dtype=outputs.dtype)
    loss = float(np.mean(np.square(diff), dtype=np.float64))
    diff *= 2.0 / outputs.size
    return loss, diff


_LOSSES = {"cross_entropy": cross_entropy, "mse": mse}


def get_loss(name):
    """The loss function called ``name``: ``"cross_entropy"`` or ``"mse"``."""
    if not isinstance(name, str):
        raise TypeError(f"loss name must be a string, got {name!r}")
    try:
        return _LOSSES[name]
    except KeyError:
        raise ValueError(
            f"unknown loss {name!r}{did_you_mean(name, _LOSSES)} (choose from {', '.join(_LOSSES)})") from None
