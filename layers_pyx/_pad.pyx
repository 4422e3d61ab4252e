"""Padding by index maps, and its adjoint: the padding modes other than zeros.

A padded plane is ``out[i, j] = x[rows[i], cols[j]]``: every padding mode that copies
input elements into the border (reflect, replicate, circular) is such a pair of maps,
one per axis, which the caller builds (``cynet.engine.padding``). The adjoint adds each
padded element's gradient back to the element it was copied from.

Both kernels run a ``prange`` over planes; a task writes only its own plane, so no
atomics are needed. The maps are checked to lie inside the input before any is read.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t

from _parallel cimport team_size


cdef int _check(Py_ssize_t P, Py_ssize_t H, Py_ssize_t W, Py_ssize_t Pp, Py_ssize_t Hp,
                Py_ssize_t Wp, const int64_t[::1] rows,
                const int64_t[::1] cols) except -1:
    """ValueError unless the planes match and every map entry lies inside the input."""
    if P != Pp:
        raise ValueError(f"the input has {P} planes, the padded array {Pp}")
    if rows.shape[0] != Hp or cols.shape[0] != Wp:
        raise ValueError(f"maps of {rows.shape[0]} rows and {cols.shape[0]} columns do not "
                         f"fit padded planes of {Hp}x{Wp}")
    cdef Py_ssize_t k
    for k in range(Hp):
        if not 0 <= rows[k] < H:
            raise ValueError(f"rows[{k}] = {rows[k]} is outside the {H} rows of the input")
    for k in range(Wp):
        if not 0 <= cols[k] < W:
            raise ValueError(f"cols[{k}] = {cols[k]} is outside the {W} columns of the input")
    return 0


def gather(const floating[:, :, ::1] x, floating[:, :, ::1] out, const int64_t[::1] rows,
           const int64_t[::1] cols, int n_threads):
    """``out[p, i, j] = x[p, rows[i], cols[j]]`` for planes ``x`` (P, H, W) and
    ``out`` (P, len(rows), len(cols))."""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t Hp = out.shape[1], Wp = out.shape[2]
    _check(P, H, W, out.shape[0], Hp, Wp, rows, cols)
    cdef Py_ssize_t p, i, j
    cdef const floating* src
    cdef floating* dst
    if P == 0 or Hp * Wp == 0:
        return
    with nogil:
        for p in prange(P, schedule="static", num_threads=team_size(n_threads, P)):
            for i in range(Hp):
                src = &x[p, rows[i], 0]
                dst = &out[p, i, 0]
                for j in range(Wp):
                    dst[j] = src[cols[j]]


def scatter_add(const floating[:, :, ::1] grad, floating[:, :, ::1] gx,
                const int64_t[::1] rows, const int64_t[::1] cols, int n_threads):
    """The adjoint of :func:`gather`: ``gx`` (P, H, W) is overwritten with the sums of
    ``grad[p, i, j]`` (P, len(rows), len(cols)) over the elements copied from each
    ``(rows[i], cols[j])``."""
    cdef Py_ssize_t P = gx.shape[0], H = gx.shape[1], W = gx.shape[2]
    cdef Py_ssize_t Hp = grad.shape[1], Wp = grad.shape[2]
    _check(P, H, W, grad.shape[0], Hp, Wp, rows, cols)
    cdef Py_ssize_t p, i, j, k
    cdef const floating* src
    cdef floating* dst
    if P == 0 or H * W == 0:
        return
    with nogil:
        for p in prange(P, schedule="static", num_threads=team_size(n_threads, P)):
            dst = &gx[p, 0, 0]
            for k in range(H * W):
                dst[k] = 0
            for i in range(Hp):
                src = &grad[p, i, 0]
                dst = &gx[p, rows[i], 0]
                for j in range(Wp):
                    dst[cols[j]] += src[j]
