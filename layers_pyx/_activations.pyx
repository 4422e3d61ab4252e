"""Element-wise activations in one pass, on several threads for large arrays.

ReLU with NumPy takes two passes forward (the mask, then the maximum) and a bool mask
kept for the backward; here the forward writes only the output, and the backward reads
the output in place of a mask (``y > 0`` exactly where ``x > 0``). The caller keeps
small arrays on one thread (cynet._threads.threads_for).
"""
from cython cimport floating
from cython.parallel cimport prange

from _parallel cimport team_size
from _relu cimport relu


def relu_forward(const floating[::1] x, floating[::1] out, int n_threads):
    """``out = max(x, 0)`` like ``np.maximum(x, 0)``: NaN propagates, -0.0 gives +0.0."""
    cdef Py_ssize_t i, n = x.shape[0]
    if out.shape[0] != n:
        raise ValueError(f"out has {out.shape[0]} elements, x has {n}")
    cdef int team = team_size(n_threads, n)
    with nogil:
        for i in prange(n, schedule="static", num_threads=team):
            out[i] = relu(x[i])


def relu_backward(const floating[::1] grad, const floating[::1] y, floating[::1] out,
                  int n_threads):
    """``out = grad`` where the forward output ``y > 0``, else 0 (PyTorch's rule: a NaN
    or infinite gradient does not leak through an inactive unit)."""
    cdef Py_ssize_t i, n = grad.shape[0]
    cdef floating g
    if y.shape[0] != n or out.shape[0] != n:
        raise ValueError(f"grad, y and out must have the same length, got "
                         f"{(n, y.shape[0], out.shape[0])}")
    cdef int team = team_size(n_threads, n)
    with nogil:
        for i in prange(n, schedule="static", num_threads=team):
            g = grad[i]  # read unconditionally: a select, not a mispredicted branch
            out[i] = g if y[i] > 0 else 0
