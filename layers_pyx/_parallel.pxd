# Shared declarations for cynet's kernels: OpenMP's runtime calls, stubbed in a build
# without OpenMP (_openmp.h; prange then runs serially), and the one rule for the size of
# a prange's team of threads. The kernels' float types are Cython's own fused
# ``cython.floating`` (float and double).

cdef extern from "_openmp.h":
    bint CYNET_OPENMP_ENABLED
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil


cdef inline Py_ssize_t ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Ceiling of a / b for b > 0 and any sign of a."""
    if a >= 0:
        return (a + b - 1) // b
    return -((-a) // b)


cdef inline int team_size(int n_threads, Py_ssize_t tasks) noexcept nogil:
    """The threads for a prange over ``tasks``: ``n_threads`` clamped to [1, tasks].

    Every kernel passes this number, not its ``n_threads`` argument, to
    ``prange(num_threads=...)`` and sizes its per-thread scratch with it: prange takes 0
    for OpenMP's default team (larger than a scratch sized for one thread) and fails on
    a negative count, and threads beyond the tasks would only wait. OpenMP may still give
    fewer threads (OMP_DYNAMIC, thread limits), never more, so ``omp_get_thread_num()``
    stays below it.
    """
    if n_threads > tasks:
        n_threads = <int>tasks  # tasks < n_threads: fits an int
    return n_threads if n_threads > 1 else 1


# The largest value a kernel accepts for a geometry argument (kernel size, stride,
# padding, dilation, output size): with every one below 2**31, a product of two and a few
# sums stay within a 64-bit Py_ssize_t, so the kernels' index arithmetic cannot overflow.
# Sizes of buffers are products of more factors: checked_mul refuses those that overflow.
cdef enum:
    MAX_GEOMETRY = 2147483647


cdef inline int check_geometry_args(tuple named) except -1:
    """ValueError naming the first of the ``(name, value)`` pairs above MAX_GEOMETRY."""
    for name, value in named:
        if value > MAX_GEOMETRY:
            raise ValueError(f"{name} {value} is larger than {MAX_GEOMETRY}: the sizes it "
                             f"gives overflow the kernel's index arithmetic")
    return 0


cdef inline Py_ssize_t checked_mul(Py_ssize_t a, Py_ssize_t b, str what) except -1:
    """``a * b`` of two sizes >= 0, or ValueError saying ``what`` overflows Py_ssize_t."""
    if a < 0 or b < 0:
        raise ValueError(f"{what}: negative size {a} * {b}")
    if a != 0 and b > (<Py_ssize_t>(<size_t>-1 >> 1)) // a:
        raise ValueError(f"{what} of {a} x {b} elements overflows Py_ssize_t")
    return a * b


cdef inline Py_ssize_t checked_add(Py_ssize_t a, Py_ssize_t b, str what) except -1:
    """``a + b`` of two sizes >= 0, or ValueError saying ``what`` overflows Py_ssize_t."""
    if a < 0 or b < 0:
        raise ValueError(f"{what}: negative size {a} + {b}")
    if b > (<Py_ssize_t>(<size_t>-1 >> 1)) - a:
        raise ValueError(f"{what} of {a} + {b} elements overflows Py_ssize_t")
    return a + b
