"""Optimizers: SGD (momentum, Nesterov), Adam and AdamW, with PyTorch's update rules.

``step(params, grads)`` updates every ``params[k]`` in place from ``grads[k]``. The
per-parameter state (momentum buffers, Adam moments, scratch) is allocated once, at a
key's first step; later steps allocate no arrays, and a float32 parameter is updated in
float32 throughout. ``state_dict()`` is a flat ``str -> ndarray`` mapping (savable with
``np.savez``) holding everything needed to resume exactly.
"""
import math

import numpy as np

from ._args import FLOAT_DTYPES, ArgumentError, as_bool, as_real
from ._suggest import did_you_mean
from .engine import ops
from ._typed_config import build_typed

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "OPTIMIZERS", "make_optimizer"]


def _betas(value):
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ArgumentError(f"betas must be a pair (beta1, beta2), got {value!r}", "betas")
    return tuple(as_real(b, f"betas[{i}]", ge=0, lt=1) for i, b in enumerate(value))


class _Slot:
    """One parameter's state: its step count, saved buffers and unsaved scratch arrays."""

    def __init__(self, buffers, steps=0):
        self.steps = steps
        self.buffers = buffers
        self.scratch = None


class Optimizer:
    """Base class: argument checking, per-parameter state and ``state_dict``.

    Subclasses name their saved buffers (``_buffer_names``), say how many scratch arrays
    a step needs (``_scratch_count``) and implement ``_update(p, g, slot)``.
    """

    def __init__(self, lr):
        self.lr = lr
        self._slots = {}

    @property
    def lr(self):
        """The learning rate of the next step; a schedule sets it each epoch."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = as_real(value, "lr", gt=0, finite=True)

    def _buffer_names(self):
        return ()

    def _scratch_count(self):
        return 1

    def _update(self, p, g, slot):
        raise NotImplementedError

    def arrays_per_parameter(self):
        """How many arrays the size of a parameter the optimizer keeps for each one
        (its saved buffers and its scratch)."""
        return len(self._buffer_names()) + self._scratch_count()

    def step(self, params, grads):
        """Update every ``params[k]`` in place by one step along ``grads[k]``.

        Everything is checked before anything is updated: an error leaves the
        parameters and the optimizer's state untouched."""
        if not isinstance(params, dict) or not isinstance(grads, dict):
            raise TypeError(
                f"params and grads must be dicts of arrays, got {type(params).__name__} "
                f"and {type(grads).__name__}")
        missing = [k for k in params if k not in grads]
        extra = [k for k in grads if k not in params]
        if missing or extra:
            raise ValueError(
                f"grads must have the keys of params; missing {missing}, unexpected {extra}")
        checked = {k: _check_pair(k, p, grads[k]) for k, p in params.items()}
        for k, p in params.items():
            slot = self._slots.get(k)
            if slot is not None:
                _check_buffers(k, p, slot)
        for k, p in params.items():
            slot = self._slot(k, p)
            slot.steps += 1
            self._update(p, checked[k], slot)

    def _slot(self, k, p):
        """``k``'s state, allocated at its first step (scratch also after a load)."""
        slot = self._slots.get(k)
        if slot is None:
            slot = _Slot({name: np.zeros(p.shape, p.dtype) for name in self._buffer_names()})
            self._slots[k] = slot
        if slot.scratch is None:
            slot.scratch = [np.empty(p.shape, p.dtype) for _ in range(self._scratch_count())]
        return slot

    def state_dict(self):
        """``{"lr": 0-d, "<key>/step": 0-d int64, "<key>/<buffer>": array}``. The buffers are
        the optimizer's own arrays (not copies): save them, don't modify them."""
        state = {"lr": np.array(self.lr, dtype=np.float64)}
        for k, slot in self._slots.items():
            state[f"{k}/step"] = np.array(slot.steps, dtype=np.int64)
            for name, buf in slot.buffers.items():
                state[f"{k}/{name}"] = buf
        return state

    def load_state_dict(self, state):
        """Restore what ``state_dict`` returned (the arrays are copied)."""
        if not hasattr(state, "keys"):
            raise TypeError(f"state must be a mapping of str to arrays, got {type(state).__name__}")
        wanted = ("step", *self._buffer_names())
        entries = {}
        for key in state.keys():
            if key == "lr":
                continue
            if not isinstance(key, str) or "/" not in key:
                raise ValueError(f"state key {key!r} is neither 'lr' nor '<param>/<entry>'")
            name, entry = key.rsplit("/", 1)
            if entry not in wanted:
                raise ValueError(
                    f"state key {key!r}: {type(self).__name__} has no entry {entry!r}"
                    f"{did_you_mean(entry, wanted)}")
            entries.setdefault(name, {})[entry] = np.asarray(state[key])
        slots = {name: _loaded_slot(name, found, wanted) for name, found in entries.items()}
        if "lr" in state.keys():
            self.lr = np.asarray(state["lr"]).item()
        self._slots = slots



def _describe(a):
    dtype = getattr(a, "dtype", None)
    return type(a).__name__ + (f" of {dtype}" if dtype is not None else "")


def _check_pair(k, p, g):
    """Check one parameter and its gradient; returns the gradient as an ndarray (a NumPy
    scalar is accepted for a 0-d parameter)."""
    if not isinstance(k, str):
        raise TypeError(f"parameter names must be strings, got {k!r}")
    if not isinstance(p, np.ndarray) or p.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"params[{k!r}] must be a float32 or float64 ndarray (it is updated in place), "
            f"got {_describe(p)}")
    if not p.flags.writeable:
        raise ValueError(f"params[{k!r}] is read-only; it must be updated in place")
    if isinstance(g, np.generic):
        g = np.asarray(g)
    if not isinstance(g, np.ndarray) or g.dtype != p.dtype:
        raise TypeError(
            f"grads[{k!r}] must be a {p.dtype} ndarray like params[{k!r}], got {_describe(g)}")
    if g.shape != p.shape:
        raise ValueError(f"grads[{k!r}] has shape {g.shape}, but params[{k!r}] has {p.shape}")
    return g


def _check_buffers(k, p, slot):
    arrays = list(slot.buffers.items()) + [("scratch", s) for s in slot.scratch or ()]
    for name, buf in arrays:
        if buf.shape != p.shape or buf.dtype != p.dtype:
            raise ValueError(
                f"the optimizer's {name} for {k!r} is {buf.dtype} {buf.shape}, but "
                f"params[{k!r}] is {p.dtype} {p.shape}")


def _loaded_slot(name, found, wanted):
    if set(found) != set(wanted):
        raise ValueError(
            f"state for {name!r} has entries {sorted(found)}, expected {sorted(wanted)}")
    step = found["step"]
    if step.shape != () or step.dtype.kind not in "iu" or step < 0:
        raise ValueError(f"state key {name + '/step'!r} must be a 0-d integer >= 0, got {step!r}")
    buffers = {}
    for entry in wanted[1:]:
        buf = found[entry]
        if buf.dtype not in FLOAT_DTYPES:
            raise ValueError(
                f"state key {name + '/' + entry!r} must be float32 or float64, got {buf.dtype}")
        buffers[entry] = np.array(buf, order="C")
    return _Slot(buffers, int(step))


class SGD(Optimizer):
    """``torch.optim.SGD`` without dampening: ``g += weight_decay * p``;
    ``buf = momentum * buf + g`` (``buf = g`` at the first step);
    ``g = g + momentum * buf`` (Nesterov) or ``g = buf``; ``p -= lr * g``."""

    def __init__(self, lr: float, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr)
        self.momentum = as_real(momentum, "momentum", ge=0)
        self.nesterov = as_bool(nesterov, "nesterov")
        self.weight_decay = as_real(weight_decay, "weight_decay", ge=0)
        if self.nesterov and self.momentum == 0:
            raise ArgumentError("nesterov=True requires momentum > 0, got momentum=0", "nesterov")

    def _buffer_names(self):
        return ("momentum_buffer",) if self.momentum else ()

    def _scratch_count(self):
        return 2 if self.nesterov and self.weight_decay else 1

    def _update(self, p, g, slot):
        # the kernel reads buf only with momentum: without, p stands in for it
        buf = slot.buffers.get("momentum_buffer", p)
        if not ops.fits_kernel(p, g, buf):
            return self._update_numpy(p, g, slot)
        ops.sgd_update(p, g, buf, self.lr, self.momentum, self.weight_decay, self.nesterov,
                       slot.steps == 1)

    def _update_numpy(self, p, g, slot):
        """The NumPy sequence of the fused kernel: non-contiguous arrays, and the tests."""
        d = slot.scratch[0]
        if self.weight_decay:
            np.multiply(p, self.weight_decay, out=d)
            d += g
            g = d
        if self.momentum:
            buf = slot.buffers["momentum_buffer"]
            if slot.steps == 1:
                np.copyto(buf, g)
            else:
                buf *= self.momentum
                buf += g
            if self.nesterov:
                tmp = slot.scratch[-1]  # not d when d holds the decayed gradient
                np.multiply(buf, self.momentum, out=tmp)
                tmp += g
                g = tmp
            else:
                g = buf
        np.multiply(g, self.lr, out=d)
        p -= d


class Adam(Optimizer):
    """``torch.optim.Adam``: ``g += weight_decay * p`` (L2); ``m = b1*m + (1-b1)*g``;
    ``v = b2*v + (1-b2)*g*g``; ``p -= lr/(1-b1**t) * m / (sqrt(v)/sqrt(1-b2**t) + eps)``."""

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lr)
        self.betas = _betas(betas)
        self.eps = as_real(eps, "eps", gt=0)
        self.weight_decay = as_real(weight_decay, "weight_decay", ge=0)

    def _buffer_names(self):
        return ("exp_avg", "exp_avg_sq")

    def _scratch_count(self):
        return 0  # the fused kernel needs none; the NumPy fallback allocates its own

    def _l2_decay(self, p):
        """The weight decay folded into the gradient (L2); AdamW decays ``p`` instead."""
        return self.weight_decay

    def _update(self, p, g, slot):
        m, v = slot.buffers["exp_avg"], slot.buffers["exp_avg_sq"]
        b1, b2 = self.betas
        t = slot.steps
        args = (b1, b2, self.eps, self.lr / (1.0 - b1**t), math.sqrt(1.0 - b2**t),
                self._l2_decay(p))
        if ops.fits_kernel(p, g, m, v):
            ops.adam_update(p, g, m, v, *args)
        else:
            adam_update_numpy(p, g, m, v, *args)


def adam_update_numpy(p, g, m, v, b1, b2, eps, step_size, bias_correction2_sqrt,
                      weight_decay):
    """The Adam step with NumPy ufuncs, in the fused kernel's order (``cynet.engine.ops``):
    used for non-contiguous arrays, and as the kernel's reference in the tests."""
    if weight_decay:
        g = np.multiply(p, weight_decay) + g
    tmp = np.empty_like(p)
    m *= b1
    np.multiply(g, 1.0 - b1, out=tmp)
    m += tmp
    v *= b2
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - b2
    v += tmp
    # denominator sqrt(v_hat) + eps, as torch: eps added after the bias correction
    np.sqrt(v, out=tmp)
    tmp /= bias_correction2_sqrt
    tmp += eps
    np.divide(m, tmp, out=tmp)
    tmp *= step_size
    p -= tmp


class AdamW(Adam):
    """``torch.optim.AdamW``: decoupled weight decay ``p *= 1 - lr * weight_decay``, then
    the Adam step on the plain gradient. (The default weight_decay here is 0, not torch's
    0.01.)"""

    def _l2_decay(self, p):
        if self.weight_decay:
            p *= 1.0 - self.lr * self.weight_decay
        return 0.0


# the optimizer types by name; the options of each are its constructor's arguments
OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def make_optimizer(config):
    """An optimizer from a config such as ``{"type": "sgd", "lr": 0.05, "momentum": 0.9}``.

    ``"type"`` is ``"sgd"``, ``"adam"`` or ``"adamw"``; the other keys are the
    constructor's arguments (``"lr"`` is required for SGD). A ``"schedule"`` key is
    ignored: it belongs to ``cynet.schedules.make_schedule``."""
    return build_typed(config, "optimizer", OPTIMIZERS, ignore=("schedule",))
