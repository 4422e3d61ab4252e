"""cynet's built-in layers, one short class each."""
from .activations import LeakyReLU, ReLU, Sigmoid, Tanh
from .base import Layer
from .conv import Conv2D
from .conv_transpose import ConvTranspose2D
from .dense import Dense
from .dropout import Dropout
from .merge import Add, Concat
from .normalization import BatchNorm1D, BatchNorm2D
from .pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from .shape import Flatten, Identity

__all__ = [
    "Layer", "Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Flatten", "Dense",
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Dropout", "BatchNorm2D", "BatchNorm1D",
    "Identity", "Add", "Concat", "ConvTranspose2D",
]
