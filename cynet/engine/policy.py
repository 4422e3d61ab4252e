"""The performance policy: every number and switch that decides how a computation runs.

A :class:`Policy` is immutable; the engine reads the current one on every call. Users
change the thread count with ``cynet.set_num_threads``; tests and benchmarks swap in a
different policy for a block with :func:`using`::

    with engine.using(num_threads=2, direct_conv=False):
        ...

Each field says why it exists; the benchmark case that shows its value is named in
``benchmarks/`` (``python -m benchmarks.kernels``, ``python -m benchmarks.training``).
"""
import dataclasses
import os
import threading
from contextlib import contextmanager

from .._suggest import did_you_mean


@dataclasses.dataclass(frozen=True)
class Policy:
    """How cynet's kernels run. Field values are plain ints and bools."""

    #: threads of cynet's kernels (OpenMP teams and chunk workers)
    num_threads: int
    #: the AVX-512 direct convolution where it fits (False: always im2col + BLAS)
    direct_conv: bool
    #: retain freed memory in glibc's heap during training and inference loops
    retain_heap: bool
    #: below this many elements a kernel stays on the calling thread: waking a sleeping
    #: OpenMP thread costs more than the work (benchmark case a: LeNet conv1's bias sums)
    parallel_min_elements: int = 1 << 19
    #: elements of a chunk's column buffer, about one core's L2 cache (case c)
    col_budget: int = 512 * 1024
    #: multiply-adds below which OpenBLAS runs its small-matrix kernels; chunks of a
    #: layer with few short filters are cut to fit and stay on one worker (case a)
    small_gemm: int = 950_000
    #: ... as long as each GEMM keeps at least this many columns (case a)
    min_small_gemm_columns: int = 2048
    #: the weight gradient's GEMM is cut into pieces of columns no shorter than this
    #: (simple.json's first layer in the training benchmark)
    min_weight_grad_piece: int = 512
    #: output channels per group from which the direct forward pays (cases a and b)
    min_direct_channels: int = 16
    #: (input channel, kernel column) taps per kernel row from which the direct weight
    #: gradient pays: with fewer, transposing grad_out costs more than it saves (case b)
    min_direct_weight_grad_taps: int = 16
    #: a direct convolution of fewer multiply-adds stays on the calling thread (case b)
    min_parallel_direct_macs: int = 1 << 22
    #: a matrix product is split between workers only in parts of at least this many
    #: rows or columns ...
    matmul_min_part: int = 64
    #: ... and this many multiply-adds each (the dense layers of the training benchmark)
    matmul_min_macs: int = 1 << 22

    def replace(self, **changes):
        """A copy with ``changes``; an unknown field or a bad value is an error naming it."""
        names = [f.name for f in dataclasses.fields(self)]
        for name, value in changes.items():
            if name not in names:
                raise TypeError(f"Policy has no field {name!r}{did_you_mean(name, names)}")
            kind = type(getattr(self, name))
            if type(value) is not kind:
                raise TypeError(f"{name} must be {kind.__name__}, got {value!r}")
            if kind is int and value < (1 if name == "num_threads" else 0):
                raise ValueError(f"{name} must be >= {1 if name == 'num_threads' else 0}, "
                                 f"got {value}")
        if changes.get("direct_conv") and not _direct_available():
            raise ValueError("direct_conv=True needs a CPU with AVX-512 (and a build with "
                             "the direct kernels)")
        return dataclasses.replace(self, **changes)


def _direct_available():
    from .kernels import direct

    return direct.available()


def default_threads():
    """``(threads, from_env)``: ``CYNET_NUM_THREADS`` if set (a positive int), else the
    CPUs this process may run on."""
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
                      RuntimeWarning, stacklevel=3)
    try:
        return len(os.sched_getaffinity(0)), False
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1, False


def _heap_tuning_allowed():
    """Not when the user tuned malloc through its own variables, or said no."""
    user_tuned = any(k.startswith("MALLOC_") and k.endswith("_") for k in os.environ)
    return os.environ.get("CYNET_MALLOC_TUNING", "1") != "0" and not user_tuned


def _initial():
    threads, from_env = default_threads()
    return Policy(num_threads=threads, direct_conv=_direct_available(),
                  retain_heap=_heap_tuning_allowed()), from_env


_lock = threading.Lock()
_current, _blas_limit_pending = _initial()


def current():
    """The current policy. The first call after ``import cynet`` with ``CYNET_NUM_THREADS``
    set also limits numpy's BLAS to that many threads (not at import: threadpoolctl
    is not imported by ``import cynet``)."""
    global _blas_limit_pending
    if _blas_limit_pending:
        _blas_limit_pending = False
        from .blas import limit_blas

        limit_blas(_current.num_threads)
    return _current


def set_policy(new):
    """Make ``new`` (a :class:`Policy`) the current policy; returns the previous one."""
    global _current, _blas_limit_pending
    if not isinstance(new, Policy):
        raise TypeError(f"expected a Policy, got {type(new).__name__}")
    with _lock:
        old, _current = _current, new
        _blas_limit_pending = False
    return old


@contextmanager
def using(**changes):
    """The current policy with ``changes`` inside the block (restored after). Process-wide:
    the worker threads of a kernel follow it too. ``num_threads`` here sets cynet's own
    threads only; ``cynet.set_num_threads`` also limits numpy's BLAS."""
    old = set_policy(current().replace(**changes))
    try:
        yield _current
    finally:
        set_policy(old)
