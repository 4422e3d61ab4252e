"""cynet: a CNN framework whose convolution and pooling kernels are Cython.

    import cynet
    model = cynet.Model.from_json("models/simple.json")
    model.fit(x, y)

Public names: ``Model``, ``Layer``, ``register_layer``, ``registry``, ``functional``,
``engine``, the exceptions ``DefinitionError``, ``DataError``, ``WeightsFileError`` and
``CheckpointError``, ``set_num_threads``, ``get_num_threads``, ``testing``.
"""
from importlib.metadata import PackageNotFoundError as _NotFound, version as _version

try:
    __version__ = _version("cynet-cnn")  # the distribution's name (import name: cynet)
except _NotFound:  # a source tree without installed metadata
    __version__ = "0+unknown"

from . import engine, functional, registry  # noqa: E402  (engine first: it loads the kernels)
from .definition import DefinitionError  # noqa: E402
from .engine import get_num_threads, set_num_threads  # noqa: E402
from .layers.base import Layer  # noqa: E402
from .model import Model  # noqa: E402
from .registry import register_layer  # noqa: E402
from .weights import WeightsFileError  # noqa: E402

__all__ = [
    "Model", "Layer", "register_layer", "registry", "functional", "engine",
    "DefinitionError", "DataError", "WeightsFileError", "CheckpointError",
    "set_num_threads", "get_num_threads", "testing", "__version__",
]


# imported on first use (``from cynet import DataError`` too), not by ``import cynet``
_LAZY = {"testing": (".testing", None), "DataError": (".data", "DataError"),
         "CheckpointError": (".checkpoint", "CheckpointError")}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        module = importlib.import_module(module, __name__)
        return module if attribute is None else getattr(module, attribute)
    raise AttributeError(f"module 'cynet' has no attribute {name!r}")
