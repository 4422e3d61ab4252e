"""Softmax cross-entropy and its gradient in one pass over the logits, with PyTorch's
label smoothing.

Each row is done in double precision (the sum of exponentials, the log, the loss and
each gradient value, rounded once to the logits' precision at the end).
"""
from cython cimport floating
from libc.math cimport exp, log
from libc.stdint cimport int64_t


def softmax_cross_entropy(const floating[:, ::1] logits, const int64_t[::1] labels,
                          floating[:, ::1] grad, double smoothing=0.0):
    """Mean over the rows of the cross-entropy of ``softmax(z)`` against the target
    ``(1 - s) * onehot(label) + s / K`` (``s`` = ``smoothing``, in [0, 1]): that is
    ``logsumexp(z) - (1 - s) * z[label] - s * mean(z)``; ``grad`` gets
    ``(softmax(z) - target) / N``. Returns ``(loss, bad)``: ``bad`` is the first row
    whose label is outside ``[0, K)`` (nothing is computed then), else -1."""
    cdef Py_ssize_t n = logits.shape[0], k = logits.shape[1], i, j
    cdef int64_t label
    cdef double top, total, picked, mean, e, scale, inv_n, spread, loss = 0.0
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"smoothing must be in [0, 1], got {smoothing}")
    if labels.shape[0] != n or grad.shape[0] != n or grad.shape[1] != k:
        raise ValueError(f"labels {labels.shape[0]} and grad {(grad.shape[0], grad.shape[1])} "
                         f"do not fit logits {(n, k)}")
    if n == 0 or k == 0:
        raise ValueError(f"logits must have at least one row and one class, got {(n, k)}")
    for i in range(n):
        if labels[i] < 0 or labels[i] >= k:
            return 0.0, i
    inv_n = 1.0 / n
    spread = smoothing / k * inv_n  # each class's share of the smoothed target, over N
    with nogil:
        for i in range(n):
            top = logits[i, 0]
            for j in range(1, k):
                if logits[i, j] > top or logits[i, j] != logits[i, j]:
                    top = logits[i, j]
            total = 0.0
            mean = 0.0
            for j in range(k):
                total = total + exp(logits[i, j] - top)
                mean = mean + (logits[i, j] - top)
            label = labels[i]
            picked = logits[i, label] - top
            if smoothing == 0.0:  # (as before: no 0 * inf = NaN from a -inf logit)
                loss = loss + (log(total) - picked)
            else:
                loss = loss + (log(total) - (1.0 - smoothing) * picked
                               - smoothing * (mean / k))
            scale = inv_n / total
            for j in range(k):  # the exponentials again, rather than rounded copies
                e = exp(logits[i, j] - top) * scale - spread
                if j == label:
                    e = e - (1.0 - smoothing) * inv_n
                grad[i, j] = <floating>e
    return loss * inv_n, -1
