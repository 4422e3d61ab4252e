"""Work split between threads, each running serial kernels and a one-thread BLAS.

A threaded BLAS call on a small matrix spends its time synchronising its threads, and
spinning threads collapse when another process holds a core. Instead a convolution's
batch is cut into chunks, split statically between ``n`` workers (the calling thread is
one of them), and each worker runs its chunks with serial kernels and a one-thread BLAS
(numpy releases the GIL in matmul). The static split and the ordered reduction keep
results bit-identical run to run.
"""
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .blas import single_threaded_blas
from .policy import current as policy

_lock = threading.Lock()
_executor = None
_executor_size = 0


def _pool(workers):
    global _executor, _executor_size
    with _lock:
        if _executor is None or _executor_size < workers:
            if _executor is not None:
                _executor.shutdown(wait=False)
            _executor = ThreadPoolExecutor(workers, thread_name_prefix="cynet")
            _executor_size = workers
        return _executor


def _with_callers_errstate(fn):
    """``fn`` run under the calling thread's ``np.errstate`` (thread-local in numpy), so
    that floating-point warnings or errors do not depend on which thread ran a chunk."""
    err = np.geterr()

    def run(*args):
        with np.errstate(**err):
            return fn(*args)

    return run


def _run_parts(parts, run):
    """``run(part)`` for every part, the first on this thread, the others in the pool;
    returns the results in order."""
    with single_threaded_blas():
        futures = [_pool(len(parts) - 1).submit(_with_callers_errstate(run), p)
                   for p in parts[1:]]
        first = run(parts[0])
        return [first] + [f.result() for f in futures]


def run_chunks(n, chunk, n_threads, work):
    """Call ``work(starts, n_kernel_threads)`` on the chunk starts of each worker.

    Returns the workers' results in order. With one worker the call runs inline with
    the kernels' own OpenMP threads and BLAS left as it is.
    """
    starts = list(range(0, n, chunk))
    workers = max(1, min(n_threads, len(starts)))
    if workers == 1:
        return [work(starts, n_threads)]
    return _run_parts([starts[i::workers] for i in range(workers)],
                      lambda group: work(group, 1))


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


def matmul(a, b, out):
    """``out[...] = a @ b`` for 2-D arrays, split between the policy's threads along the
    longer side of ``out``: the rows of ``a`` or the columns of ``b`` (a dense layer's
    forward on a batch of 64 has only 64 rows, but 1024 output columns). Each worker
    gets at least ``matmul_min_part`` rows or columns and ``matmul_min_macs``
    multiply-adds: handing a smaller product to another thread costs more than it saves."""
    p = policy()
    rows = a.shape[0] >= b.shape[1]
    length = a.shape[0] if rows else b.shape[1]
    macs = a.shape[0] * a.shape[1] * b.shape[1]
    workers = max(1, min(p.num_threads, length // max(p.matmul_min_part, 1),
                         macs // max(p.matmul_min_macs, 1)))
    if workers == 1:
        return np.matmul(a, b, out=out)
    bounds = [length * i // workers for i in range(workers + 1)]

    def part(i):
        lo, hi = bounds[i], bounds[i + 1]
        if rows:
            np.matmul(a[lo:hi], b, out=out[lo:hi])
        else:
            np.matmul(a, b[:, lo:hi], out=out[:, lo:hi])

    _run_parts(list(range(workers)), part)
    return out
