"""How the kernels were built: with or without OpenMP, with or without bounds checks, with
or without AddressSanitizer."""
from _parallel cimport CYNET_OPENMP_ENABLED, omp_get_max_threads

cdef extern from "_debug_build.h":
    bint CYNET_DEBUG_BUILD

cdef extern from "_asan_build.h":
    bint CYNET_ASAN_BUILD


def openmp_enabled():
    """True when the kernels were compiled with OpenMP (prange runs in parallel)."""
    return bool(CYNET_OPENMP_ENABLED)


def debug_build():
    """True for a CYNET_DEBUG_CYTHON=1 build (bounds and initialisation checks on)."""
    return bool(CYNET_DEBUG_BUILD)


def asan_build():
    """True for a CYNET_ASAN=1 build (compiled with AddressSanitizer; Python must then
    load the ASan runtime first, e.g. through LD_PRELOAD)."""
    return bool(CYNET_ASAN_BUILD)


def max_threads():
    """OpenMP's default team size (1 without OpenMP)."""
    return omp_get_max_threads()
