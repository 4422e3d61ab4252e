"""Definitions, synthetic data and helpers shared by test_definition.py and test_model.py."""
import contextlib
import copy

import numpy as np

import cynet
from cynet import registry

EXAMPLE = {
    "input_shape": [1, 28, 28],
    "layers": [
        {"type": "Conv2D", "out_channels": 8, "kernel_size": 3, "padding": 1},
        {"type": "ReLU"},
        {"type": "MaxPool2D", "kernel_size": 2},
        {"type": "Flatten"},
        {"type": "Dense", "out_features": 10},
    ],
    "loss": "cross_entropy",
    "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9},
    "training": {"epochs": 3, "batch_size": 64, "seed": 0},
    "data": "fashion-mnist-mini",
}


def example():
    """A fresh copy of the definition of the API documentation."""
    return copy.deepcopy(EXAMPLE)


def lenet(size=20, n_classes=10, **top):
    """LeNet-5 on 1 x size x size: conv5x5(6, pad 2) - relu - maxpool2 - conv5x5(16) -
    relu - maxpool2 - flatten - dense120 - relu - dense84 - relu - dense(n_classes)."""
    doc = {
        "input_shape": [1, size, size],
        "layers": [
            {"type": "Conv2D", "out_channels": 6, "kernel_size": 5, "padding": 2},
            {"type": "ReLU"},
            {"type": "MaxPool2D", "kernel_size": 2},
            {"type": "Conv2D", "out_channels": 16, "kernel_size": 5},
            {"type": "ReLU"},
            {"type": "MaxPool2D", "kernel_size": 2},
            {"type": "Flatten"},
            {"type": "Dense", "out_features": 120},
            {"type": "ReLU"},
            {"type": "Dense", "out_features": 84},
            {"type": "ReLU"},
            {"type": "Dense", "out_features": n_classes},
        ],
        "loss": "cross_entropy",
        "optimizer": {"type": "adam", "lr": 0.002},
        "training": {"epochs": 4, "batch_size": 32, "seed": 0},
    }
    doc.update(top)
    return doc


def every_layer_model(size=12, n_classes=5, **top):
    """A small graph model using every built-in layer type (BatchNorm2D and Dropout
    included): a branch and a skip joined by Add, and Concat of that with the skip."""
    doc = {
        "input_shape": [2, size, size],
        "layers": [
            {"type": "Conv2D", "out_channels": 6, "kernel_size": 3, "padding": "same"},
            {"type": "BatchNorm2D"},
            {"type": "LeakyReLU", "negative_slope": 0.1},
            {"type": "MaxPool2D", "kernel_size": 2, "name": "pool"},
            {"type": "Conv2D", "out_channels": 6, "kernel_size": 3, "padding": 1, "groups": 3},
            {"type": "Tanh", "name": "branch"},
            {"type": "Identity", "name": "skip", "inputs": "pool"},
            {"type": "Add", "name": "sum", "inputs": ["branch", "skip"]},
            {"type": "Concat", "inputs": ["sum", "pool"]},
            {"type": "AvgPool2D", "kernel_size": 2, "count_include_pad": False},
            {"type": "Dropout", "p": 0.3},
            {"type": "ConvTranspose2D", "out_channels": 6, "kernel_size": 3, "stride": 2,
             "padding": 1, "output_padding": 1},
            {"type": "Conv2D", "out_channels": 8, "kernel_size": 1},
            {"type": "ReLU"},
            {"type": "GlobalAvgPool2D"},
            {"type": "Dense", "out_features": 12},
            {"type": "BatchNorm1D"},
            {"type": "Sigmoid"},
            {"type": "Flatten"},
            {"type": "Dense", "out_features": n_classes},
        ],
        "loss": "cross_entropy",
        "optimizer": {"type": "adam", "lr": 0.01},
        "training": {"epochs": 2, "batch_size": 16, "seed": 1},
    }
    doc.update(top)
    return doc


def bars(n, size=20, n_classes=10, noise=0.35, seed=0):
    """Synthetic images (N, 1, size, size) float32 and labels (N,) int64.

    Class k draws a bright bar: horizontal for the first half of the classes, vertical for
    the rest, at a class-dependent position (jittered by one pixel), with a random
    brightness, on a noisy background. A linear classifier does not separate them well
    (the jitter), a small CNN does.
    """
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    x = rng.normal(0.0, noise, (n, 1, size, size))
    half = (n_classes + 1) // 2
    spacing = (size - 4) / max(half - 1, 1)
    for i, k in enumerate(y):
        pos = int(round(2 + spacing * (k % half))) + int(rng.integers(-1, 2))
        pos = min(max(pos, 0), size - 2)
        start = int(rng.integers(0, size // 3))
        length = int(rng.integers(size // 2, size - start + 1))
        bright = rng.uniform(0.8, 1.5)
        if k < half:
            x[i, 0, pos:pos + 2, start:start + length] += bright
        else:
            x[i, 0, start:start + length, pos:pos + 2] += bright
    return x.astype(np.float32), y.astype(np.int64)


def blobs(n, shape, n_classes, seed=0, spread=0.6):
    """Gaussian clusters in ``shape`` (per sample) with one random centre per class."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (n_classes,) + tuple(shape))
    y = rng.integers(0, n_classes, n)
    x = centres[y] + rng.normal(0, spread, (n,) + tuple(shape))
    return x.astype(np.float32), y.astype(np.int64)


@contextlib.contextmanager
def registered(cls, name):
    """``cls`` registered as layer type ``name`` for the duration of the block.

    ``register_layer`` has no public inverse; the entry is removed from the registry's
    script table afterwards so that other tests see the registry as it was.
    """
    assert registry.source(name) is None, f"{name} is already a layer type"
    cynet.register_layer(name)(cls)
    try:
        yield cls
    finally:
        registry._registry._script.pop(name, None)
    assert registry.source(name) is None


def model_arrays(model):
    """Every parameter and buffer of a model, copied, by name."""
    out = {}
    for i, layer in enumerate(model.layers):
        for store in ("params", "buffers"):
            for k, v in getattr(layer, store).items():
                out[f"{i}.{store}.{k}"] = np.array(v, copy=True)
    return out
