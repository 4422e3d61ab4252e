"""cynet: a CNN framework whose convolution and pooling kernels are Cython."""
import os as _os

# OpenMP threads that spin while waiting fight numpy's OpenBLAS threads for the same cores
# (measured: 20x slower alternating im2col and GEMM). Must be set before the kernels load.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from importlib.metadata import PackageNotFoundError as _NotFound, version as _version

try:
    __version__ = _version("cynet")
except _NotFound:  # a source tree without installed metadata
    __version__ = "0+unknown"

from . import functional  # noqa: E402

__all__ = ["functional", "__version__"]
