"""How many threads cynet uses: the public ``set_num_threads`` / ``get_num_threads`` and
the per-kernel rule for small arrays."""
from .._args import as_int
from . import policy as _policy
from .blas import limit_blas


def get_num_threads():
    """Threads used by cynet's kernels (the OpenMP team size of each prange)."""
    return _policy.current().num_threads


def set_num_threads(n):
    """Use ``n`` threads in cynet's kernels and in numpy's BLAS."""
    n = as_int(n, "n")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    _policy.set_policy(_policy.current().replace(num_threads=n))
    limit_blas(n)


def threads_for(n_elements):
    """Threads for a kernel over ``n_elements`` elements: one for small arrays."""
    p = _policy.current()
    return 1 if n_elements < p.parallel_min_elements else p.num_threads
