# Short row copies and adds (the C in _rows.h), one function each over cython.floating.

from cython cimport floating


cdef extern from "_rows.h" nogil:
    void cynet_add_f(float* d, const float* s, Py_ssize_t n) noexcept
    void cynet_add_d(double* d, const double* s, Py_ssize_t n) noexcept
    void cynet_copy_f(float* d, const float* s, Py_ssize_t n) noexcept
    void cynet_copy_d(double* d, const double* s, Py_ssize_t n) noexcept


cdef inline void add_row(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    """dst[:n] += src[:n] (the two never overlap)."""
    if floating is float:
        cynet_add_f(dst, src, n)
    else:
        cynet_add_d(dst, src, n)


cdef inline void copy_row(floating* dst, const floating* src, Py_ssize_t n) noexcept nogil:
    """dst[:n] = src[:n] (the two never overlap)."""
    if floating is float:
        cynet_copy_f(dst, src, n)
    else:
        cynet_copy_d(dst, src, n)
