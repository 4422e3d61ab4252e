"""Learning-rate schedules: the learning rate of each epoch from the base rate.

``lr_at(base_lr, epoch, epochs)`` is a pure function of its arguments (epochs count from
0), so resuming a run needs no schedule state. The values are the closed forms of
PyTorch's ``StepLR`` and ``CosineAnnealingLR`` (``eta_min=0``, ``T_max=epochs``).
"""
import math
import numbers

from ._typed_config import build_typed

__all__ = ["ConstantSchedule", "StepSchedule", "CosineSchedule", "make_schedule"]


def _int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _positive(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not (0.0 < value < math.inf):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


class _Schedule:
    def lr_at(self, base_lr, epoch, epochs):
        """The learning rate of ``epoch`` (0-based) in a run of ``epochs`` epochs."""
        base_lr = _positive(base_lr, "base_lr")
        epochs = _int(epochs, "epochs", 1)
        epoch = _int(epoch, "epoch", 0)
        return self._factor(epoch, epochs) * base_lr

    def _factor(self, epoch, epochs):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class ConstantSchedule(_Schedule):
    """The base rate in every epoch."""

    def _factor(self, epoch, epochs):
        return 1.0


class StepSchedule(_Schedule):
    """``base_lr * gamma ** (epoch // step_size)``."""

    def __init__(self, step_size, gamma=0.1):
        self.step_size = _int(step_size, "step_size", 1)
        self.gamma = _positive(gamma, "gamma")

    def _factor(self, epoch, epochs):
        return self.gamma ** (epoch // self.step_size)


class CosineSchedule(_Schedule):
    """``base_lr * (1 + cos(pi * epoch / epochs)) / 2``: from the base rate towards 0."""

    def _factor(self, epoch, epochs):
        return (1.0 + math.cos(math.pi * epoch / epochs)) / 2.0


_SCHEDULES = {"constant": ConstantSchedule, "step": StepSchedule, "cosine": CosineSchedule}
_OPTIONS = {"constant": (), "step": ("step_size", "gamma"), "cosine": ()}



def make_schedule(config):
    """A schedule from a config: ``{"type": "step", "step_size": 2, "gamma": 0.5}``,
    ``{"type": "cosine"}``, ``{"type": "constant"}``, or ``None`` for a constant rate."""
    if config is None:
        return ConstantSchedule()
    if not isinstance(config, dict):
        raise TypeError(f"schedule config must be a dict or None, got {type(config).__name__}")
    need = ("step_size", "step schedule config needs a 'step_size' (epochs per decay)")
    return build_typed(config, "schedule", _SCHEDULES, _OPTIONS, option_word="schedule option",
                       required={"step": need})
