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
            return n
        import warnings

        warnings.warn(f"CYNET_NUM_THREADS must be a positive int, got {env!r}; ignoring it",
                      RuntimeWarning, stacklevel=2)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_num_threads = _default_threads()


def get_num_threads():
    """Threads used by cynet's kernels (the OpenMP team size of each prange)."""
    return _num_threads


def set_num_threads(n):
    """Use ``n`` threads in cynet's kernels and in numpy's BLAS."""
    from ._args import as_int

    n = as_int(n, "n")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    global _num_threads
    _num_threads = n
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n, user_api="blas")
