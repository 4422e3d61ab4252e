"""Convolution chunks on several threads, each thread with a single-threaded BLAS.

A threaded BLAS call on a small matrix spends its time synchronising its threads, and
its spinning threads collapse when another process holds a core (measured: up to 40x
slower). Instead the batch is cut into chunks, the chunks are split statically between
``n`` workers (the calling thread is one of them), and each worker runs its chunks with
serial kernels and a one-thread BLAS (numpy releases the GIL in matmul). The static
split and the ordered reduction keep results bit-identical run to run.
"""
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

_lock = threading.Lock()
_executor = None
_executor_size = 0
_controller = None


def _pool(workers):
    global _executor, _executor_size
    with _lock:
        if _executor is None or _executor_size < workers:
            if _executor is not None:
                _executor.shutdown(wait=False)
            _executor = ThreadPoolExecutor(workers, thread_name_prefix="cynet")
            _executor_size = workers
        return _executor


@contextmanager
def kernel_threading():
    """The context a training or inference loop runs in.

    Freed memory stays in the heap for the next step (:mod:`cynet._heap`).

    With several threads, BLAS is held at one thread for the whole loop: cynet's layers
    parallelise over chunks themselves, and toggling OpenBLAS's thread count per call
    wakes its threads, which then spin on the cores the next kernel needs (measured:
    a simple.json step took 115 ms toggling, 70-90 ms held).
    """
    from ._heap import retained_heap
    from ._threads import get_num_threads

    with retained_heap():
        if get_num_threads() > 1:
            with single_threaded_blas():
                yield
        else:
            yield


@contextmanager
def single_threaded_blas():
    """numpy's BLAS limited to one thread inside the block (restored after)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    with _controller.limit(limits=1, user_api="blas"):
        yield


def _with_callers_errstate(fn):
    """``fn`` run under the calling thread's ``np.errstate`` (thread-local in numpy), so
    that floating-point warnings or errors do not depend on which thread ran a chunk."""
    import numpy as np

    err = np.geterr()

    def run(*args):
        with np.errstate(**err):
            return fn(*args)

    return run


def run_chunks(n, chunk, n_threads, work):
    """Call ``work(starts, n_kernel_threads)`` on the chunk starts of each worker.

    Returns the workers' results in order. With one worker the call runs inline with
    the kernels' own OpenMP threads and BLAS left as it is.
    """
    starts = list(range(0, n, chunk))
    workers = max(1, min(n_threads, len(starts)))
    if workers == 1:
        return [work(starts, n_threads)]
    groups = [starts[i::workers] for i in range(workers)]
    with single_threaded_blas():
        futures = [_pool(workers - 1).submit(_with_callers_errstate(work), g, 1)
                   for g in groups[1:]]
        first = work(groups[0], 1)
        return [first] + [f.result() for f in futures]


def chunk_for(n, max_samples, n_threads):
    """Samples per chunk: at most ``max_samples``, and as many chunks as a multiple of
    the threads, so that the static split gives every worker the same share (3 chunks
    on 2 threads would leave one worker idle a third of the time)."""
    if n <= 0:
        return 1
    max_samples = max(1, max_samples)
    n_threads = max(1, n_threads)
    chunks = -(-n // max_samples)
    chunks = min(n, -(-chunks // n_threads) * n_threads)
    return -(-n // chunks)


__all__ = ["run_chunks", "chunk_for", "single_threaded_blas", "kernel_threading",
           "parallel_matmul"]


def parallel_matmul(a, b, out, n_threads, min_part=64, min_macs=1 << 22):
    """``out[...] = a @ b`` for 2-D arrays, split between workers along the longer side
    of ``out``: the rows of ``a`` or the columns of ``b`` (a dense layer's forward on a
    batch of 64 has only 64 rows, but 1024 output columns). Each worker gets at least
    ``min_part`` rows or columns and ``min_macs`` multiply-adds: handing a smaller product
    to another thread costs more than it saves."""
    import numpy as np

    rows = a.shape[0] >= b.shape[1]
    length = a.shape[0] if rows else b.shape[1]
    macs = a.shape[0] * a.shape[1] * b.shape[1]
    workers = max(1, min(n_threads, length // min_part, macs // max(min_macs, 1)))
    if workers == 1:
        return np.matmul(a, b, out=out)
    bounds = [length * i // workers for i in range(workers + 1)]

    def part(i):
        lo, hi = bounds[i], bounds[i + 1]
        if rows:
            np.matmul(a[lo:hi], b, out=out[lo:hi])
        else:
            np.matmul(a, b[:, lo:hi], out=out[:, lo:hi])

    with single_threaded_blas():
        futures = [_pool(workers - 1).submit(_with_callers_errstate(part), i)
                   for i in range(1, workers)]
        part(0)
        for f in futures:
            f.result()
    return out
