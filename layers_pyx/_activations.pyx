"""Element-wise activations in one pass, on several threads for large arrays.

ReLU with NumPy takes two passes forward (the mask, then the maximum) and a bool mask
kept for the backward; here the forward writes only the output, and the backward reads
the output in place of a mask (``y > 0`` exactly where ``x > 0``).
"""
from cython.parallel cimport prange

from _parallel cimport floating

# Elements per task (the caller keeps small arrays on one thread: cynet._threads).
cdef enum:
    BLOCK = 65536


def relu_forward(const floating[::1] x, floating[::1] out, int n_threads):
    """``out = max(x, 0)`` like ``np.maximum(x, 0)``: NaN propagates, -0.0 gives +0.0."""
    cdef Py_ssize_t n = x.shape[0], j, i, start, stop
    cdef floating v
    if out.shape[0] != n:
        raise ValueError(f"out has {out.shape[0]} elements, x has {n}")
    with nogil:
        for j in prange((n + BLOCK - 1) // BLOCK, schedule="static",
                        num_threads=n_threads):
            start = j * BLOCK
            stop = min(start + BLOCK, n)
            for i in range(start, stop):
                v = x[i]
                out[i] = v if (v > 0 or v != v) else 0


def relu_backward(const floating[::1] grad, const floating[::1] y, floating[::1] out,
                  int n_threads):
    """``out = grad`` where the forward output ``y > 0``, else 0 (PyTorch's rule: a NaN
    or infinite gradient does not leak through an inactive unit)."""
    cdef Py_ssize_t n = grad.shape[0], j, i, start, stop
    cdef floating g
    if y.shape[0] != n or out.shape[0] != n:
        raise ValueError(f"grad, y and out must have the same length, got "
                         f"{(n, y.shape[0], out.shape[0])}")
    with nogil:
        for j in prange((n + BLOCK - 1) // BLOCK, schedule="static",
                        num_threads=n_threads):
            start = j * BLOCK
            stop = min(start + BLOCK, n)
            for i in range(start, stop):
                g = grad[i]  # read unconditionally: a select, not a mispredicted branch
                out[i] = g if y[i] > 0 else 0
