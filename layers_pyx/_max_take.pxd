# The max-pooling update of a running maximum (the C in _max_take.h), over cython.floating.

from cython cimport floating
from libc.stdint cimport int64_t


cdef extern from "_max_take.h" nogil:
    void cynet_take_f(float v, int64_t p, float* best, int64_t* pos) noexcept
    void cynet_take_d(double v, int64_t p, double* best, int64_t* pos) noexcept


cdef inline void max_take(floating v, int64_t pos, floating* best,
                          int64_t* best_pos) noexcept nogil:
    """PyTorch's rule: first maximum wins, NaN propagates (branch-free)."""
    if floating is float:
        cynet_take_f(v, pos, best, best_pos)
    else:
        cynet_take_d(v, pos, best, best_pos)
