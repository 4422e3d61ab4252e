"""Learning-rate schedules: the learning rate of each epoch from the base rate.

``lr_at(base_lr, epoch, epochs)`` is a pure function of its arguments (epochs count from
0), so resuming a run needs no schedule state. The values are the closed forms of
PyTorch's ``StepLR`` and ``CosineAnnealingLR`` (``eta_min=0``, ``T_max=epochs``).
"""
import math

from ._args import as_int, as_real
from ._typed_config import build_typed

__all__ = ["ConstantSchedule", "StepSchedule", "CosineSchedule", "SCHEDULES", "make_schedule",
           "lr_with_warmup"]


class _Schedule:
    def lr_at(self, base_lr, epoch, epochs):
        """The learning rate of ``epoch`` (0-based) in a run of ``epochs`` epochs."""
        base_lr = as_real(base_lr, "base_lr", gt=0, finite=True)
        epochs = as_int(epochs, "epochs", minimum=1)
        epoch = as_int(epoch, "epoch", minimum=0)
        rate = self._factor(epoch, epochs) * base_lr
        if not 0 < rate < math.inf:  # (a definition is refused before: definition._check_rates)
            raise ValueError(
                f"{self!r} takes the learning rate {base_lr!r} to {rate!r} in epoch {epoch + 1} "
                f"of {epochs}; a learning rate must stay > 0 and finite")
        return rate

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

    def __init__(self, step_size: int, gamma=0.1):
        self.step_size = as_int(step_size, "step_size", minimum=1)
        self.gamma = as_real(gamma, "gamma", gt=0, finite=True)

    def _factor(self, epoch, epochs):
        try:
            return self.gamma ** (epoch // self.step_size)
        except OverflowError:  # gamma > 1 over many steps: the optimizer refuses an infinite rate
            return math.inf


class CosineSchedule(_Schedule):
    """``base_lr * (1 + cos(pi * epoch / epochs)) / 2``: from the base rate towards 0."""

    def _factor(self, epoch, epochs):
        return (1.0 + math.cos(math.pi * epoch / epochs)) / 2.0


# the schedule types by name; the options of each are its constructor's arguments
SCHEDULES = {"constant": ConstantSchedule, "step": StepSchedule, "cosine": CosineSchedule}


def make_schedule(config):
    """A schedule from a config: ``{"type": "step", "step_size": 2, "gamma": 0.5}``,
    ``{"type": "cosine"}``, ``{"type": "constant"}`` (the base rate in every epoch, as
    when a definition names no schedule), or ``None`` for a constant rate."""
    if config is None:
        return ConstantSchedule()
    if not isinstance(config, dict):
        raise TypeError(f"schedule config must be a dict or None, got {type(config).__name__}")
    return build_typed(config, "schedule", SCHEDULES, option_word="schedule option")


def lr_with_warmup(schedule, base_lr, epoch, epochs, warmup_epochs=0):
    """The learning rate of ``epoch`` (0-based) of ``epochs`` with a linear warm-up of
    ``warmup_epochs``: ``base_lr * (epoch + 1) / (warmup_epochs + 1)`` in the warm-up
    (a step of base_lr / (warmup_epochs + 1) per epoch, so the first epoch after it is
    the first at the full rate), then ``schedule`` over the remaining epochs as if they
    were the whole run."""
    warmup_epochs = as_int(warmup_epochs, "warmup_epochs", minimum=0)
    if epoch < warmup_epochs:
        base_lr = as_real(base_lr, "base_lr", gt=0, finite=True)
        return base_lr * (epoch + 1) / (warmup_epochs + 1)
    return schedule.lr_at(base_lr, epoch - warmup_epochs, max(epochs - warmup_epochs, 1))
