"""The ``torch.nn`` twin of a cynet model definition, for the benchmarks and the tests.

    from benchmarks.torch_twin import torch_twin, twin_of

    net, flops = torch_twin(doc)          # a fresh twin of a definition (torch's own init)
    net, opt = twin_of(model)             # the twin of a built cynet Model: its weights,
                                          # buffers, optimizer and optimizer state copied

The twin is a ``GraphNet``: one module per cynet layer, in the same order and wired the
same way (a layer's ``"inputs"``, by default the layer before), so cynet's parameter
``{layer name}.{param}`` (``Model.parameters()``; ``layers.{i}.{param}`` for an unnamed
layer) is ``net[i].{param}``.
The translators know cynet's built-in layer types, the cross-entropy loss, the
``sgd``/``adam``/``adamw`` optimizers and the ``constant``/``step``/``cosine`` schedules,
and refuse anything else by name rather than build a network that is not a twin.

Only cynet's public API is used (``Model.parameters``, ``Model.buffers``,
``Model.to_dict``, ``Model.optimizer.state_dict``), read defensively where an older
cynet may lack it.
"""
from __future__ import annotations

import numpy as np
import torch

nn = torch.nn

# --------------------------------------------------------------------------- translators
def _pair(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _take(spec, where, allowed):
    """``spec``'s keys (besides "type", "name" and "inputs"), checked against what the
    translator knows."""
    opts = {k: v for k, v in spec.items() if k not in ("type", "name", "inputs")}
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: the torch translator does not know option(s) "
                         f"{', '.join(unknown)} (known: {', '.join(allowed) or 'none'})")
    return opts


def _same_sides(size, kernel, stride, dilation):
    """((top, bottom), (left, right)) of "same" padding at any stride, TensorFlow's rule
    (cynet's): ceil(size / stride) outputs, the odd row/column at the bottom/right."""
    sides = []
    for n, k, s, d in zip(size, kernel, stride, dilation):
        total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
        sides.append((total // 2, total - total // 2))
    return tuple(sides)


def _explicit_padding(o, shape, default_stride, native_same=True):
    """The padding of a layer's options ``o`` as (left, right, top, bottom) for
    ``F.pad`` where torch's layers cannot take it (per side; "same" at a stride, or
    anywhere without ``native_same``), else None."""
    padding = o.get("padding", 0)
    two = lambda v: tuple(v) if isinstance(v, (list, tuple)) else (v, v)  # noqa: E731
    kernel = two(o["kernel_size"])
    stride = two(o.get("stride") or default_stride or kernel)
    if isinstance(padding, (list, tuple)) and isinstance(padding[0], (list, tuple)):
        (pt, pb), (pl, pr) = padding
    elif padding == "same" and (stride != (1, 1) or not native_same):
        (pt, pb), (pl, pr) = _same_sides(shape[1:], kernel, stride, two(o.get("dilation", 1)))
    else:
        return None
    return (pl, pr, pt, pb)


class _PaddedConv2d(nn.Conv2d):
    """``nn.Conv2d`` of an explicitly padded input (same parameter names)."""

    def __init__(self, pads, pad_mode, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pads, self.pad_mode = pads, pad_mode

    def forward(self, x):
        return super().forward(torch.nn.functional.pad(x, self.pads, mode=self.pad_mode))


class _PaddedPool(nn.Module):
    """A pooling module of an input padded with ``value`` (-inf for max, 0 for average)."""

    def __init__(self, pads, value, pool):
        super().__init__()
        self.pads, self.value, self.pool = pads, value, pool

    def forward(self, x):
        return self.pool(torch.nn.functional.pad(x, self.pads, value=self.value))


def _conv2d(spec, where, shape):
    o = _take(spec, where, ("out_channels", "kernel_size", "stride", "padding", "dilation",
                            "groups", "bias", "padding_mode"))
    if len(shape) != 3:
        raise ValueError(f"{where}: Conv2D needs a (channels, height, width) input, got {shape}")
    args = (shape[0], o["out_channels"], _pair(o["kernel_size"]))
    kwargs = dict(stride=_pair(o.get("stride", 1)), dilation=_pair(o.get("dilation", 1)),
                  groups=o.get("groups", 1), bias=o.get("bias", True))
    mode = o.get("padding_mode", "zeros")
    pads = _explicit_padding(o, shape, 1)
    if pads is not None:
        return _PaddedConv2d(pads, {"zeros": "constant"}.get(mode, mode), *args, padding=0,
                             **kwargs)
    return nn.Conv2d(*args, padding=_pair(o.get("padding", 0)), padding_mode=mode, **kwargs)


def _conv_transpose2d(spec, where, shape):
    o = _take(spec, where, ("out_channels", "kernel_size", "stride", "padding",
                            "output_padding", "dilation", "groups", "bias"))
    if len(shape) != 3:
        raise ValueError(f"{where}: ConvTranspose2D needs a (channels, height, width) input, "
                         f"got {shape}")
    return nn.ConvTranspose2d(shape[0], o["out_channels"], _pair(o["kernel_size"]),
                              stride=_pair(o.get("stride", 1)),
                              padding=_pair(o.get("padding", 0)),
                              output_padding=_pair(o.get("output_padding", 0)),
                              groups=o.get("groups", 1), bias=o.get("bias", True),
                              dilation=_pair(o.get("dilation", 1)))


def _pool(o, where, shape, value, make):
    """``make(padding)``, on an explicitly padded input where torch's pools cannot take
    the padding: possible only where no window reaches past the padding (no ceil_mode)
    and, for an average, where the padding counts (count_include_pad, no divisor)."""
    pads = _explicit_padding(o, shape, None, native_same=False)
    if pads is None:
        padding = o.get("padding", 0)
        return make(0 if padding == "valid" else _pair(padding))
    if o.get("ceil_mode") or (value == 0 and (not o.get("count_include_pad", True)
                                              or o.get("divisor_override") is not None)):
        raise ValueError(f"{where}: the torch translator cannot express padding "
                         f"{o['padding']!r} with ceil_mode, count_include_pad=false or "
                         f"divisor_override (torch's pools pad both sides alike)")
    return _PaddedPool(pads, value, make(0))


def _maxpool2d(spec, where, shape):
    o = _take(spec, where, ("kernel_size", "stride", "padding", "dilation", "ceil_mode"))
    return _pool(o, where, shape, -float("inf"), lambda padding: nn.MaxPool2d(
        _pair(o["kernel_size"]), stride=_pair(o.get("stride")), padding=padding,
        dilation=_pair(o.get("dilation", 1)), ceil_mode=o.get("ceil_mode", False)))


def _avgpool2d(spec, where, shape):
    o = _take(spec, where, ("kernel_size", "stride", "padding", "ceil_mode",
                            "count_include_pad", "divisor_override"))
    return _pool(o, where, shape, 0.0, lambda padding: nn.AvgPool2d(
        _pair(o["kernel_size"]), stride=_pair(o.get("stride")), padding=padding,
        ceil_mode=o.get("ceil_mode", False), count_include_pad=o.get("count_include_pad", True),
        divisor_override=o.get("divisor_override")))


def _dense(spec, where, shape):
    o = _take(spec, where, ("out_features", "bias"))
    if not shape:
        raise ValueError(f"{where}: Dense needs an input with at least one axis")
    return nn.Linear(shape[-1], o["out_features"], bias=o.get("bias", True))


def _batchnorm2d(spec, where, shape):
    o = _take(spec, where, ("momentum", "eps"))
    if len(shape) != 3:
        raise ValueError(f"{where}: BatchNorm2D needs a (channels, height, width) input, "
                         f"got {shape}")
    return nn.BatchNorm2d(shape[0], eps=o.get("eps", 1e-5), momentum=o.get("momentum", 0.1))


def _batchnorm1d(spec, where, shape):
    o = _take(spec, where, ("momentum", "eps"))
    return nn.BatchNorm1d(shape[0], eps=o.get("eps", 1e-5), momentum=o.get("momentum", 0.1))


class _Sum(nn.Module):
    def forward(self, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class _Cat(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, *xs):
        return torch.cat(xs, dim=self.dim)


def _simple(factory, allowed=()):
    def build(spec, where, shape):
        return factory(**_take(spec, where, allowed))
    return build


# cynet layer type -> builder(spec, where, per-sample input shape) -> torch module
TRANSLATORS = {
    "Conv2D": _conv2d,
    "ConvTranspose2D": _conv_transpose2d,
    "MaxPool2D": _maxpool2d,
    "AvgPool2D": _avgpool2d,
    "Dense": _dense,
    "BatchNorm2D": _batchnorm2d,
    "Flatten": _simple(lambda: nn.Flatten()),
    "ReLU": _simple(lambda: nn.ReLU()),
    "LeakyReLU": _simple(lambda negative_slope=0.01: nn.LeakyReLU(negative_slope),
                         ("negative_slope",)),
    "Sigmoid": _simple(lambda: nn.Sigmoid()),
    "Tanh": _simple(lambda: nn.Tanh()),
    "Dropout": _simple(lambda p=0.5: nn.Dropout(p), ("p",)),
    "BatchNorm1D": _batchnorm1d,
    "GlobalAvgPool2D": _simple(lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())),
    "Identity": _simple(lambda: nn.Identity()),
    "Add": _simple(lambda: _Sum()),
    "Concat": _simple(lambda dim=1: _Cat(dim), ("dim",)),
}


class GraphNet(nn.Module):
    """Modules wired like a cynet definition: ``inputs[i]`` are the indices of the
    modules module ``i`` reads (-1: the network's input); ``net[i]`` is module ``i``."""

    def __init__(self, modules, inputs, names):
        super().__init__()
        self.layers = nn.ModuleList(modules)
        self.inputs, self.names = inputs, names

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def index(self, name):
        """The index of the layer called ``name``."""
        return self.names.index(name)

    def forward(self, x):
        outputs = {-1: x}
        for i, (module, refs) in enumerate(zip(self.layers, self.inputs)):
            outputs[i] = module(*[outputs[j] for j in refs])
        return outputs[len(self.layers) - 1]


def _wiring(layers):
    """``(names, inputs)`` of a definition's layers, as cynet reads "name" and "inputs"."""
    names = [spec.get("name", f"layers.{i}") for i, spec in enumerate(layers)]
    inputs = []
    for i, spec in enumerate(layers):
        given = spec.get("inputs")
        if given is None:
            inputs.append((i - 1,))
            continue
        listed = [given] if isinstance(given, str) else list(given)
        inputs.append(tuple(-1 if n == "input" else names.index(n) for n in listed))
    return names, inputs


def torch_twin(doc):
    """``(nn.Sequential, forward FLOPs per sample)`` equivalent to a cynet definition.

    Input channels and features are tracked by running a zero sample through each module
    as it is added. The FLOPs count convolution and dense layers (2 * multiply-adds).
    """
    loss = doc.get("loss", "cross_entropy")
    if loss != "cross_entropy":
        raise ValueError(f"loss: the torch translator supports cross_entropy only, got {loss!r}")
    names, inputs = _wiring(doc["layers"])
    shapes = {-1: tuple(doc["input_shape"])}
    modules, flops = [], 0
    for i, spec in enumerate(doc["layers"]):
        kind = spec.get("type")
        where = f"layers[{i}] ({kind})"
        build = TRANSLATORS.get(kind)
        if build is None:
            raise ValueError(f"{where}: the torch translator does not know layer type "
                             f"{kind!r} (known: {', '.join(TRANSLATORS)})")
        given = [shapes[j] for j in inputs[i]]
        module = build(spec, where, given[0])
        module.eval()  # one sample: BatchNorm must not use batch statistics here
        with torch.no_grad():
            out = module(*[torch.zeros((1, *shape)) for shape in given])
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            flops += 2 * out.numel() * module.in_channels // module.groups * kh * kw
        elif isinstance(module, nn.Linear):
            flops += 2 * out.numel() * module.in_features
        shapes[i] = tuple(out.shape[1:])
        modules.append(module)
    model = GraphNet(modules, inputs, names)
    model.train()
    return model, flops


def torch_optimizer(config, params):
    """The torch optimizer for a cynet ``optimizer`` config (sgd, adam, adamw)."""
    config = dict(config or {"type": "sgd", "lr": 0.01})
    kind = config.pop("type", None)
    config.pop("schedule", None)  # the lr per epoch: torch_scheduler
    known = {"sgd": ("lr", "momentum", "nesterov", "weight_decay"),
             "adam": ("lr", "betas", "eps", "weight_decay"),
             "adamw": ("lr", "betas", "eps", "weight_decay")}
    if kind not in known:
        raise ValueError(f"optimizer: the torch translator does not know type {kind!r} "
                         f"(known: {', '.join(known)})")
    unknown = sorted(set(config) - set(known[kind]))
    if unknown:
        raise ValueError(f"optimizer ({kind}): unknown option(s) {', '.join(unknown)}")
    if "betas" in config:
        config["betas"] = tuple(config["betas"])
    if kind == "sgd":
        return torch.optim.SGD(params, **config)
    if kind == "adam":
        return torch.optim.Adam(params, **{"lr": 0.001, **config})
    # cynet's AdamW defaults to weight_decay 0, torch's to 0.01
    return torch.optim.AdamW(params, **{"lr": 0.001, "weight_decay": 0.0, **config})


def torch_scheduler(config, optimizer, epochs):
    """The torch per-epoch lr scheduler for a cynet ``optimizer`` config's ``schedule``
    (None when it has none); call its ``step()`` after each epoch. cynet's schedules are
    the closed forms of ``StepLR`` and ``CosineAnnealingLR`` (``T_max=epochs``)."""
    given = (config or {}).get("schedule")
    schedule = dict(given or {"type": "constant"})
    kind = schedule.pop("type", None)
    sched = torch.optim.lr_scheduler
    if kind == "constant" and not schedule:
        return None
    if kind == "step" and set(schedule) <= {"step_size", "gamma"}:
        return sched.StepLR(optimizer, schedule["step_size"], gamma=schedule.get("gamma", 0.1))
    if kind == "cosine" and not schedule:
        return sched.CosineAnnealingLR(optimizer, T_max=epochs)
    raise ValueError(f"optimizer.schedule: the torch translator does not know "
                     f"{given!r} (known: constant, step, cosine)")


def torch_evaluate(model, x, y, batch=256):
    """``(mean cross-entropy, accuracy)`` of a torch model on uint8 images ``x`` (scaled
    by 1/255, as cynet does) and labels ``y``, in eval mode and batches of ``batch``."""
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for b0 in range(0, len(x), batch):
            out = model(torch.from_numpy(x[b0:b0 + batch]).float().div_(255))
            yb = torch.from_numpy(y[b0:b0 + batch])
            loss += torch.nn.functional.cross_entropy(out, yb, reduction="sum").item()
            correct += (out.argmax(1) == yb).sum().item()
    model.train()
    return loss / len(x), correct / len(x)




# --------------------------------------------------------------------------- copies
def _split_key(net, key):
    """``{layer name}.{array}`` -> ``(layer index, array)``."""
    name, _, array = key.rpartition(".")
    try:
        return net.index(name), array
    except ValueError:
        raise ValueError(f"unexpected cynet array name {key!r}") from None


def _copy_into(target, value, what):
    value = np.asarray(value)
    if tuple(target.shape) != value.shape:
        raise ValueError(f"{what}: cynet has shape {value.shape}, the twin "
                         f"{tuple(target.shape)}")
    with torch.no_grad():
        target.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def twin_parameter(net, key):
    """The twin's tensor for cynet's parameter name ``{layer name}.{param}``."""
    i, name = _split_key(net, key)
    tensor = getattr(net[i], name, None)
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{key}: the twin's layer {i} ({type(net[i]).__name__}) has no "
                         f"tensor {name!r}")
    return tensor


def copy_weights(model, net):
    """Copy a cynet model's parameters, and its layers' buffers (BatchNorm running
    statistics) where the cynet version exposes them, into its twin ``net``."""
    params = model.parameters()
    for key, value in params.items():
        _copy_into(twin_parameter(net, key), value, key)
    for key, value in model.buffers().items():
        i, name = _split_key(net, key)
        _copy_into(getattr(net[i], name), value, key)
    n_twin = sum(1 for _ in net.parameters())
    if n_twin != len(params):
        raise ValueError(f"the twin has {n_twin} parameter tensors, the cynet model "
                         f"{len(params)}")


def copy_optimizer(model, net):
    """The torch optimizer of ``net`` for a cynet model's optimizer: the same rule and
    hyperparameters, its current learning rate and its per-parameter state (step counts,
    momentum or Adam moments) once it has taken steps."""
    config = model.to_dict().get("optimizer")
    opt = torch_optimizer(config, net.parameters())
    cy_opt = model.optimizer
    for group in opt.param_groups:
        group["lr"] = float(cy_opt.lr)
    state = cy_opt.state_dict() if hasattr(cy_opt, "state_dict") else {}
    slots = {}
    for key, value in state.items():
        if key == "lr":
            continue
        name, _, entry = key.rpartition("/")
        slots.setdefault(name, {})[entry] = np.asarray(value)
    for name, entries in slots.items():
        param = twin_parameter(net, name)
        steps = int(entries.pop("step", 0))
        if steps == 0:
            continue
        torch_state = {k: torch.from_numpy(np.array(v)).to(param.dtype)
                       for k, v in entries.items()}
        if isinstance(opt, torch.optim.Adam):  # AdamW is an Adam in torch 2
            torch_state["step"] = torch.tensor(float(steps))
        opt.state[param] = torch_state
    return opt


def twin_of(model):
    """``(net, optimizer)``: the torch twin of a built cynet ``Model`` holding the same
    weights, and its optimizer in the same state."""
    net, _ = torch_twin(model.to_dict())
    copy_weights(model, net)
    return net, copy_optimizer(model, net)
