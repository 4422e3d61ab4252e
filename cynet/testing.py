"""Numerical gradient checks for layers, built-in or from a plugin, and whole networks.

    from cynet.testing import gradcheck_layer, gradcheck_model
    gradcheck_layer("Conv2D", {"out_channels": 4, "kernel_size": 3}, (2, 7, 6))
    gradcheck_model(definition)   # a graph definition, end to end

The layer is built, its parameters are cast to float64, and its analytic gradients (of
``sum(forward(x) * dy)``, for a random ``dy``) are compared with central differences for
the input and every parameter.
"""
from dataclasses import dataclass

import numpy as np

from . import registry
from .layers.base import Layer


@dataclass
class GradcheckResult:
    layer: str
    ok: bool
    max_error: float  # worst |analytic - numeric| / max(1, |numeric|) over all checked elements
    worst: str  # where the worst element is, with both values
    checked: int  # number of elements compared

    def __str__(self):
        status = "ok" if self.ok else "FAILED"
        return (f"{self.layer}: {status}, max error {self.max_error:.2e} over {self.checked} "
                f"elements; worst: {self.worst}")


def _layer_class(type_or_class):
    if isinstance(type_or_class, str):
        return registry.get(type_or_class)
    if isinstance(type_or_class, type) and issubclass(type_or_class, Layer):
        return type_or_class
    raise TypeError(f"expected a layer type name or Layer subclass, got {type_or_class!r}")


def _make(cls, config, input_shape, seed):
    layer = cls(**config)
    layer.rng = np.random.default_rng(seed)
    layer.build(input_shape)
    for store in (layer.params, layer.buffers):
        for k, v in store.items():
            store[k] = v.astype(np.float64)
    return layer


def _run(layer, x, seed):
    layer.rng = np.random.default_rng(seed)  # the same dropout mask for every evaluation
    return layer.forward(x, training=True)


def gradcheck_layer(type_or_class, config=None, input_shape=None, *, batch=2, eps=1e-6,
                    tolerance=1e-5, max_elements=200, seed=0, raise_on_failure=True):
    """Compare a layer's backward with float64 central differences.

    ``config`` and ``input_shape`` (per sample) default to the class's ``example``.
    At most ``max_elements`` elements per array are checked (a random subset).
    Returns a :class:`GradcheckResult`; raises ``AssertionError`` with the report when the
    check fails and ``raise_on_failure`` is true.
    """
    cls = _layer_class(type_or_class)
    example = getattr(cls, "example", None) or {}
    config = dict(example.get("config", {}) if config is None else config)
    input_shape = example.get("input_shape", (3, 5, 4)) if input_shape is None else input_shape
    # a merge layer takes a list of per-sample shapes, and its inputs and gradients are lists
    shapes = [tuple(s) for s in input_shape] if cls.merges else [tuple(input_shape)]
    name = getattr(type_or_class, "__name__", type_or_class)
    rng = np.random.default_rng(seed)

    layer = _make(cls, config, shapes if cls.merges else shapes[0], seed)
    xs = [rng.standard_normal((batch,) + s) for s in shapes]
    x = xs if cls.merges else xs[0]
    y = _run(layer, x, seed)
    dy = rng.standard_normal(y.shape)
    grad_x = layer.backward(dy)
    labels = [f"input[{k}]" for k in range(len(xs))] if cls.merges else ["input"]
    given = list(grad_x) if cls.merges and grad_x is not None else [grad_x] * len(xs)
    if len(given) != len(xs):
        given = [None] * len(xs)
    analytic = dict(zip(labels, given))
    analytic.update({f"params[{k!r}]": layer.grads[k] for k in layer.params})

    def loss():
        return float(np.sum(_run(layer, x, seed) * dy))

    targets = dict(zip(labels, xs))
    targets.update({f"params[{k!r}]": layer.params[k] for k in layer.params})
    return _compare(name, targets, analytic, loss, rng, eps, tolerance, max_elements,
                    raise_on_failure)


def _compare(name, targets, analytic, loss, rng, eps, tolerance, max_elements,
             raise_on_failure):
    """Central differences of ``loss()`` for (a random subset of) each array of
    ``targets``, changed in place, against ``analytic`` (same labels)."""
    worst, max_err, checked = "nothing checked", 0.0, 0
    for label, array in targets.items():
        got = analytic[label]
        if got is None or np.shape(got) != array.shape:
            shape = None if got is None else np.shape(got)
            result = GradcheckResult(name, False, float("inf"),
                                     f"{label}: backward gave {shape}, expected {array.shape}", checked)
            if raise_on_failure:
                raise AssertionError(str(result))
            return result
        flat = array.reshape(-1)
        picks = np.arange(flat.size)
        if flat.size > max_elements:
            picks = rng.choice(flat.size, max_elements, replace=False)
        for i in picks:
            saved = flat[i]
            flat[i] = saved + eps
            up = loss()
            flat[i] = saved - eps
            down = loss()
            flat[i] = saved
            numeric = (up - down) / (2 * eps)
            value = float(np.asarray(got).reshape(-1)[i])
            err = abs(value - numeric) / max(1.0, abs(numeric))
            checked += 1
            if err >= max_err:
                max_err = err
                index = np.unravel_index(i, array.shape)
                worst = f"{label}{list(map(int, index))}: analytic {value:.8g}, numeric {numeric:.8g}"
    result = GradcheckResult(name, max_err <= tolerance, max_err, worst, checked)
    if raise_on_failure and not result.ok:
        raise AssertionError(str(result))
    return result


# a small residual graph: an output read by a conv and an Add (fan-out), a Concat of a
# branch with its input, BatchNorm and a fused ReLU -> MaxPool
RESIDUAL_GRAPH = {
    "input_shape": [2, 6, 5],
    "layers": [
        {"type": "Conv2D", "out_channels": 3, "kernel_size": 3, "padding": 1, "name": "c"},
        {"type": "Tanh", "name": "t"},
        {"type": "Conv2D", "out_channels": 3, "kernel_size": [3, 2], "padding": "same"},
        {"type": "BatchNorm2D", "name": "b"},
        {"type": "Add", "name": "sum", "inputs": ["t", "b"]},
        {"type": "Concat", "inputs": ["sum", "t"]},
        {"type": "ReLU"},
        {"type": "MaxPool2D", "kernel_size": 2, "ceil_mode": True},
        {"type": "Flatten"},
        {"type": "Dense", "out_features": 4},
    ],
}


def gradcheck_model(doc=None, *, batch=2, eps=1e-6, tolerance=1e-5, max_elements=60, seed=0,
                    raise_on_failure=True):
    """Compare a whole network's backward (a graph definition ``doc``; default
    RESIDUAL_GRAPH) with float64 central differences, for its input and every parameter,
    in training mode. Returns a :class:`GradcheckResult`, as ``gradcheck_layer``."""
    from .model import Model

    doc = RESIDUAL_GRAPH if doc is None else doc
    model = Model.from_dict(dict(doc, training={"seed": seed}))
    for layer in model.layers:
        for store in (layer.params, layer.buffers):
            for k, v in store.items():
                store[k] = v.astype(np.float64)
        layer.input_grad = True  # the input's gradient is checked too
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + tuple(model.input_shape))
    network = model.network

    def run():
        for i, layer in enumerate(model.layers):  # the same dropout masks every time
            layer.rng = np.random.default_rng([seed, i])
        return network.forward(x, training=True)

    y = run()
    dy = rng.standard_normal(y.shape)
    grad_x = network.backward(dy)
    analytic = {"input": grad_x}
    analytic.update({f"params[{k!r}]": v for k, v in network.gradients().items()})
    targets = {"input": x}
    targets.update({f"params[{k!r}]": v for k, v in network.parameters().items()})
    return _compare("graph", targets, analytic, lambda: float(np.sum(run() * dy)), rng, eps,
                    tolerance, max_elements, raise_on_failure)
