"""Helpers shared by test_cli.py and test_resume.py: tiny model definitions, tiny
synthetic ``.npz`` datasets, fake broken plugin distributions and the ``cynet`` command
for subprocesses.

Datasets are uint8 images ``(N, H, W)`` (the CLI adds the channel axis) whose class
shows as a brighter horizontal band, so that a few epochs learn something; a share of
the labels can be randomised so that the loss never reaches zero (no denormal slowdown,
the weights keep moving, which is what the bit-exact resume comparisons need).
"""
import copy
import importlib
import json
import os
import re
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np

N_CLASSES = 3
SIZE = 12

# the definition of the API documentation, scaled down (data is filled in per test)
SMALL = {
    "input_shape": [1, SIZE, SIZE],
    "layers": [
        {"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"type": "ReLU"},
        {"type": "MaxPool2D", "kernel_size": 2},
        {"type": "Flatten"},
        {"type": "Dense", "out_features": N_CLASSES},
    ],
    "optimizer": {"type": "sgd", "lr": 0.05, "momentum": 0.9},
    "training": {"epochs": 3, "batch_size": 32, "seed": 0},
}

# the same with Dropout, so that the layers' RNG state matters for exact resumption
WITH_DROPOUT = copy.deepcopy(SMALL)
WITH_DROPOUT["layers"].insert(3, {"type": "Dropout", "p": 0.3})

BUILTIN_TYPES = ("Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Flatten", "Dense",
                 "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Dropout", "BatchNorm2D",
                 "BatchNorm1D", "Identity", "Add", "Concat", "ConvTranspose2D")

RUN_FILES = ("model.json", "weights.npz", "best.npz", "metrics.jsonl", "checkpoint.npz")
# of a run without a validation split: the held-out figures are the test split's
METRIC_KEYS = {"epoch", "loss", "accuracy", "test_loss", "test_accuracy", "lr", "seconds"}


def definition(base=SMALL, data=None, **top):
    """A fresh copy of ``base`` with ``data`` (a path, made a string) and other top-level
    keys set."""
    doc = copy.deepcopy(base)
    if data is not None:
        doc["data"] = os.fspath(data)
    doc.update(copy.deepcopy(top))
    return doc


def write_json(path, doc):
    path = Path(path)
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def banded_images(n, size=SIZE, n_classes=N_CLASSES, seed=0, noise_labels=0.0,
                  noise=80, signal=150):
    """``(x, y)``: uint8 images ``(n, size, size)`` and uint8 labels; class ``c`` lights
    up the ``c``-th horizontal band; ``noise_labels`` of the labels are redrawn at random."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    x = rng.integers(0, noise, (n, size, size))
    band = size // n_classes
    for c in range(n_classes):
        x[y == c, c * band:(c + 1) * band, :] += signal
    if noise_labels:
        flip = rng.random(n) < noise_labels
        y[flip] = rng.integers(0, n_classes, int(flip.sum()))
    return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.uint8)


def write_dataset(path, n_train=96, n_test=48, seed=0, test=True, **kwargs):
    """An ``.npz`` with x_train, y_train (and x_test, y_test unless ``test`` is false)."""
    x, y = banded_images(n_train, seed=seed, **kwargs)
    arrays = {"x_train": x, "y_train": y}
    if test:
        arrays["x_test"], arrays["y_test"] = banded_images(n_test, seed=seed + 1000, **kwargs)
    np.savez(path, **arrays)
    return Path(path)


def load_npz(path):
    """Every array of an .npz, read without pickle."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def read_metrics(run_dir):
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def error_lines(text):
    return [line for line in text.splitlines() if line.startswith("Error: ")]


EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+)\b")


def epoch_lines(text):
    return [line for line in text.splitlines() if EPOCH_LINE.match(line)]


# --------------------------------------------------------------------------- plugins


def fake_distribution(site, name, version, entry_points, modules=None):
    """An installed distribution ``name`` in the folder ``site``: ``<name>-<version>.dist-info``
    with METADATA and ``entry_points.txt`` ({type: "module:attr"} in ``cynet.layers``),
    plus the given modules ({module name: source}) next to it."""
    site = Path(site)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
    lines = ["[cynet.layers]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for module, source in (modules or {}).items():
        (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return site


class OnPath:
    """Puts folders on ``sys.path`` and re-reads the plugin entry points; ``close()``
    takes them off again, forgets modules imported from them and re-reads once more."""

    def __init__(self):
        from cynet import registry

        self.registry = registry
        self.folders = []

    def __call__(self, folder):
        folder = os.fspath(folder)
        sys.path.insert(0, folder)
        self.folders.append(folder)
        importlib.invalidate_caches()
        self.registry.reload()
        return folder

    def close(self):
        for folder in self.folders:
            while folder in sys.path:
                sys.path.remove(folder)
            for name, module in list(sys.modules.items()):
                if (getattr(module, "__file__", None) or "").startswith(folder):
                    del sys.modules[name]
        importlib.invalidate_caches()
        self.registry.reload()


# --------------------------------------------------------------------------- subprocesses


def cynet_command():
    """The installed ``cynet`` script of the environment running the tests (next to the
    interpreter, else the first on PATH), else ``python -m cynet.cli``."""
    beside = Path(sys.executable).with_name("cynet")
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("cynet")
    if found:
        return [found]
    return [sys.executable, "-m", "cynet.cli"]


def subprocess_env(**extra):
    """The environment for a ``cynet`` subprocess: one thread everywhere (bit-reproducible
    runs), no debug mode or plugin switch inherited from the caller."""
    env = dict(os.environ)
    for key in ("CYNET_DEBUG", "CYNET_DISABLE_PLUGIN_AUTOLOAD"):
        env.pop(key, None)
    env.update(CYNET_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env
