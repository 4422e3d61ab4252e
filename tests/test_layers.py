"""Tests of cynet's layers (cynet.layers, through the registry) and of gradcheck_layer.

* ``gradcheck_layer`` passes for every built-in layer type (its example config) and for
  extra configurations (``"same"`` padding with dilation, depthwise, ceil_mode, ...); it
  fails for deliberately wrong layers defined here, so the checker itself can fail.
* Every layer against its ``torch.nn`` equivalent (when torch is installed), with cynet's
  parameters copied into the torch module: forward, input gradient, parameter gradients;
  BatchNorm2D over several training steps (running statistics), then in eval mode.
* Initialisation (PyTorch's bounds, float32, reproducible from the layer's rng),
  ``get_config`` round trips, constructor errors, first-layer backward, Dropout and
  BatchNorm2D semantics.
"""
import copy
import json
import math
import warnings

import numpy as np
import pytest

import cynet
from cynet import registry
from cynet.layers import BatchNorm2D, Conv2D, Dense, Dropout, Layer
from cynet.testing import GradcheckResult, gradcheck_layer

BUILTINS = sorted(info.type for info in registry.available() if info.origin == "builtin")


def make_layer(type_name, config, input_shape, seed=0, input_grad=True):
    """A built layer, as a model would make it (a merge layer's ``input_shape`` is a
    list of shapes)."""
    layer = registry.get(type_name)(**copy.deepcopy(config))
    layer.rng = np.random.default_rng(seed)
    layer.input_grad = input_grad
    layer.build([tuple(s) for s in input_shape] if layer.merges else tuple(input_shape))
    return layer


def example_of(type_name):
    cls = registry.get(type_name)
    ex = getattr(cls, "example", None) or {}
    shape = ex.get("input_shape", (3, 5, 4))
    return dict(ex.get("config", {})), (tuple(map(tuple, shape)) if cls.merges else tuple(shape))


def shapes_of(layer, input_shape):
    """The per-sample shapes of each input of ``layer``."""
    return [tuple(s) for s in input_shape] if layer.merges else [tuple(input_shape)]


def batch(rng, layer, n, input_shape, dtype=np.float32):
    """Random input(s) for ``layer``: an array, or a list for a merge layer."""
    xs = [rng.standard_normal((n,) + s).astype(dtype) for s in shapes_of(layer, input_shape)]
    return xs if layer.merges else xs[0]


def as_list(layer, value):
    return list(value) if layer.merges else [value]


def test_every_builtin_is_listed():
    # the table of the contract: if one goes missing, the parametrized tests lose it silently
    assert set(BUILTINS) >= {
        "Conv2D", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Flatten", "Dense", "ReLU",
        "LeakyReLU", "Sigmoid", "Tanh", "Dropout", "BatchNorm2D", "ConvTranspose2D"}


# --------------------------------------------------------------------------- gradcheck

EXTRA_GRADCHECK = [
    pytest.param("Conv2D", {"out_channels": 3, "kernel_size": 3, "padding": "same",
                            "dilation": 2}, (2, 7, 6), id="conv_same_dilated"),
    pytest.param("Conv2D", {"out_channels": 2, "kernel_size": [2, 3], "padding": "same",
                            "dilation": [1, 2]}, (3, 5, 6), id="conv_same_even_kernel"),
    pytest.param("Conv2D", {"out_channels": 6, "kernel_size": 3, "padding": 1, "groups": 3},
                 (3, 5, 5), id="conv_depthwise_x2"),
    pytest.param("Conv2D", {"out_channels": 3, "kernel_size": 1, "bias": False},
                 (4, 3, 5), id="conv_pointwise_nobias"),
    pytest.param("Conv2D", {"out_channels": 2, "kernel_size": [3, 2], "stride": [2, 1],
                            "padding": [0, 1], "dilation": [1, 2]}, (2, 8, 6),
                 id="conv_asymmetric"),
    pytest.param("Conv2D", {"out_channels": 3, "kernel_size": 3, "padding": 2,
                            "padding_mode": "reflect"}, (2, 4, 5), id="conv_reflect"),
    pytest.param("Conv2D", {"out_channels": 2, "kernel_size": [2, 3], "stride": 2,
                            "padding": "same", "padding_mode": "replicate"}, (2, 5, 6),
                 id="conv_replicate_same_strided"),
    pytest.param("Conv2D", {"out_channels": 2, "kernel_size": 3, "padding": [[3, 0], [1, 2]],
                            "padding_mode": "circular"}, (2, 3, 4), id="conv_circular_per_side"),
    pytest.param("MaxPool2D", {"kernel_size": 3, "stride": 2, "padding": [[0, 1], [1, 1]],
                               "ceil_mode": True}, (2, 6, 7), id="maxpool_per_side"),
    pytest.param("AvgPool2D", {"kernel_size": [2, 3], "stride": 2, "padding": "same",
                               "count_include_pad": False}, (2, 7, 6), id="avgpool_same"),
    pytest.param("ConvTranspose2D", {"out_channels": 3, "kernel_size": 3, "stride": 2,
                                     "output_padding": 1}, (2, 3, 4), id="convt_upsample"),
    pytest.param("ConvTranspose2D", {"out_channels": 2, "kernel_size": [2, 3], "dilation": [3, 2],
                                     "output_padding": [2, 1], "padding": [0, 1],
                                     "bias": False}, (3, 4, 3), id="convt_dilated_nobias"),
    pytest.param("ConvTranspose2D", {"out_channels": 3, "kernel_size": 1, "groups": 3},
                 (6, 3, 4), id="convt_pointwise_groups"),
    pytest.param("MaxPool2D", {"kernel_size": 2, "ceil_mode": True}, (2, 5, 7),
                 id="maxpool_ceil"),
    pytest.param("MaxPool2D", {"kernel_size": 3, "stride": 1, "padding": 1, "dilation": 2},
                 (2, 6, 6), id="maxpool_dilated"),
    pytest.param("AvgPool2D", {"kernel_size": 3, "stride": 2, "padding": 1,
                               "count_include_pad": False}, (2, 7, 6), id="avgpool_exclude_pad"),
    pytest.param("AvgPool2D", {"kernel_size": [2, 3], "stride": [1, 2], "ceil_mode": True},
                 (2, 5, 8), id="avgpool_ceil"),
    pytest.param("AvgPool2D", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                               "divisor_override": 4}, (2, 7, 6), id="avgpool_divisor"),
    pytest.param("Dense", {"out_features": 4}, (6,), id="dense_1d"),
    pytest.param("Dense", {"out_features": 3, "bias": False}, (2, 3, 5), id="dense_last_axis"),
    pytest.param("BatchNorm2D", {}, (3, 4, 5), id="batchnorm_default"),
    pytest.param("BatchNorm2D", {"momentum": 0.5, "eps": 1e-3}, (2, 1, 3),
                 id="batchnorm_small"),
    pytest.param("LeakyReLU", {}, (3, 4), id="leakyrelu_default"),
    pytest.param("Dropout", {"p": 0.5}, (4, 6), id="dropout_half"),
    pytest.param("Flatten", {}, (2, 3, 4), id="flatten_3d"),
    pytest.param("BatchNorm1D", {}, (3, 4), id="batchnorm1d_channels_length"),
    pytest.param("Add", {}, [(3,), (3,), (3,)], id="add_three"),
    pytest.param("Concat", {"dim": -1}, [(2, 3), (2, 1)], id="concat_last_axis"),
]


def expected_checked(type_name, config, input_shape, batch, max_elements):
    layer = make_layer(type_name, config, input_shape)
    sizes = [batch * math.prod(s) for s in shapes_of(layer, input_shape)]
    sizes += [p.size for p in layer.params.values()]
    return sum(min(n, max_elements) for n in sizes)


def run_gradcheck(type_name, config, input_shape):
    """Gradcheck through the public entry point, and checks on what it reports."""
    kwargs = dict(batch=2, max_elements=200)
    result = gradcheck_layer(type_name, config, input_shape, **kwargs)
    assert isinstance(result, GradcheckResult)
    assert result.ok, str(result)
    assert result.max_error <= 1e-5, str(result)
    if config is None:
        config, input_shape = example_of(type_name)
    assert result.checked == expected_checked(type_name, config, input_shape, **kwargs)


@pytest.mark.parametrize("type_name", BUILTINS)
def test_gradcheck_builtin_example(type_name):
    run_gradcheck(type_name, None, None)


@pytest.mark.parametrize("type_name, config, input_shape", EXTRA_GRADCHECK)
def test_gradcheck_builtin_extra(type_name, config, input_shape):
    run_gradcheck(type_name, config, input_shape)


def test_gradcheck_accepts_a_class():
    result = gradcheck_layer(Conv2D, {"out_channels": 2, "kernel_size": 2}, (1, 4, 4))
    assert result.ok and result.checked == 2 * 16 + 2 * 4 + 2


class Square(Layer):
    """y = scale * x**2 per element, with a deliberate mistake selected by ``bug``."""

    def __init__(self, bug="none", **kwargs):
        super().__init__(**kwargs)
        self.bug = bug

    def build(self, input_shape):
        self.params = {"scale": np.full((1,), 1.5, np.float32)}
        self.grads = {"scale": np.zeros(1, np.float32)}
        return super().build(input_shape)

    def forward(self, x, training=True):
        self._x = x
        return self.params["scale"] * x * x

    def backward(self, grad_out):
        x, s = self._x, self.params["scale"]
        gscale = np.sum(grad_out * x * x)
        gx = grad_out * 2 * s * x
        if self.bug == "input_grad":  # forgot the factor 2
            gx = grad_out * s * x
        elif self.bug == "param_grad":  # gradient of the wrong parameter value
            gscale = np.sum(grad_out * x)
        elif self.bug == "sign":
            gx = -gx
        elif self.bug == "shape":
            gx = gx[:, :1]
        elif self.bug == "none_grad":
            gx = None
        self.grads["scale"] = np.reshape(gscale, (1,)).astype(s.dtype)
        return gx


def test_gradcheck_passes_a_correct_custom_layer():
    result = gradcheck_layer(Square, {}, (3, 4))
    assert result.ok and result.checked == 2 * 12 + 1


@pytest.mark.parametrize("bug", ["input_grad", "param_grad", "sign", "shape", "none_grad"])
def test_gradcheck_fails_for_a_wrong_layer(bug):
    result = gradcheck_layer(Square, {"bug": bug}, (3, 4), raise_on_failure=False)
    assert not result.ok, str(result)
    assert result.max_error > 1e-2
    where = "params" if bug == "param_grad" else "input"
    assert where in result.worst
    with pytest.raises(AssertionError, match="FAILED"):
        gradcheck_layer(Square, {"bug": bug}, (3, 4))


# --------------------------------------------------------------------------- torch

@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


def _t(v):
    return tuple(v) if isinstance(v, list) else v


class _Merge:
    """A torch "module" of several inputs and no parameters."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *xs):
        return self.fn(*xs)

    def named_parameters(self):
        return iter(())

    def train(self, mode):
        return self


class _PaddedFirst:
    """A torch module run on an explicitly padded input: the per-side and strided "same"
    paddings that torch's layers lack (``mode`` and ``value`` as ``F.pad``'s)."""

    def __init__(self, module, sides, mode="constant", value=0.0):
        import torch

        (pt, pb), (pl, pr) = sides
        self.module = module
        self.pad = lambda x: torch.nn.functional.pad(
            x, (pl, pr, pt, pb), mode=mode, **({"value": value} if mode == "constant" else {}))

    def __call__(self, x):
        return self.module(self.pad(x))

    def named_parameters(self):
        return self.module.named_parameters()

    def train(self, mode):
        self.module.train(mode)
        return self


def _explicit_sides(c, input_shape):
    """A padding torch's layers cannot take (per side, "same" at a stride) as
    ((top, bottom), (left, right)); None for one they take."""
    padding = c.get("padding", 0)
    stride = c.get("stride", 1 if "out_channels" in c else None)
    per_side = isinstance(padding, (list, tuple)) and isinstance(padding[0], (list, tuple))
    if not (per_side or (padding == "same" and _t(stride) not in (1, (1, 1)))):
        return None
    import reference

    k = reference._pair(c["kernel_size"])
    s = k if stride is None else reference._pair(stride)
    return reference.conv_pads(padding, k, reference._pair(c.get("dilation", 1)), s,
                               input_shape[1:])


def torch_module(nn, type_name, config, input_shape):
    """The torch.nn module equivalent to a cynet layer (float32, default init)."""
    c = dict(config)
    sides = _explicit_sides(c, input_shape)
    if sides is not None:  # torch's layer without padding, on a padded copy
        c["padding"] = 0
        if type_name == "MaxPool2D":
            value = -np.inf
        else:
            # zeros count in an average only with count_include_pad and no window past them
            assert type_name == "Conv2D" or (c.get("count_include_pad", True)
                                             and not c.get("ceil_mode")), config
            value = 0.0
        mode = {"zeros": "constant"}.get(c.get("padding_mode", "zeros"), c.get("padding_mode"))
        c["padding_mode"] = "zeros"
        return _PaddedFirst(torch_module(nn, type_name, c, input_shape), sides, mode, value)
    if type_name == "Conv2D":
        return nn.Conv2d(input_shape[0], c["out_channels"], _t(c["kernel_size"]),
                         stride=_t(c.get("stride", 1)), padding=_t(c.get("padding", 0)),
                         dilation=_t(c.get("dilation", 1)), groups=c.get("groups", 1),
                         bias=c.get("bias", True),
                         padding_mode=c.get("padding_mode", "zeros"))
    if type_name == "ConvTranspose2D":
        return nn.ConvTranspose2d(input_shape[0], c["out_channels"], _t(c["kernel_size"]),
                                  stride=_t(c.get("stride", 1)), padding=_t(c.get("padding", 0)),
                                  output_padding=_t(c.get("output_padding", 0)),
                                  dilation=_t(c.get("dilation", 1)), groups=c.get("groups", 1),
                                  bias=c.get("bias", True))
    if type_name == "MaxPool2D":
        return nn.MaxPool2d(_t(c["kernel_size"]), _t(c.get("stride")), _t(c.get("padding", 0)),
                            _t(c.get("dilation", 1)), ceil_mode=c.get("ceil_mode", False))
    if type_name == "AvgPool2D":
        return nn.AvgPool2d(_t(c["kernel_size"]), _t(c.get("stride")), _t(c.get("padding", 0)),
                            ceil_mode=c.get("ceil_mode", False),
                            count_include_pad=c.get("count_include_pad", True),
                            divisor_override=c.get("divisor_override"))
    if type_name == "GlobalAvgPool2D":
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    if type_name == "Flatten":
        return nn.Flatten()
    if type_name == "Dense":
        return nn.Linear(input_shape[-1], c["out_features"], bias=c.get("bias", True))
    if type_name == "ReLU":
        return nn.ReLU()
    if type_name == "LeakyReLU":
        return nn.LeakyReLU(c.get("negative_slope", 0.01))
    if type_name == "Sigmoid":
        return nn.Sigmoid()
    if type_name == "Tanh":
        return nn.Tanh()
    if type_name == "Dropout":
        return nn.Dropout(c.get("p", 0.5))
    if type_name == "BatchNorm2D":
        return nn.BatchNorm2d(input_shape[0], eps=c.get("eps", 1e-5),
                              momentum=c.get("momentum", 0.1))
    if type_name == "BatchNorm1D":
        return nn.BatchNorm1d(input_shape[0], eps=c.get("eps", 1e-5),
                              momentum=c.get("momentum", 0.1))
    if type_name == "Identity":
        return nn.Identity()
    if type_name == "Add":
        return _Merge(lambda *xs: sum(xs[1:], xs[0]))
    if type_name == "Concat":
        import torch

        return _Merge(lambda *xs: torch.cat(xs, dim=c.get("dim", 1)))
    raise AssertionError(f"no torch equivalent for {type_name}")


TORCH_CASES = [
    pytest.param("Conv2D", {"out_channels": 5, "kernel_size": 3}, (3, 9, 8), True, id="conv"),
    pytest.param("Conv2D", {"out_channels": 4, "kernel_size": [3, 2], "stride": 2,
                            "padding": 1, "groups": 2}, (2, 7, 6), True, id="conv_example"),
    pytest.param("Conv2D", {"out_channels": 4, "kernel_size": 3, "padding": "same",
                            "dilation": 2}, (3, 8, 7), True, id="conv_same_dilated"),
    pytest.param("Conv2D", {"out_channels": 3, "kernel_size": 4, "padding": "same"},
                 (2, 6, 7), True, id="conv_same_even"),
    pytest.param("Conv2D", {"out_channels": 8, "kernel_size": 3, "padding": 1, "groups": 4},
                 (4, 6, 6), True, id="conv_depthwise"),
    pytest.param("Conv2D", {"out_channels": 6, "kernel_size": 1, "bias": False},
                 (5, 4, 4), True, id="conv_pointwise_nobias"),
    pytest.param("Conv2D", {"out_channels": 4, "kernel_size": 3, "padding": "valid",
                            "stride": [1, 2]}, (2, 7, 9), True, id="conv_valid_strided"),
    *[pytest.param("Conv2D", {"out_channels": 4, "kernel_size": [3, 2], "padding": padding,
                              "padding_mode": mode, "groups": 2}, (2, 5, 6), True,
                   id=f"conv_{mode}_{name}")
      for mode in ("reflect", "replicate", "circular")
      for name, padding in (("pair", [2, 1]), ("same", "same"))],
    pytest.param("Conv2D", {"out_channels": 3, "kernel_size": 3, "stride": 2,
                            "padding": [[0, 2], [1, 0]]}, (2, 7, 6), True, id="conv_per_side"),
    pytest.param("Conv2D", {"out_channels": 3, "kernel_size": [3, 4], "stride": [2, 3],
                            "padding": "same", "padding_mode": "reflect"}, (2, 7, 8), True,
                 id="conv_reflect_same_strided"),
    pytest.param("Conv2D", {"out_channels": 3, "kernel_size": 3,
                            "padding": ((3, 0), (2, 1)), "padding_mode": "circular"},
                 (2, 4, 5), True, id="conv_circular_per_side"),
    pytest.param("ConvTranspose2D", {"out_channels": 5, "kernel_size": 3}, (3, 6, 5), True,
                 id="convt"),
    pytest.param("ConvTranspose2D", {"out_channels": 4, "kernel_size": [3, 2], "stride": 2,
                                     "padding": 1, "output_padding": 1, "groups": 2},
                 (2, 4, 3), True, id="convt_example"),
    pytest.param("ConvTranspose2D", {"out_channels": 3, "kernel_size": 4, "stride": [2, 3],
                                     "padding": [1, 2], "output_padding": [0, 2],
                                     "dilation": [1, 2], "bias": False}, (2, 5, 4), True,
                 id="convt_strided_dilated_nobias"),
    pytest.param("ConvTranspose2D", {"out_channels": 32, "kernel_size": 3, "padding": 1,
                                     "dilation": 2, "output_padding": 1}, (16, 5, 6), True,
                 id="convt_wide_dilated"),
    pytest.param("MaxPool2D", {"kernel_size": 2}, (3, 8, 8), True, id="maxpool"),
    pytest.param("MaxPool2D", {"kernel_size": 3, "stride": 2, "padding": 1,
                               "ceil_mode": True}, (2, 7, 6), True, id="maxpool_ceil"),
    pytest.param("MaxPool2D", {"kernel_size": 2, "stride": 1, "dilation": 2},
                 (2, 6, 7), True, id="maxpool_dilated"),
    pytest.param("MaxPool2D", {"kernel_size": 3, "stride": 2, "padding": [[0, 1], [1, 0]]},
                 (2, 7, 6), True, id="maxpool_per_side"),
    pytest.param("MaxPool2D", {"kernel_size": [3, 2], "stride": 2, "padding": "same"},
                 (2, 7, 5), True, id="maxpool_same_strided"),
    pytest.param("AvgPool2D", {"kernel_size": 2}, (3, 8, 8), True, id="avgpool"),
    pytest.param("AvgPool2D", {"kernel_size": 3, "stride": 2, "padding": ((1, 0), (0, 1))},
                 (2, 7, 8), True, id="avgpool_per_side"),
    pytest.param("AvgPool2D", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                               "count_include_pad": False}, (2, 8, 7), True,
                 id="avgpool_exclude_pad"),
    pytest.param("AvgPool2D", {"kernel_size": 3, "stride": 2, "padding": 1},
                 (2, 8, 7), True, id="avgpool_include_pad"),
    pytest.param("AvgPool2D", {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                               "count_include_pad": False, "divisor_override": 2}, (2, 8, 7),
                 True, id="avgpool_divisor"),
    pytest.param("AvgPool2D", {"kernel_size": 2, "divisor_override": -3}, (3, 8, 8), True,
                 id="avgpool_2x2_negative_divisor"),
    pytest.param("GlobalAvgPool2D", {}, (4, 5, 3), True, id="global_avg"),
    pytest.param("Flatten", {}, (3, 4, 5), True, id="flatten"),
    pytest.param("Dense", {"out_features": 7}, (12,), True, id="dense"),
    pytest.param("Dense", {"out_features": 3, "bias": False}, (2, 4, 6), True,
                 id="dense_last_axis_nobias"),
    pytest.param("ReLU", {}, (3, 4, 5), True, id="relu"),
    pytest.param("LeakyReLU", {}, (3, 4, 5), True, id="leakyrelu"),
    pytest.param("LeakyReLU", {"negative_slope": 0.3}, (6,), True, id="leakyrelu_03"),
    pytest.param("Sigmoid", {}, (3, 4, 5), True, id="sigmoid"),
    pytest.param("Tanh", {}, (3, 4, 5), True, id="tanh"),
    pytest.param("Dropout", {"p": 0.4}, (3, 4, 5), False, id="dropout_eval"),
    pytest.param("BatchNorm2D", {}, (3, 4, 5), True, id="batchnorm_train"),
    pytest.param("BatchNorm2D", {"momentum": 0.3, "eps": 1e-3}, (2, 3, 3), True,
                 id="batchnorm_train_custom"),
    pytest.param("BatchNorm1D", {}, (7,), True, id="batchnorm1d_train"),
    pytest.param("BatchNorm1D", {"momentum": 0.3, "eps": 1e-3}, (3, 5), True,
                 id="batchnorm1d_channels_length"),
    pytest.param("BatchNorm1D", {}, (4,), False, id="batchnorm1d_eval"),
    pytest.param("Identity", {}, (3, 4, 5), True, id="identity"),
    pytest.param("Add", {}, [(2, 3, 4), (2, 3, 4)], True, id="add_two"),
    pytest.param("Add", {}, [(5,), (5,), (5,)], True, id="add_three"),
    pytest.param("Concat", {}, [(2, 3, 4), (3, 3, 4)], True, id="concat_channels"),
    pytest.param("Concat", {"dim": -1}, [(2, 3, 1), (2, 3, 4), (2, 3, 2)], True,
                 id="concat_last_axis"),
    pytest.param("Concat", {"dim": 2}, [(2, 3, 4), (2, 1, 4)], True, id="concat_rows"),
]


def compare_with_torch(torch, layer, module, x, dy, training, assert_close, what=""):
    """One forward and backward of a cynet layer and a torch module holding cynet's
    parameters; outputs, input gradients and parameter gradients must agree."""
    named = dict(module.named_parameters())
    assert set(named) == set(layer.params), f"{what}parameter names"
    with torch.no_grad():
        for name, value in layer.params.items():
            assert named[name].shape == value.shape, f"{what}{name} shape"
            named[name].copy_(torch.from_numpy(value.copy()))
            named[name].grad = None
    module.train(training)
    xs = as_list(layer, x)
    txs = [torch.from_numpy(a.copy()).requires_grad_(True) for a in xs]
    with warnings.catch_warnings():
        # torch notes that "same" with an even kernel pads a copy: expected here
        warnings.simplefilter("ignore", UserWarning)
        ty = module(*txs)
    copies = [a.copy() for a in xs]
    y = layer.forward(copies if layer.merges else copies[0], training=training)
    assert_close(y, ty.detach().numpy(), np.float32, what=f"{what}forward")
    ty.backward(torch.from_numpy(dy.copy()))
    gxs = as_list(layer, layer.backward(dy.copy()))
    assert len(gxs) == len(txs), f"{what}one input gradient per input"
    for k, (gx, tx) in enumerate(zip(gxs, txs)):
        assert_close(gx, tx.grad.numpy(), np.float32, what=f"{what}input grad {k}")
    for name in layer.params:
        assert_close(layer.grads[name], named[name].grad.numpy(), np.float32,
                     what=f"{what}grad of {name}")
    for name, value in layer.buffers.items():
        assert_close(value, getattr(module, name).numpy(), np.float32, what=f"{what}{name}")


@pytest.mark.parametrize("type_name, config, input_shape, training", TORCH_CASES)
def test_layer_matches_torch(torch, rng, assert_close, type_name, config, input_shape,
                             training):
    layer = make_layer(type_name, config, input_shape, seed=3)
    module = torch_module(torch.nn, type_name, config, input_shape)
    x = batch(rng, layer, 3, input_shape)
    out = layer.output_shape
    dy = rng.standard_normal((3,) + tuple(out)).astype(np.float32)
    compare_with_torch(torch, layer, module, x, dy, training, assert_close)


def test_every_builtin_has_a_torch_case():
    assert {p.values[0] for p in TORCH_CASES} == set(BUILTINS)


def test_batchnorm_matches_torch_over_steps_then_eval(torch, rng, assert_close):
    shape = (4, 5, 3)
    layer = make_layer("BatchNorm2D", {"momentum": 0.2}, shape)
    module = torch_module(torch.nn, "BatchNorm2D", {"momentum": 0.2}, shape)
    # non-trivial affine parameters, so that they matter in every comparison
    layer.params["weight"][...] = rng.uniform(0.5, 2.0, 4)
    layer.params["bias"][...] = rng.standard_normal(4)
    for step in range(4):
        x = (rng.standard_normal((6,) + shape) * rng.uniform(0.5, 3, (1, 4, 1, 1))
             + rng.uniform(-2, 2, (1, 4, 1, 1))).astype(np.float32)
        dy = rng.standard_normal(x.shape).astype(np.float32)
        compare_with_torch(torch, layer, module, x, dy, True, assert_close,
                           what=f"train step {step}: ")
        # a training step on the affine parameters (copied into torch at the next step)
        for name in ("weight", "bias"):
            layer.params[name] -= 0.1 * layer.grads[name]
    assert not np.allclose(layer.buffers["running_var"], 1.0)  # the stats did move
    x = rng.standard_normal((5,) + shape).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    compare_with_torch(torch, layer, module, x, dy, False, assert_close, what="eval: ")


# --------------------------------------------------------------------------- initialisation

INIT_CASES = [
    pytest.param("Conv2D", {"out_channels": 64, "kernel_size": 3}, (8, 6, 6), 8 * 9, id="conv"),
    pytest.param("Conv2D", {"out_channels": 48, "kernel_size": [5, 2], "groups": 2},
                 (6, 8, 8), 3 * 10, id="conv_grouped"),
    pytest.param("Conv2D", {"out_channels": 192, "kernel_size": 3, "groups": 32},
                 (32, 5, 5), 9, id="conv_depthwise"),
    pytest.param("Dense", {"out_features": 100}, (40,), 40, id="dense"),
    pytest.param("Dense", {"out_features": 50}, (3, 2, 90), 90, id="dense_last_axis"),
    # a transposed weight is (in, out // groups, kh, kw): PyTorch's fan-in is its axis 1
    # times the taps, out_channels // groups * kh * kw (not the input channels')
    pytest.param("ConvTranspose2D", {"out_channels": 64, "kernel_size": 3}, (8, 6, 6), 64 * 9,
                 id="convt"),
    pytest.param("ConvTranspose2D", {"out_channels": 48, "kernel_size": [5, 2], "groups": 2},
                 (6, 8, 8), 24 * 10, id="convt_grouped"),
]

TRANSPOSED_INIT_CASES = [p for p in INIT_CASES if p.values[0] == "ConvTranspose2D"]


@pytest.mark.parametrize("type_name, config, input_shape, fan_in", TRANSPOSED_INIT_CASES)
def test_transposed_fan_in_is_torchs(torch, type_name, config, input_shape, fan_in):
    # the fan-in above is the one torch computes for its ConvTranspose2d's weight
    module = torch_module(torch.nn, type_name, config, input_shape)
    layer = make_layer(type_name, config, input_shape)
    assert tuple(module.weight.shape) == layer.params["weight"].shape
    assert torch.nn.init._calculate_fan_in_and_fan_out(module.weight)[0] == fan_in


@pytest.mark.parametrize("type_name, config, input_shape, fan_in", INIT_CASES)
def test_init_is_pytorch_default(type_name, config, input_shape, fan_in):
    layer = make_layer(type_name, config, input_shape, seed=11)
    bound = 1 / math.sqrt(fan_in)
    assert set(layer.params) == {"weight", "bias"}
    for name, p in layer.params.items():
        assert p.dtype == np.float32, name
        assert np.abs(p).max() <= bound, name
        assert layer.grads[name].shape == p.shape, name
    w = layer.params["weight"].astype(np.float64)
    assert w.size >= 1000
    # U(-b, b): extremes near the bounds, mean 0, variance b^2 / 3
    assert w.max() > 0.97 * bound and w.min() < -0.97 * bound
    assert abs(w.mean()) < 5 * bound / math.sqrt(3 * w.size)
    assert w.var() == pytest.approx(bound**2 / 3, rel=0.1)
    b = layer.params["bias"]
    assert b.shape == (config.get("out_channels") or config["out_features"],)
    assert np.unique(b).size == b.size  # random, not a constant


@pytest.mark.parametrize("type_name, config, input_shape, fan_in", INIT_CASES[:1] + INIT_CASES[3:4])
def test_init_is_reproducible_from_the_layer_rng(type_name, config, input_shape, fan_in):
    a = make_layer(type_name, config, input_shape, seed=5)
    b = make_layer(type_name, config, input_shape, seed=5)
    c = make_layer(type_name, config, input_shape, seed=6)
    for name in a.params:
        assert np.array_equal(a.params[name], b.params[name]), name
        assert not np.array_equal(a.params[name], c.params[name]), name


def test_batchnorm_init_is_pytorch_default():
    layer = make_layer("BatchNorm2D", {}, (5, 3, 3))
    expected = {"weight": 1.0, "bias": 0.0, "running_mean": 0.0, "running_var": 1.0}
    arrays = {**layer.params, **layer.buffers}
    assert set(layer.params) == {"weight", "bias"}
    assert set(layer.buffers) == {"running_mean", "running_var"}
    for name, value in expected.items():
        assert arrays[name].dtype == np.float32 and arrays[name].shape == (5,), name
        assert np.all(arrays[name] == value), name


# --------------------------------------------------------------------------- config

CONFIG_CASES = [pytest.param(t, example_of(t)[0], id=f"{t}_example") for t in BUILTINS] + [
    pytest.param("Conv2D", {"out_channels": 3, "kernel_size": 3, "padding": "same",
                            "dilation": [2, 1], "bias": False}, id="conv_same"),
    pytest.param("Conv2D", {"out_channels": 2, "kernel_size": 5}, id="conv_minimal"),
    pytest.param("Conv2D", {"out_channels": 2, "kernel_size": 3, "padding": [[0, 2], [1, 0]],
                            "padding_mode": "reflect"}, id="conv_per_side_reflect"),
    pytest.param("Conv2D", {"out_channels": 2, "kernel_size": 3, "padding": ((1, 1), (2, 0)),
                            "padding_mode": "circular"}, id="conv_per_side_tuples"),
    pytest.param("MaxPool2D", {"kernel_size": 3, "stride": 2, "padding": "same"},
                 id="maxpool_same"),
    pytest.param("AvgPool2D", {"kernel_size": 2, "padding": [[0, 1], [1, 0]]},
                 id="avgpool_per_side"),
    pytest.param("ConvTranspose2D", {"out_channels": 3, "kernel_size": [3, 2], "stride": [2, 1],
                                     "padding": 1, "output_padding": [1, 0], "dilation": 1,
                                     "groups": 3, "bias": False}, id="convt_full"),
    pytest.param("ConvTranspose2D", {"out_channels": 2, "kernel_size": 4}, id="convt_minimal"),
    pytest.param("MaxPool2D", {"kernel_size": [2, 3], "stride": 1, "ceil_mode": True},
                 id="maxpool"),
    pytest.param("AvgPool2D", {"kernel_size": 2, "count_include_pad": False}, id="avgpool"),
    pytest.param("AvgPool2D", {"kernel_size": 3, "divisor_override": 5}, id="avgpool_divisor"),
    pytest.param("Dense", {"out_features": 10, "bias": False}, id="dense"),
    pytest.param("Dropout", {}, id="dropout_default"),
    pytest.param("BatchNorm2D", {"momentum": 0.01, "eps": 0.001}, id="batchnorm"),
]


def _jsonish(v):
    return json.loads(json.dumps(v))


@pytest.mark.parametrize("type_name, config", CONFIG_CASES)
def test_get_config_round_trips(type_name, config):
    cls = registry.get(type_name)
    cfg = cls(**copy.deepcopy(config)).get_config()
    assert isinstance(cfg, dict)
    text = json.dumps(cfg)  # JSON-serialisable as it is
    for key, value in config.items():  # what was given is reported back
        assert cfg[key] == _jsonish(value), key
    assert cls(**cfg).get_config() == cfg
    assert cls(**json.loads(text)).get_config() == cfg


DEFAULT_CONFIGS = [
    ("Conv2D", {"out_channels": 2, "kernel_size": 3},
     {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True,
      "padding_mode": "zeros"}),
    ("ConvTranspose2D", {"out_channels": 2, "kernel_size": 3},
     {"stride": 1, "padding": 0, "output_padding": 0, "dilation": 1, "groups": 1,
      "bias": True}),
    ("MaxPool2D", {"kernel_size": 2},
     {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False}),
    ("AvgPool2D", {"kernel_size": 2},
     {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True,
      "divisor_override": None}),
    ("Dense", {"out_features": 4}, {"bias": True}),
    ("LeakyReLU", {}, {"negative_slope": 0.01}),
    ("Dropout", {}, {"p": 0.5}),
    ("BatchNorm2D", {}, {"momentum": 0.1, "eps": 1e-5}),
    ("ReLU", {}, {}),
    ("Flatten", {}, {}),
    ("GlobalAvgPool2D", {}, {}),
]


@pytest.mark.parametrize("type_name, config, defaults", DEFAULT_CONFIGS,
                         ids=[c[0] for c in DEFAULT_CONFIGS])
def test_get_config_shows_pytorch_defaults(type_name, config, defaults):
    cfg = registry.get(type_name)(**config).get_config()
    assert cfg == {**config, **defaults}


@pytest.mark.parametrize("type_name", BUILTINS)
def test_unknown_constructor_key_is_a_type_error_naming_it(type_name):
    config, _ = example_of(type_name)
    with pytest.raises(TypeError, match="kernal_sise"):
        registry.get(type_name)(**config, kernal_sise=3)


BAD_VALUES = [
    ("Conv2D", {"out_channels": 4, "kernel_size": 0}, ValueError, "kernel_size"),
    ("Conv2D", {"out_channels": 4, "kernel_size": [3, 0]}, ValueError, "kernel_size"),
    ("Conv2D", {"out_channels": 4, "kernel_size": 3.0}, TypeError, "kernel_size"),
    ("Conv2D", {"out_channels": 0, "kernel_size": 3}, ValueError, "out_channels"),
    ("Conv2D", {"out_channels": 4, "kernel_size": 3, "stride": 0}, ValueError, "stride"),
    ("Conv2D", {"out_channels": 4, "kernel_size": 3, "padding": -1}, ValueError, "padding"),
    ("Conv2D", {"out_channels": 4, "kernel_size": 3, "padding": "full"}, (ValueError, TypeError),
     "padding"),
    ("Conv2D", {"out_channels": 4, "kernel_size": 3, "dilation": 0}, ValueError, "dilation"),
    ("Conv2D", {"out_channels": 4, "kernel_size": 3, "groups": 3}, ValueError, "groups"),
    ("Conv2D", {"out_channels": 4, "kernel_size": 3, "bias": "yes"}, TypeError, "bias"),
    ("ConvTranspose2D", {"out_channels": 0, "kernel_size": 3}, ValueError, "out_channels"),
    ("ConvTranspose2D", {"out_channels": 4, "kernel_size": [3, 0]}, ValueError, "kernel_size"),
    ("ConvTranspose2D", {"out_channels": 4, "kernel_size": 3, "stride": 0}, ValueError,
     "stride"),
    ("ConvTranspose2D", {"out_channels": 4, "kernel_size": 3, "padding": -1}, ValueError,
     "padding"),
    ("ConvTranspose2D", {"out_channels": 4, "kernel_size": 3, "padding": "same"}, TypeError,
     "padding"),
    ("ConvTranspose2D", {"out_channels": 4, "kernel_size": 3, "output_padding": -1},
     ValueError, "output_padding"),
    ("ConvTranspose2D", {"out_channels": 4, "kernel_size": 3, "output_padding": 1},
     ValueError, r"output_padding.*\(1, 1\)"),
    ("ConvTranspose2D", {"out_channels": 4, "kernel_size": 3, "stride": 2,
                         "output_padding": [1, 2]}, ValueError, r"output_padding.*\(1, 2\)"),
    ("ConvTranspose2D", {"out_channels": 4, "kernel_size": 3, "output_padding": 1.0},
     TypeError, "output_padding"),
    ("ConvTranspose2D", {"out_channels": 4, "kernel_size": 3, "dilation": 0}, ValueError,
     "dilation"),
    ("ConvTranspose2D", {"out_channels": 4, "kernel_size": 3, "groups": 3}, ValueError,
     "groups"),
    ("ConvTranspose2D", {"out_channels": 4, "kernel_size": 3, "bias": 1}, TypeError, "bias"),
    ("MaxPool2D", {"kernel_size": 0}, ValueError, "kernel_size"),
    ("MaxPool2D", {"kernel_size": 2, "stride": 0}, ValueError, "stride"),
    ("MaxPool2D", {"kernel_size": 2, "ceil_mode": 1}, TypeError, "ceil_mode"),
    ("AvgPool2D", {"kernel_size": 0}, ValueError, "kernel_size"),
    ("AvgPool2D", {"kernel_size": 2, "count_include_pad": "no"}, TypeError, "count_include_pad"),
    ("AvgPool2D", {"kernel_size": 2, "divisor_override": 0}, ValueError, "divisor_override"),
    ("AvgPool2D", {"kernel_size": 2, "divisor_override": "2"}, TypeError, "divisor_override"),
    ("AvgPool2D", {"kernel_size": 2, "divisor_override": True}, TypeError, "divisor_override"),
    ("AvgPool2D", {"kernel_size": 2, "divisor_override": 2.0}, TypeError, "divisor_override"),
    ("Dense", {"out_features": 0}, ValueError, "out_features"),
    ("Dense", {"out_features": "10"}, TypeError, "out_features"),
    ("Dropout", {"p": 1.5}, ValueError, "p"),
    ("Dropout", {"p": -0.1}, ValueError, "p"),
    ("Dropout", {"p": "0.5"}, TypeError, "p"),
    ("LeakyReLU", {"negative_slope": "a"}, TypeError, "negative_slope"),
    ("LeakyReLU", {"negative_slope": None}, TypeError, "negative_slope"),
    ("BatchNorm2D", {"momentum": 2}, ValueError, "momentum"),
    ("BatchNorm2D", {"eps": 0}, ValueError, "eps"),
    ("BatchNorm2D", {"eps": "small"}, TypeError, "eps"),
]


@pytest.mark.parametrize("type_name, config, error, word", BAD_VALUES,
                         ids=[f"{c[0]}-{json.dumps(c[1])}" for c in BAD_VALUES])
def test_bad_constructor_value(type_name, config, error, word):
    with pytest.raises(error, match=word):
        registry.get(type_name)(**config)


BAD_INPUT_SHAPES = [  # (type, config, per-sample input shape, what the error says)
    ("Conv2D", {"out_channels": 2, "kernel_size": 5}, (1, 4, 4),
     r"kernel 5x5 .* larger than the padded input 4x4"),
    ("Conv2D", {"out_channels": 2, "kernel_size": 3}, (12,),
     r"expects per-sample input of shape \(channels, height, width\), got \(12,\)"),
    ("Conv2D", {"out_channels": 2, "kernel_size": 3, "groups": 2}, (3, 6, 6),
     "groups=2 must divide the 3 input channels"),
    ("ConvTranspose2D", {"out_channels": 2, "kernel_size": 3, "padding": 3}, (1, 4, 4),
     r"padding \(3, 3\) removes more than the whole output.* would give 0x0"),
    ("ConvTranspose2D", {"out_channels": 2, "kernel_size": 3, "groups": 2}, (3, 6, 6),
     "groups=2 must divide the 3 input channels"),
    ("ConvTranspose2D", {"out_channels": 2, "kernel_size": 3}, (4, 5),
     r"expects per-sample input of shape \(channels, height, width\), got \(4, 5\)"),
    ("MaxPool2D", {"kernel_size": 5}, (1, 4, 4), r"kernel_size \(5, 5\) .* larger than"),
    # a window holding no input element: -inf in cynet.functional (as torch), not in a model
    ("MaxPool2D", {"kernel_size": 2, "stride": 1, "padding": 1, "dilation": 3}, (1, 2, 3),
     "without any input element"),
    ("AvgPool2D", {"kernel_size": 2, "padding": 2}, (1, 6, 6),  # padding > kernel / 2
     "must be at most half of kernel_size"),
    ("BatchNorm2D", {}, (10,), r"got \(10,\)"),
    ("GlobalAvgPool2D", {}, (4, 4), r"got \(4, 4\)"),
]


def test_conv_same_padding_at_a_stride_gives_ceil_of_the_size_over_the_stride():
    for size, stride in [(6, 2), (7, 2), (7, 3), (1, 4)]:
        layer = make_layer("Conv2D", {"out_channels": 2, "kernel_size": 3, "stride": stride,
                                      "padding": "same"}, (1, size, size + 1))
        assert layer.output_shape == (2, -(-size // stride), -(-(size + 1) // stride))


@pytest.mark.parametrize("type_name, config, input_shape, message", BAD_INPUT_SHAPES,
                         ids=[f"{c[0]}-{c[2]}" for c in BAD_INPUT_SHAPES])
def test_build_rejects_shapes_that_do_not_fit(type_name, config, input_shape, message):
    with pytest.raises(ValueError, match=message):
        make_layer(type_name, config, input_shape)


# --------------------------------------------------------------------------- semantics

@pytest.mark.parametrize("type_name, config, input_shape", [
    ("Conv2D", {"out_channels": 4, "kernel_size": 3, "padding": 1}, (2, 6, 5)),
    ("Conv2D", {"out_channels": 4, "kernel_size": 1}, (2, 6, 5)),
    ("ConvTranspose2D", {"out_channels": 4, "kernel_size": 3, "stride": 2}, (2, 6, 5)),
    ("ConvTranspose2D", {"out_channels": 4, "kernel_size": 1}, (2, 6, 5)),
    ("Dense", {"out_features": 3}, (7,)),
], ids=["conv", "conv_pointwise", "convt", "convt_pointwise", "dense"])
def test_first_layer_backward_returns_none_but_fills_grads(rng, assert_close, type_name,
                                                           config, input_shape):
    first = make_layer(type_name, config, input_shape, seed=1, input_grad=False)
    inner = make_layer(type_name, config, input_shape, seed=1, input_grad=True)
    x = rng.standard_normal((3,) + input_shape).astype(np.float32)
    y = first.forward(x)
    assert np.array_equal(y, inner.forward(x))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    assert first.backward(dy) is None
    assert inner.backward(dy) is not None
    for name in inner.params:
        assert np.any(first.grads[name] != 0), name
        assert_close(first.grads[name], inner.grads[name], what=name)


def dropout_layer(p, shape, seed=0):
    return make_layer("Dropout", {"p": p}, shape, seed=seed)


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9, 1.0])
def test_dropout_eval_is_identity(rng, p):
    layer = dropout_layer(p, (30,))
    x = rng.standard_normal((40, 30)).astype(np.float32)
    y = layer.forward(x.copy(), training=False)
    assert np.array_equal(y, x)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    assert np.array_equal(layer.backward(dy.copy()), dy)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_train_zeroes_p_and_scales_the_rest(rng, p):
    layer = dropout_layer(p, (50, 40))
    # no zeros in x, so every zero of y is a dropped element
    x = (rng.uniform(0.5, 2.0, (50, 50, 40)) * rng.choice([-1, 1], (50, 50, 40))).astype(np.float32)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32 and y.shape == x.shape
    dropped = y == 0
    n = x.size
    assert abs(dropped.mean() - p) < 4 * math.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(y[~dropped], x[~dropped] / (1 - p), rtol=1e-6)
    # the same mask in backward
    dy = rng.standard_normal(x.shape).astype(np.float32)
    gx = layer.backward(dy)
    assert np.all(gx[dropped] == 0)
    np.testing.assert_allclose(gx[~dropped], dy[~dropped] / (1 - p), rtol=1e-6)
    # a fresh mask at every call
    assert not np.array_equal(layer.forward(x, training=True) == 0, dropped)


def test_dropout_edge_probabilities(rng):
    x = rng.uniform(0.5, 1.0, (8, 20)).astype(np.float32)
    assert np.array_equal(dropout_layer(0.0, (20,)).forward(x, training=True), x)
    y = dropout_layer(1.0, (20,)).forward(x, training=True)
    assert np.all(y == 0) and np.all(np.isfinite(y))


def test_dropout_mask_follows_the_layer_rng(rng):
    x = np.ones((10, 100), np.float32)
    a = dropout_layer(0.5, (100,), seed=4).forward(x)
    b = dropout_layer(0.5, (100,), seed=4).forward(x)
    c = dropout_layer(0.5, (100,), seed=5).forward(x)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def trained_batchnorm(rng, shape=(3, 4, 4), steps=5):
    layer = make_layer("BatchNorm2D", {"momentum": 0.5}, shape)
    layer.params["weight"][...] = rng.uniform(0.5, 2, shape[0])
    layer.params["bias"][...] = rng.standard_normal(shape[0])
    for _ in range(steps):
        x = rng.standard_normal((8,) + shape).astype(np.float32) * 3 + 1
        layer.forward(x, training=True)
    return layer


def test_batchnorm_training_normalises_with_batch_stats(rng, assert_close):
    layer = make_layer("BatchNorm2D", {}, (3, 4, 4))
    x = (rng.standard_normal((6, 3, 4, 4)) * [[[[1.0]], [[3.0]], [[0.2]]]] + 5).astype(np.float32)
    y = layer.forward(x, training=True)
    # weight 1, bias 0: each channel has mean 0 and (biased) variance 1 over N, H, W
    assert_close(y.mean(axis=(0, 2, 3)), np.zeros(3, np.float32), what="mean")
    x64 = x.astype(np.float64)
    var_biased = x64.var(axis=(0, 2, 3))
    expected = (x64 - x64.mean(axis=(0, 2, 3))[:, None, None]) / np.sqrt(var_biased + 1e-5)[:, None, None]
    assert_close(y, expected.astype(np.float32), what="normalised")
    # running stats: momentum 0.1 from (0, 1), with the unbiased variance
    count = 6 * 4 * 4
    assert_close(layer.buffers["running_mean"], (0.1 * x64.mean(axis=(0, 2, 3))).astype(np.float32))
    assert_close(layer.buffers["running_var"],
                 (0.9 + 0.1 * var_biased * count / (count - 1)).astype(np.float32))


def test_batchnorm_eval_uses_running_stats_and_leaves_them(rng, assert_close):
    layer = trained_batchnorm(rng)
    stats = {k: v.copy() for k, v in layer.buffers.items()}
    x = rng.standard_normal((5, 3, 4, 4)).astype(np.float32)
    y = layer.forward(x, training=False)
    for k, v in stats.items():
        assert np.array_equal(layer.buffers[k], v), k
    rm, rv = (stats[k].astype(np.float64)[:, None, None] for k in ("running_mean", "running_var"))
    w, b = (layer.params[k].astype(np.float64)[:, None, None] for k in ("weight", "bias"))
    expected = (x - rm) / np.sqrt(rv + 1e-5) * w + b
    assert_close(y, expected.astype(np.float32))


def test_batchnorm_eval_sample_is_independent_of_the_batch(rng, assert_close):
    layer = trained_batchnorm(rng)
    batch = rng.standard_normal((7, 3, 4, 4)).astype(np.float32) * 2
    whole = layer.forward(batch, training=False)
    for i in range(len(batch)):
        alone = layer.forward(batch[i:i + 1], training=False)
        assert_close(alone, whole[i:i + 1], what=f"sample {i}")
    other = batch.copy()
    other[1:] = rng.standard_normal(other[1:].shape) * 10 - 4  # change the rest of the batch
    assert_close(layer.forward(other, training=False)[:1], whole[:1], what="sample 0 in another batch")


def test_batchnorm_training_rejects_one_value_per_channel(rng):
    layer = make_layer("BatchNorm2D", {}, (2, 1, 1))
    with pytest.raises(ValueError, match="more than one value per channel"):
        layer.forward(rng.standard_normal((1, 2, 1, 1)).astype(np.float32), training=True)


@pytest.mark.parametrize("type_name", BUILTINS)
def test_forward_keeps_float32(rng, type_name):
    config, shape = example_of(type_name)
    layer = make_layer(type_name, config, shape)
    x = batch(rng, layer, 2, shape)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32 and y.shape == (2,) + tuple(layer.output_shape)
    for g, xk in zip(as_list(layer, layer.backward(np.ones_like(y))), as_list(layer, x)):
        assert g.dtype == np.float32 and g.shape == xk.shape
    for name, grad in layer.grads.items():
        assert grad.dtype == np.float32 and grad.shape == layer.params[name].shape, name


def test_layer_is_exported():
    assert cynet.Layer is Layer
    assert registry.get("Dense") is Dense and registry.get("Dropout") is Dropout
    assert registry.get("BatchNorm2D") is BatchNorm2D


@pytest.mark.parametrize("type_name, config, input_shape, expected", [
    ("Conv2D", {"out_channels": 4, "kernel_size": 3, "padding": 1, "groups": 2}, (2, 5, 6),
     4 * 5 * 6 * (1 * 3 * 3)),
    ("Dense", {"out_features": 7}, (3, 5), 3 * 7 * 5),
    ("ConvTranspose2D", {"out_channels": 6, "kernel_size": (2, 3), "stride": 2, "groups": 3},
     (3, 4, 5), 3 * 4 * 5 * (2 * 2 * 3)),
    ("ReLU", {}, (3, 4, 5), 0),
])
def test_multiply_adds_count_the_products_of_one_sample(type_name, config, input_shape,
                                                         expected):
    assert make_layer(type_name, config, input_shape).multiply_adds() == expected
