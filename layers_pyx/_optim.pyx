"""Fused optimizer updates: one pass over each parameter instead of one per NumPy op.

The Adam step written with in-place NumPy ufuncs reads and writes the parameter-sized
arrays about twenty times, memory traffic that shows in the training step of a model
with a large dense layer (the training benchmark's models/simple.json epoch).
This kernel does the same float operations, in the same order and in the parameters'
own precision (each Python scalar rounded to that precision first, as NumPy does for a
float32 array), so its result is bit-identical to the NumPy sequence kept in the tests
as the reference.
"""
from cython cimport floating
from cython.parallel cimport prange

from _parallel cimport team_size

# Elements per task: each helper call is a plain loop over one block, which the compiler
# vectorises (no branch on the options, no memoryview indexing inside).
cdef enum:
    BLOCK = 16384


def adam_update(floating[::1] p, const floating[::1] g, floating[::1] m, floating[::1] v,
                double beta1, double beta2, double eps, double step_size,
                double bias_correction2_sqrt, double weight_decay, int n_threads):
    """One Adam step in place on ``p``, ``m`` (exp_avg) and ``v`` (exp_avg_sq).

    ``d = g + weight_decay * p`` (L2, skipped when 0); ``m = b1*m + (1-b1)*d``;
    ``v = b2*v + (1-b2)*d*d``; ``p -= step_size * m / (sqrt(v)/bias_correction2_sqrt + eps)``
    with ``step_size = lr / (1 - b1**t)``.
    """
    cdef Py_ssize_t n = p.shape[0]
    if g.shape[0] != n or m.shape[0] != n or v.shape[0] != n:
        raise ValueError(f"p, g, m and v must have the same length, got "
                         f"{(n, g.shape[0], m.shape[0], v.shape[0])}")
    cdef floating b1 = <floating>beta1, b2 = <floating>beta2
    cdef floating one_minus_b1 = <floating>(1.0 - beta1), one_minus_b2 = <floating>(1.0 - beta2)
    cdef floating e = <floating>eps, lr_t = <floating>step_size
    cdef floating bc2 = <floating>bias_correction2_sqrt, wd = <floating>weight_decay
    cdef bint decay = weight_decay != 0
    cdef Py_ssize_t j, s, blocks = (n + BLOCK - 1) // BLOCK
    cdef int team = team_size(n_threads, blocks)
    with nogil:
        for j in prange(blocks, schedule="static", num_threads=team):
            s = j * BLOCK
            _adam_block(&p[s], &g[s], &m[s], &v[s], min(<Py_ssize_t>BLOCK, n - s), b1, b2,
                        one_minus_b1, one_minus_b2, e, lr_t, bc2, wd, decay)


cdef void _adam_block(floating* p, const floating* g, floating* m, floating* v, Py_ssize_t n,
                      floating b1, floating b2, floating one_minus_b1, floating one_minus_b2,
                      floating e, floating lr_t, floating bc2, floating wd,
                      bint decay) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating d, mi, vi, denom
    for i in range(n):  # gcc -O3 unswitches the loop on ``decay``
        d = g[i]
        if decay:
            d = p[i] * wd
            d = d + g[i]
        mi = m[i] * b1
        mi = mi + d * one_minus_b1
        vi = v[i] * b2
        vi = vi + (d * d) * one_minus_b2
        m[i] = mi
        v[i] = vi
        denom = _sqrt(vi) / bc2
        denom = denom + e
        p[i] = p[i] - (mi / denom) * lr_t


cdef extern from "<math.h>" nogil:
    float sqrtf(float)
    double sqrt(double)


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


def sgd_update(floating[::1] p, const floating[::1] g, floating[::1] buf, double lr,
               double momentum, double weight_decay, bint nesterov, bint first_step,
               int n_threads):
    """One SGD step in place on ``p`` and the momentum ``buf`` (unused without momentum).

    ``d = g + weight_decay * p``; with momentum ``buf = d`` at the first step, else
    ``buf = momentum * buf + d``, then ``d = d + momentum * buf`` (Nesterov) or
    ``d = buf``; ``p -= lr * d``. The NumPy sequence of cynet.optimizers.SGD, op for op.
    """
    cdef Py_ssize_t n = p.shape[0]
    if g.shape[0] != n or (momentum != 0 and buf.shape[0] != n):
        raise ValueError(f"p, g and buf must have the same length, got "
                         f"{(n, g.shape[0], buf.shape[0])}")
    cdef floating lr_f = <floating>lr, mom = <floating>momentum, wd = <floating>weight_decay
    cdef bint decay = weight_decay != 0, has_momentum = momentum != 0
    cdef Py_ssize_t j, s, blocks = (n + BLOCK - 1) // BLOCK
    cdef int team = team_size(n_threads, blocks)
    with nogil:
        for j in prange(blocks, schedule="static", num_threads=team):
            s = j * BLOCK
            _sgd_block(&p[s], &g[s], &buf[s] if has_momentum else NULL,
                       min(<Py_ssize_t>BLOCK, n - s), lr_f, mom, wd, decay, nesterov,
                       first_step)


cdef void _sgd_block(floating* p, const floating* g, floating* buf, Py_ssize_t n,
                     floating lr, floating mom, floating wd, bint decay, bint nesterov,
                     bint first_step) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating d, b, t
    for i in range(n):  # gcc -O3 unswitches the loop on the flags
        d = g[i]
        if decay:
            d = p[i] * wd
            d = d + g[i]
        if buf != NULL:
            if first_step:
                b = d
            else:
                b = buf[i] * mom
                b = b + d
            buf[i] = b
            if nesterov:
                t = b * mom
                d = t + d
            else:
                d = b
        p[i] = p[i] - d * lr
