"""An example cynet plugin: two layer types, found by cynet through entry points.

cynet never imports this package by name: it reads the ``cynet.layers`` entry points of
the installed distribution and imports ``cynet_example_plugin.layers`` when a model first
uses ``"Swish"`` or ``"PReLU2D"``.
"""
from .layers import PReLU2D, Swish

__version__ = "0.1.0"
__all__ = ["Swish", "PReLU2D"]
