"""How many threads cynet's OpenMP kernels use."""
import os


def _default_threads():
    env = os.environ.get("CYNET_NUM_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"CYNET_NUM_THREADS must be a positive int, got {env!r}") from None
        if n < 1:
            raise ValueError(f"CYNET_NUM_THREADS must be a positive int, got {env!r}")
        return n
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_num_threads = _default_threads()


def get_num_threads():
    """Threads used by cynet's kernels (the OpenMP team size of each prange)."""
    return _num_threads
