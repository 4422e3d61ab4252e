"""How the kernels were built: with or without OpenMP."""
from _parallel cimport CYNET_OPENMP_ENABLED, omp_get_max_threads


def openmp_enabled():
    """True when the kernels were compiled with OpenMP (prange runs in parallel)."""
    return bool(CYNET_OPENMP_ENABLED)


def max_threads():
    """OpenMP's default team size (1 without OpenMP)."""
    return omp_get_max_threads()
