"""How many threads cynet's OpenMP kernels use."""
import os


def _default_threads():
    env = os.environ.get("CYNET_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n >= 1:
            return n, True
        import warnings

        warnings.warn(f"CYNET_NUM_THREADS must be a positive int, got {env!r}; ignoring it",
                      RuntimeWarning, stacklevel=2)
    try:
        return len(os.sched_getaffinity(0)), False
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1, False


_num_threads, _from_env = _default_threads()
# CYNET_NUM_THREADS limits numpy's BLAS too, like set_num_threads, but only once a
# kernel runs: threadpoolctl is not imported by ``import cynet``.
_blas_limit_pending = _from_env


def _limit_blas(n):
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n, user_api="blas")


def get_num_threads():
    """Threads used by cynet's kernels (the OpenMP team size of each prange)."""
    global _blas_limit_pending
    if _blas_limit_pending:
        _blas_limit_pending = False
        _limit_blas(_num_threads)
    return _num_threads


# Below this many elements a kernel stays on the calling thread. With
# OMP_WAIT_POLICY=PASSIVE the second OpenMP thread sleeps between kernels, and waking it
# cost ~45 us on a 2-vCPU VM (measured: LeNet's 64x6x28x28 max-pool backward 0.067 ms on
# 1 thread, 0.112 ms on 2; the bias gradient 0.064 vs 0.106 ms).
PARALLEL_MIN_ELEMENTS = 1 << 19


def threads_for(n_elements):
    """Threads for a kernel over ``n_elements`` elements: 1 for small arrays."""
    n = get_num_threads()
    return 1 if n_elements < PARALLEL_MIN_ELEMENTS else n


def set_num_threads(n):
    """Use ``n`` threads in cynet's kernels and in numpy's BLAS."""
    from ._args import as_int

    n = as_int(n, "n")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    global _num_threads, _blas_limit_pending
    _num_threads = n
    _blas_limit_pending = False
    _limit_blas(n)
