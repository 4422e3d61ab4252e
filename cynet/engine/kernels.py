"""The compiled kernels, loaded once, with OpenMP's threads told to sleep when idle.

OpenMP threads that spin while waiting for work take the cores that numpy's BLAS
threads need next (the chunked convolutions alternate the two; benchmark case c). The
GNU runtime reads its wait policy from the environment once, when it is loaded, which
is when the first kernel module is imported: the variable is set for that moment only
and then removed again, so that ``import cynet`` leaves the process environment as it
found it. A user's own ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is left alone.
"""
import os
from contextlib import contextmanager

_WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


@contextmanager
def passive_openmp_while_loading():
    """``OMP_WAIT_POLICY=PASSIVE`` in the environment inside the block only."""
    if any(name in os.environ for name in _WAIT_VARIABLES):
        yield
        return
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        yield
    finally:
        if os.environ.get("OMP_WAIT_POLICY") == "PASSIVE":
            del os.environ["OMP_WAIT_POLICY"]


with passive_openmp_while_loading():
    from .. import _activations as activations  # noqa: E402  (the first loads OpenMP)
    from .. import _build_info as build_info  # noqa: E402
    from .. import _direct as direct  # noqa: E402
    from .. import _im2col as im2col  # noqa: E402
    from .. import _losses as losses  # noqa: E402
    from .. import _optim as optim  # noqa: E402
    from .. import _pad as pad  # noqa: E402
    from .. import _pool as pool  # noqa: E402

__all__ = ["activations", "build_info", "direct", "im2col", "losses", "optim", "pad", "pool"]
