"""The engine: how cynet's computations run, decided in one place.

Thread counts, numpy's BLAS limits, heap retention, scratch workspaces and kernel
routing (direct vs im2col convolution, chunk sizes, fused operations) are the engine's;
layers, losses, optimizers and the network call its operations and never pick threads
or import a compiled kernel module themselves.

- :mod:`.policy`     the :class:`Policy` (every tuning number), ``current()``, ``using()``
- :mod:`.threads`    ``get/set_num_threads``, the small-array rule ``threads_for``
- :mod:`.kernels`    the compiled modules, loaded with OpenMP told not to spin
- :mod:`.blas`       numpy's BLAS threads (threadpoolctl)
- :mod:`.workers`    work split between threads: chunk runner, parallel matmul
- :mod:`.workspace`  per-thread scratch buffers
- :mod:`.heap`       freed memory kept in the heap inside loops
- :mod:`.session`    the context a training or inference loop runs in
- :mod:`.conv`, :mod:`.pool`, :mod:`.ops`   the operations
"""
from .policy import Policy, current, using
from .session import session
from .threads import get_num_threads, set_num_threads, threads_for

__all__ = ["Policy", "current", "using", "session", "get_num_threads", "set_num_threads",
           "threads_for"]
