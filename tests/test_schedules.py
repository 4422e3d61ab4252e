"""Tests of cynet.schedules: the learning rate of every epoch.

Each schedule is compared with torch's StepLR / CosineAnnealingLR stepped through a run
(where torch is installed) and, always, with a reference written here the way those
schedulers compute it: step by step, each rate from the previous one. Argument errors
and make_schedule's config handling have their own tests.
"""
import math

import numpy as np
import pytest

from cynet.optimizers import SGD
from cynet.schedules import ConstantSchedule, CosineSchedule, StepSchedule, make_schedule

RTOL = 1e-12

SCHEDULES = [
    pytest.param(None, 0.1, 5, id="none"),
    pytest.param({"type": "constant"}, 0.3, 4, id="constant"),
    pytest.param({"type": "step", "step_size": 2, "gamma": 0.5}, 0.1, 7, id="step2"),
    pytest.param({"type": "step", "step_size": 1}, 1.0, 5, id="step1_default_gamma"),
    pytest.param({"type": "step", "step_size": 3, "gamma": 0.7}, 0.05, 10, id="step3"),
    pytest.param({"type": "step", "step_size": 20, "gamma": 0.1}, 0.05, 6, id="step_never"),
    pytest.param({"type": "cosine"}, 0.1, 10, id="cosine10"),
    pytest.param({"type": "cosine"}, 0.02, 7, id="cosine7"),
    pytest.param({"type": "cosine"}, 0.5, 1, id="cosine1"),
]


def recursive_reference(config, base_lr, epochs):
    """The rates of a run, each from the previous one (torch's recursive update rules)."""
    kind = (config or {"type": "constant"})["type"]
    lrs = [base_lr]
    for epoch in range(1, epochs):
        lr = lrs[-1]
        if kind == "step" and epoch % config["step_size"] == 0:
            lr *= config.get("gamma", 0.1)
        elif kind == "cosine":  # eta_min = 0, T_max = epochs
            now, before = math.pi * epoch / epochs, math.pi * (epoch - 1) / epochs
            lr *= (1 + math.cos(now)) / (1 + math.cos(before))
        lrs.append(lr)
    return lrs


def torch_rates(torch, config, base_lr, epochs):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    kind = (config or {"type": "constant"})["type"]
    if kind == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, config["step_size"], config.get("gamma", 0.1))
    elif kind == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    else:
        sched = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def assert_rates_close(schedule, base_lr, epochs, expected):
    actual = [schedule.lr_at(base_lr, epoch, epochs) for epoch in range(epochs)]
    assert all(type(lr) is float for lr in actual)
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=0)


@pytest.mark.parametrize("config, base_lr, epochs", SCHEDULES)
def test_matches_recursive_reference(config, base_lr, epochs):
    expected = recursive_reference(config, base_lr, epochs)
    assert_rates_close(make_schedule(config), base_lr, epochs, expected)


@pytest.mark.parametrize("config, base_lr, epochs", SCHEDULES)
def test_matches_torch(config, base_lr, epochs):
    torch = pytest.importorskip("torch")
    expected = torch_rates(torch, config, base_lr, epochs)
    assert_rates_close(make_schedule(config), base_lr, epochs, expected)


@pytest.mark.parametrize("config, base_lr, epochs", SCHEDULES)
def test_every_rate_is_a_valid_optimizer_lr(config, base_lr, epochs):
    schedule, opt = make_schedule(config), SGD(base_lr)
    for epoch in range(epochs):
        opt.lr = schedule.lr_at(base_lr, epoch, epochs)
        assert 0 < opt.lr <= base_lr


@pytest.mark.parametrize("config, cls, attrs", [
    pytest.param(None, ConstantSchedule, {}, id="none"),
    pytest.param({"type": "step", "step_size": 3}, StepSchedule, {"step_size": 3, "gamma": 0.1},
                 id="step_defaults"),
    pytest.param({"type": "step", "step_size": np.int64(2), "gamma": 1}, StepSchedule,
                 {"step_size": 2, "gamma": 1.0}, id="step_numpy_int"),
    pytest.param({"type": "cosine"}, CosineSchedule, {}, id="cosine"),
])
def test_make_schedule(config, cls, attrs):
    schedule = make_schedule(config)
    assert type(schedule) is cls
    for name, value in attrs.items():
        assert getattr(schedule, name) == value and type(getattr(schedule, name)) is type(value)


@pytest.mark.parametrize("config, error, match", [
    pytest.param({"type": "cosin"}, ValueError, "did you mean 'cosine'", id="type_typo"),
    pytest.param({"type": "Step", "step_size": 2}, ValueError, "did you mean 'step'",
                 id="type_case"),
    pytest.param({"type": "exponential"}, ValueError, "unknown schedule type 'exponential'",
                 id="type_unknown"),
    pytest.param({"step_size": 2}, ValueError, "needs a 'type'", id="no_type"),
    pytest.param({"type": None}, TypeError, "schedule type must be a string", id="type_none"),
    pytest.param({"type": "step", "step_size": 2, "gama": 0.5}, ValueError,
                 "'gama'.*did you mean 'gamma'", id="key_typo"),
    pytest.param({"type": "step", "stepsize": 2}, ValueError, "did you mean 'step_size'",
                 id="key_typo_step_size"),
    pytest.param({"type": "cosine", "T_max": 10}, ValueError,
                 r"unknown cosine schedule option 'T_max'.*\(valid: none\)", id="cosine_key"),
    pytest.param({"type": "step"}, ValueError, "step schedule config needs 'step_size'",
                 id="step_without_size"),
    pytest.param({"type": "step", "step_size": 0}, ValueError, "step_size must be >= 1, got 0",
                 id="step_size_zero"),
    pytest.param({"type": "step", "step_size": 1.5}, TypeError, "step_size must be an int",
                 id="step_size_float"),
    pytest.param({"type": "step", "step_size": True}, TypeError, "step_size must be an int",
                 id="step_size_bool"),
    pytest.param({"type": "step", "step_size": 2, "gamma": 0}, ValueError, "gamma must be",
                 id="gamma_zero"),
    pytest.param({"type": "step", "step_size": 2, "gamma": "0.5"}, TypeError,
                 "gamma must be a real number", id="gamma_string"),
    pytest.param("cosine", TypeError, "schedule config must be a dict or None", id="string"),
])
def test_make_schedule_rejects(config, error, match):
    with pytest.raises(error, match=match):
        make_schedule(config)


@pytest.mark.parametrize("args, error, match", [
    pytest.param((0.1, -1, 5), ValueError, "epoch must be >= 0, got -1", id="epoch_negative"),
    pytest.param((0.1, 1.0, 5), TypeError, "epoch must be an int", id="epoch_float"),
    pytest.param((0.1, 0, 0), ValueError, "epochs must be >= 1, got 0", id="epochs_zero"),
    pytest.param((0.0, 0, 5), ValueError, r"base_lr must be > 0, got 0\.0", id="lr_zero"),
    pytest.param((float("nan"), 0, 5), ValueError, "base_lr must not be NaN", id="lr_nan"),
    pytest.param((None, 0, 5), TypeError, "base_lr must be a real number", id="lr_none"),
])
@pytest.mark.parametrize("schedule", [ConstantSchedule(), StepSchedule(2), CosineSchedule()],
                         ids=["constant", "step", "cosine"])
def test_lr_at_rejects(schedule, args, error, match):
    with pytest.raises(error, match=match):
        schedule.lr_at(*args)
