"""Tests of cynet.optimizers: SGD, Adam and AdamW.

Several steps of every configuration (momentum, Nesterov, weight decay, betas, a learning
rate changed mid-run as a schedule does) are compared with a float64 reference written
here from the published update rules and, where torch is installed, with torch.optim.
Then: updates happen in place and allocate nothing after the first step, state_dict
survives an npz round trip and resumes exactly, failed steps change nothing, and every
argument error is raised with a helpful message.
"""
import io
import re
import tracemalloc

import numpy as np
import pytest

from cynet.optimizers import SGD, Adam, AdamW, Optimizer, make_optimizer

DTYPES = [np.float32, np.float64]
# after STEPS steps, relative to max(1, max |expected|)
RTOL = {
    "reference": {np.float32: 2e-6, np.float64: 1e-12},
    "torch": {np.float32: 1e-6, np.float64: 1e-12},
}
SHAPES = {"conv.weight": (4, 3, 2, 2), "conv.bias": (4,), "scale": ()}
STEPS = 6

CONFIGS = [
    pytest.param({"type": "sgd", "lr": 0.1}, id="sgd"),
    pytest.param({"type": "sgd", "lr": 0.05, "momentum": 0.9}, id="sgd_momentum"),
    pytest.param({"type": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True},
                 id="sgd_nesterov"),
    pytest.param({"type": "sgd", "lr": 0.1, "weight_decay": 0.1}, id="sgd_wd"),
    pytest.param({"type": "sgd", "lr": 0.05, "momentum": 0.5, "weight_decay": 0.05},
                 id="sgd_momentum_wd"),
    pytest.param({"type": "sgd", "lr": 0.05, "momentum": 0.8, "nesterov": True,
                  "weight_decay": 0.05}, id="sgd_nesterov_wd"),
    pytest.param({"type": "adam", "lr": 0.01}, id="adam"),
    pytest.param({"type": "adam", "lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6,
                  "weight_decay": 0.1}, id="adam_wd"),
    pytest.param({"type": "adam", "lr": 0.01, "betas": [0.0, 0.0]}, id="adam_zero_betas"),
    pytest.param({"type": "adamw", "lr": 0.01}, id="adamw"),
    pytest.param({"type": "adamw", "lr": 0.02, "betas": [0.85, 0.995], "eps": 1e-7,
                  "weight_decay": 0.1}, id="adamw_wd"),
]


def make_problem(rng, dtype, shapes=SHAPES, steps=STEPS):
    """Initial parameters, a gradient dict per step (some zeros, some large), and the
    learning rate factor of each step (halved midway, as a schedule would)."""
    params = {k: np.asarray(rng.standard_normal(s), dtype=dtype) for k, s in shapes.items()}
    grads = []
    for _ in range(steps):
        g = {k: np.asarray(rng.standard_normal(s) * rng.choice([0.0, 0.1, 1.0, 10.0], size=s),
                           dtype=dtype) for k, s in shapes.items()}
        grads.append(g)
    factors = [1.0 if i < steps // 2 else 0.5 for i in range(steps)]
    return params, grads, factors


def run_cynet(config, params0, grads, factors):
    """The parameters after one cynet step per gradient dict, checking they are updated in
    place (the same array objects, same dtype)."""
    opt = make_optimizer(config)
    params = {k: v.copy() for k, v in params0.items()}
    originals = dict(params)
    for factor, g in zip(factors, grads):
        opt.lr = config["lr"] * factor
        opt.step(params, g)
    for k, p in params.items():
        assert p is originals[k], f"params[{k!r}] was replaced, not updated in place"
        assert p.dtype == params0[k].dtype
    return params


def run_reference(config, params0, grads, factors):
    """The published update rules, one parameter at a time, in float64."""
    kind = config["type"]
    momentum = config.get("momentum", 0.0)
    wd = config.get("weight_decay", 0.0)
    b1, b2 = config.get("betas", (0.9, 0.999))
    eps = config.get("eps", 1e-8)
    out = {}
    for k, p in params0.items():
        p = p.astype(np.float64)
        buf = None
        m = v = np.zeros_like(p)
        for t, (factor, step_grads) in enumerate(zip(factors, grads), start=1):
            lr = config["lr"] * factor
            g = step_grads[k].astype(np.float64)
            if kind == "sgd":
                g = g + wd * p
                if momentum:
                    buf = g if buf is None else momentum * buf + g
                    g = g + momentum * buf if config.get("nesterov") else buf
                p = p - lr * g
                continue
            if kind == "adamw":
                p = p * (1 - lr * wd)
            else:
                g = g + wd * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            m_hat = m / (1 - b1**t)
            v_hat = v / (1 - b2**t)
            p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out[k] = p
    return out


def run_torch(torch, config, params0, grads, factors):
    """torch.optim with the same hyperparameters (weight_decay always explicit: torch's
    AdamW default differs from ours)."""
    classes = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    options = {k: v for k, v in config.items() if k != "type"}
    options["weight_decay"] = config.get("weight_decay", 0.0)
    if "betas" in options:
        options["betas"] = tuple(options["betas"])
    tensors = {k: torch.from_numpy(v.copy()).requires_grad_(True) for k, v in params0.items()}
    opt = classes[config["type"]](list(tensors.values()), **options)
    for factor, g in zip(factors, grads):
        for group in opt.param_groups:
            group["lr"] = config["lr"] * factor
        for k, t in tensors.items():
            t.grad = torch.from_numpy(g[k].copy())
        opt.step()
    return {k: t.detach().numpy() for k, t in tensors.items()}


def assert_params_close(actual, expected, dtype, rtol, assert_close):
    assert actual.keys() == expected.keys()
    for k in expected:
        assert_close(actual[k], expected[k], dtype=dtype, what=f"params[{k!r}]", rtol=rtol)


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", CONFIGS)
def test_matches_reference(rng, assert_close, config, dtype):
    params0, grads, factors = make_problem(rng, dtype)
    actual = run_cynet(config, params0, grads, factors)
    expected = run_reference(config, params0, grads, factors)
    assert_params_close(actual, expected, dtype, RTOL["reference"][dtype], assert_close)
    moved = max(float(np.abs(expected[k] - params0[k]).max()) for k in expected)
    assert moved > 1e-3, "the problem barely moves the parameters: a weak test"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", CONFIGS)
def test_matches_torch(torch, rng, assert_close, config, dtype):
    params0, grads, factors = make_problem(rng, dtype)
    actual = run_cynet(config, params0, grads, factors)
    expected = run_torch(torch, config, params0, grads, factors)
    assert_params_close(actual, expected, dtype, RTOL["torch"][dtype], assert_close)


def _strided(a):
    """The same values in a non-contiguous array (every other element of a buffer)."""
    buf = np.zeros((a.size * 2,), a.dtype)
    view = buf[::2].reshape(a.shape) if a.ndim else buf[:1].reshape(())
    view[...] = a
    return view


def _numpy_path(config, monkeypatch, calls):
    """Count the calls of the NumPy sequence that ``config``'s optimizer falls back to for
    non-contiguous arrays (and that its fused kernel in cynet._optim reproduces)."""
    import cynet.optimizers as optimizers

    if config["type"] == "sgd":
        original = optimizers.SGD._update_numpy
        monkeypatch.setattr(optimizers.SGD, "_update_numpy",
                            lambda self, *a: calls.append(1) or original(self, *a))
    else:
        original = optimizers.adam_update_numpy
        monkeypatch.setattr(optimizers, "adam_update_numpy",
                            lambda *a: calls.append(1) or original(*a))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", CONFIGS)
def test_fused_kernels_are_bit_identical_to_the_numpy_sequence(rng, config, dtype,
                                                               monkeypatch):
    # contiguous parameters take the fused kernel (cynet._optim); non-contiguous ones
    # the NumPy sequence it was written from: the two must agree to the last bit
    # "big" spans several of the kernel's 16384-element blocks, the last one partial
    params0, grads, factors = make_problem(rng, dtype, shapes={**SHAPES, "big": (257, 133)})
    numpy_calls = []
    _numpy_path(config, monkeypatch, numpy_calls)
    runs = {}
    for layout, arrange in (("fused", np.copy), ("numpy", _strided)):
        opt = make_optimizer(config)
        params = {k: arrange(v) for k, v in params0.items()}
        for factor, g in zip(factors, grads):
            opt.lr = config["lr"] * factor
            opt.step(params, {k: arrange(v) for k, v in g.items()})
        runs[layout] = params
        strided = sum(not p.flags.c_contiguous for p in params.values())  # not the 0-d
        expected_calls = 0 if layout == "fused" else len(grads) * strided
        assert len(numpy_calls) == expected_calls, layout
        numpy_calls.clear()
    for k, p0 in params0.items():
        assert not np.array_equal(runs["fused"][k], p0), k
        np.testing.assert_array_equal(runs["fused"][k], runs["numpy"][k], err_msg=k)


def test_weight_decay_defaults_to_zero_for_adamw(rng, assert_close):
    params0, grads, factors = make_problem(rng, np.float64)
    config = {"type": "adamw", "lr": 0.01}
    expected = run_reference({**config, "type": "adam"}, params0, grads, factors)
    assert_params_close(run_cynet(config, params0, grads, factors), expected, np.float64,
                        1e-12, assert_close)


# --------------------------------------------------------------------------- memory


@pytest.mark.parametrize("config", CONFIGS)
def test_steps_after_the_first_allocate_nothing(rng, config):
    shapes = {"w": (256, 256), "b": (256,)}
    params, grads, _ = make_problem(rng, np.float32, shapes, steps=4)
    originals = dict(params)
    opt = make_optimizer(config)
    big = params["w"].nbytes

    tracemalloc.start()
    try:
        opt.step(params, grads[0])
        _, first_peak = tracemalloc.get_traced_memory()
        buffers = opt.state_dict()
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        for g in grads[1:]:
            opt.step(params, g)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # the measurement sees allocations: the first step allocates at least one scratch array
    assert first_peak >= big, f"first step traced {first_peak} bytes, expected >= {big}"
    assert peak - base < big // 16, f"later steps allocated {peak - base} bytes"
    after = opt.state_dict()
    for key, buf in buffers.items():
        if buf.ndim:  # the buffers, not the 0-d step counts
            assert after[key] is buf, f"state {key!r} was reallocated"
            assert buf.dtype == np.float32, f"state {key!r} is {buf.dtype}"
    for k, p in params.items():
        assert p is originals[k] and p.dtype == np.float32


# --------------------------------------------------------------------------- state


def npz_round_trip(state):
    """``state`` written by np.savez and read back without pickle."""
    f = io.BytesIO()
    np.savez(f, **state)
    f.seek(0)
    with np.load(f, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", CONFIGS)
def test_state_dict_round_trip_resumes_exactly(rng, config, dtype):
    params0, grads, factors = make_problem(rng, dtype)
    uninterrupted = run_cynet(config, params0, grads, factors)

    split = 4
    first = make_optimizer(config)
    params = {k: v.copy() for k, v in params0.items()}
    for factor, g in zip(factors[:split], grads[:split]):
        first.lr = config["lr"] * factor
        first.step(params, g)
    saved = npz_round_trip(first.state_dict())
    params = npz_round_trip(params)

    resumed = make_optimizer(config)
    resumed.load_state_dict(saved)
    assert resumed.lr == first.lr
    for factor, g in zip(factors[split:], grads[split:]):
        resumed.lr = config["lr"] * factor
        resumed.step(params, g)
    for k in params0:
        np.testing.assert_array_equal(params[k], uninterrupted[k], err_msg=k)


@pytest.mark.parametrize("config, buffers", [
    pytest.param({"type": "sgd", "lr": 0.1}, [], id="sgd"),
    pytest.param({"type": "sgd", "lr": 0.1, "momentum": 0.9}, ["momentum_buffer"],
                 id="sgd_momentum"),
    pytest.param({"type": "adam"}, ["exp_avg", "exp_avg_sq"], id="adam"),
    pytest.param({"type": "adamw"}, ["exp_avg", "exp_avg_sq"], id="adamw"),
])
def test_state_dict_layout(rng, config, buffers):
    params, grads, _ = make_problem(rng, np.float32, steps=3)
    opt = make_optimizer(config)
    assert set(opt.state_dict()) == {"lr"}
    for g in grads:
        opt.step(params, g)
    state = opt.state_dict()
    expected = {"lr"} | {f"{k}/{e}" for k in params for e in ["step", *buffers]}
    assert set(state) == expected
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert state["lr"].shape == () and state["lr"] == opt.lr
    for k, p in params.items():
        assert state[f"{k}/step"].shape == () and state[f"{k}/step"] == 3
        for e in buffers:
            assert state[f"{k}/{e}"].shape == p.shape and state[f"{k}/{e}"].dtype == p.dtype


def test_load_state_dict_copies(rng):
    params, grads, _ = make_problem(rng, np.float64, steps=2)
    opt = make_optimizer({"type": "adam"})
    opt.step(params, grads[0])
    state = {k: v.copy() for k, v in opt.state_dict().items()}
    other = make_optimizer({"type": "adam"})
    other.load_state_dict(state)
    state["scale/exp_avg"][...] = 123.0
    assert other.state_dict()["scale/exp_avg"] != 123.0


def test_new_parameter_after_load_starts_fresh(rng, assert_close):
    """A key without saved state gets fresh state, as at its first step."""
    params0, grads, factors = make_problem(rng, np.float64)
    config = {"type": "sgd", "lr": 0.1, "momentum": 0.9}
    opt = make_optimizer(config)
    opt.step({"scale": params0["scale"].copy()}, {"scale": grads[0]["scale"]})
    fresh = make_optimizer(config)
    fresh.load_state_dict(opt.state_dict())
    bias = {"conv.bias": params0["conv.bias"].copy()}
    fresh.step(bias, {"conv.bias": grads[0]["conv.bias"]})
    expected = run_reference(config, {"conv.bias": params0["conv.bias"]}, grads[:1], [1.0])
    assert_params_close(bias, expected, np.float64, 1e-12, assert_close)


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize("config, cls, attrs", [
    pytest.param({"type": "sgd", "lr": 0.05, "momentum": 0.9, "schedule": {"type": "cosine"}},
                 SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0},
                 id="sgd_ignores_schedule"),
    pytest.param({"type": "adam"}, Adam,
                 {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
                 id="adam_defaults"),
    pytest.param({"type": "adamw", "lr": 1, "betas": [0.5, 0.75], "weight_decay": 0.25}, AdamW,
                 {"lr": 1.0, "betas": (0.5, 0.75), "eps": 1e-8, "weight_decay": 0.25},
                 id="adamw_ints_and_lists"),
])
def test_make_optimizer(config, cls, attrs):
    opt = make_optimizer(config)
    assert type(opt) is cls and isinstance(opt, Optimizer)
    for name, value in attrs.items():
        assert getattr(opt, name) == value, name
        assert type(getattr(opt, name)) is type(value), name


@pytest.mark.parametrize("config, error, match", [
    pytest.param({"type": "sdg", "lr": 0.1}, ValueError, "did you mean 'sgd'", id="type_typo"),
    pytest.param({"type": "Adam"}, ValueError, "did you mean 'adam'", id="type_case"),
    pytest.param({"type": "rmsprop"}, ValueError, "unknown optimizer type 'rmsprop'",
                 id="type_unknown"),
    pytest.param({"lr": 0.1}, ValueError, "needs a 'type'", id="no_type"),
    pytest.param({"type": 3}, TypeError, "optimizer type must be a string", id="type_not_str"),
    pytest.param({"type": "sgd"}, ValueError, "sgd optimizer config needs 'lr'",
                 id="sgd_without_lr"),
    pytest.param({"type": "sgd", "lr": 0.1, "momentun": 0.9}, ValueError,
                 "'momentun'.*did you mean 'momentum'", id="key_typo"),
    pytest.param({"type": "adam", "momentum": 0.9}, ValueError, "unknown adam option 'momentum'",
                 id="key_of_other_optimizer"),
    pytest.param({"type": "adamw", "weightdecay": 0.1}, ValueError,
                 "did you mean 'weight_decay'", id="key_typo_adamw"),
    pytest.param([("type", "sgd")], TypeError, "config must be a dict", id="not_a_dict"),
])
def test_make_optimizer_rejects(config, error, match):
    with pytest.raises(error, match=match):
        make_optimizer(config)


@pytest.mark.parametrize("factory, error, match", [
    pytest.param(lambda: SGD(0.0), ValueError, "lr must be > 0, got 0.0", id="lr_zero"),
    pytest.param(lambda: SGD(-0.1), ValueError, "lr must be > 0", id="lr_negative"),
    pytest.param(lambda: SGD(float("nan")), ValueError, "lr must not be NaN", id="lr_nan"),
    pytest.param(lambda: SGD(float("inf")), ValueError, "lr must be finite", id="lr_inf"),
    pytest.param(lambda: SGD("0.1"), TypeError, "lr must be a real number, got '0.1'",
                 id="lr_string"),
    pytest.param(lambda: SGD(True), TypeError, "lr must be a real number", id="lr_bool"),
    pytest.param(lambda: SGD(0.1, momentum=-0.5), ValueError, "momentum must be >= 0",
                 id="momentum_negative"),
    pytest.param(lambda: SGD(0.1, nesterov=True), ValueError, "nesterov=True requires momentum",
                 id="nesterov_without_momentum"),
    pytest.param(lambda: SGD(0.1, momentum=0.9, nesterov=1), TypeError, "nesterov must be True",
                 id="nesterov_not_bool"),
    pytest.param(lambda: SGD(0.1, weight_decay=-1e-4), ValueError, "weight_decay must be >= 0",
                 id="sgd_wd_negative"),
    pytest.param(lambda: Adam(betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be < 1",
                 id="beta2_one"),
    pytest.param(lambda: Adam(betas=(-0.1, 0.9)), ValueError, r"betas\[0\] must be >= 0",
                 id="beta1_negative"),
    pytest.param(lambda: Adam(betas=0.9), ValueError, "betas must be a pair", id="betas_scalar"),
    pytest.param(lambda: Adam(betas=(0.9, 0.99, 0.9)), ValueError, "betas must be a pair",
                 id="betas_three"),
    pytest.param(lambda: Adam(eps=0.0), ValueError, "eps must be > 0", id="eps_zero"),
    pytest.param(lambda: AdamW(weight_decay=-0.01), ValueError, "weight_decay must be >= 0",
                 id="adamw_wd_negative"),
    pytest.param(lambda: AdamW(lr=None), TypeError, "lr must be a real number, got None",
                 id="lr_none"),
])
def test_constructor_rejects(factory, error, match):
    with pytest.raises(error, match=match) as info:
        factory()
    # the error carries the argument its message begins with (a definition places it there)
    assert re.match(rf"{re.escape(info.value.argument)}[ =]", str(info.value))


@pytest.mark.parametrize("value, error, match", [
    (0.0, ValueError, r"lr must be > 0, got 0\.0"),
    (-1.0, ValueError, r"lr must be > 0, got -1\.0"),
    (float("nan"), ValueError, "lr must not be NaN"),
    ("fast", TypeError, "lr must be a real number, got 'fast'")])
def test_lr_setter_rejects(value, error, match):
    opt = SGD(0.1)
    with pytest.raises(error, match=match):
        opt.lr = value
    assert opt.lr == 0.1


def test_lr_is_a_python_float():
    opt = Adam(lr=np.float64(0.01))
    opt.lr = np.float32(0.5)
    assert type(opt.lr) is float and opt.lr == 0.5


# --------------------------------------------------------------------------- step errors


def _pair(shape=(3,), dtype=np.float32):
    return np.ones(shape, dtype), np.ones(shape, dtype)


def _readonly():
    p, g = _pair()
    p.flags.writeable = False
    return p, g


@pytest.mark.parametrize("make, error, match", [
    pytest.param(lambda: ({"w": [1.0, 2.0]}, {"w": np.ones(2)}), TypeError,
                 r"params\['w'\] must be a float32 or float64 ndarray", id="param_list"),
    pytest.param(lambda: ({"w": np.ones(2, int)}, {"w": np.ones(2, int)}), TypeError,
                 r"params\['w'\] .*int64", id="param_int"),
    pytest.param(lambda: ({"w": _readonly()[0]}, {"w": _readonly()[1]}), ValueError,
                 r"params\['w'\] is read-only", id="param_readonly"),
    pytest.param(lambda: ({"w": _pair()[0]}, {"w": np.ones(3)}), TypeError,
                 r"grads\['w'\] must be a float32 ndarray.*float64", id="grad_dtype"),
    pytest.param(lambda: ({"w": _pair()[0]}, {"w": np.ones((3, 1), np.float32)}), ValueError,
                 r"grads\['w'\] has shape \(3, 1\)", id="grad_shape"),
    pytest.param(lambda: ({"w": _pair()[0], "b": _pair()[0]}, {"w": _pair()[1]}), ValueError,
                 r"missing \['b'\]", id="grad_missing"),
    pytest.param(lambda: ({"w": _pair()[0]}, {"w": _pair()[1], "x": _pair()[1]}), ValueError,
                 r"unexpected \['x'\]", id="grad_extra"),
    pytest.param(lambda: ({0: _pair()[0]}, {0: _pair()[1]}), TypeError,
                 "parameter names must be strings", id="key_not_str"),
    pytest.param(lambda: ([_pair()[0]], [_pair()[1]]), TypeError, "must be dicts",
                 id="not_dicts"),
])
def test_step_rejects(make, error, match):
    params, grads = make()
    with pytest.raises(error, match=match):
        SGD(0.1, momentum=0.9).step(params, grads)


def test_failed_step_changes_nothing(rng):
    params, grads, _ = make_problem(rng, np.float32, steps=2)
    opt = make_optimizer({"type": "adam"})
    opt.step(params, grads[0])
    before = {k: v.copy() for k, v in params.items()}
    state = {k: v.copy() for k, v in opt.state_dict().items()}
    bad = dict(grads[1], scale=grads[1]["scale"].astype(np.float64))  # the last key is wrong
    with pytest.raises(TypeError, match="scale"):
        opt.step(params, bad)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k], err_msg=k)
    for k, v in opt.state_dict().items():
        np.testing.assert_array_equal(v, state[k], err_msg=k)


def test_parameter_changing_shape_is_rejected(rng):
    opt = make_optimizer({"type": "sgd", "lr": 0.1, "momentum": 0.9})
    opt.step({"w": np.ones(3)}, {"w": np.ones(3)})
    with pytest.raises(ValueError, match=r"momentum_buffer for 'w' is float64 \(3,\)"):
        opt.step({"w": np.ones(4)}, {"w": np.ones(4)})


@pytest.mark.parametrize("state, error, match", [
    pytest.param({"w/step": np.array(1), "w/exp_avg": np.zeros(3)}, ValueError,
                 "SGD has no entry 'exp_avg'", id="other_optimizers_buffer"),
    pytest.param({"w/step": np.array(1)}, ValueError,
                 r"'w' has entries \['step'\], expected \['momentum_buffer', 'step'\]",
                 id="missing_buffer"),
    pytest.param({"w/stepp": np.array(1)}, ValueError, "did you mean 'step'", id="entry_typo"),
    pytest.param({"w": np.zeros(3)}, ValueError, "neither 'lr' nor '<param>/<entry>'",
                 id="flat_key"),
    pytest.param({"w/step": np.array([1, 2]), "w/momentum_buffer": np.zeros(3)}, ValueError,
                 "'w/step' must be a 0-d integer", id="step_not_scalar"),
    pytest.param({"w/step": np.array(-1), "w/momentum_buffer": np.zeros(3)}, ValueError,
                 "'w/step' must be a 0-d integer >= 0", id="step_negative"),
    pytest.param({"w/step": np.array(1), "w/momentum_buffer": np.zeros(3, int)}, ValueError,
                 "'w/momentum_buffer' must be float32 or float64", id="buffer_int"),
    pytest.param({"lr": np.array(-1.0)}, ValueError, "lr must be > 0", id="bad_lr"),
    pytest.param([1, 2], TypeError, "state must be a mapping", id="not_a_mapping"),
])
def test_load_state_dict_rejects(state, error, match):
    opt = SGD(0.1, momentum=0.9)
    opt.step({"w": np.ones(3)}, {"w": np.ones(3)})
    before = {k: v.copy() for k, v in opt.state_dict().items()}
    with pytest.raises(error, match=match):
        opt.load_state_dict(state)
    after = opt.state_dict()
    assert after.keys() == before.keys()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


def test_numpy_scalar_grad_for_0d_parameter(assert_close):
    """A 0-d parameter's gradient often comes out of a reduction as a NumPy scalar."""
    params = {"scale": np.array(2.0, np.float32)}
    SGD(0.5).step(params, {"scale": np.float32(1.0)})
    expected = run_reference({"type": "sgd", "lr": 0.5}, {"scale": np.array(2.0)},
                             [{"scale": np.array(1.0)}], [1.0])
    assert_params_close(params, expected, np.float32, 1e-7, assert_close)


@pytest.mark.parametrize("kernel", ["adam", "sgd"])
def test_fused_kernels_give_the_same_bits_on_several_threads(kernel, rng):
    from cynet import _optim

    n = 5 * 16384 + 7  # several blocks per thread, the last one partial
    inputs = [np.asarray(rng.standard_normal(n), np.float32) for _ in range(4)]
    inputs[3] = np.abs(inputs[3])  # Adam's second moment
    results = []
    for threads in (1, 2, 3):
        p, g, a, b = (x.copy() for x in inputs)
        if kernel == "adam":
            _optim.adam_update(p, g, a, b, 0.9, 0.999, 1e-8, 0.01, 0.5, 0.1, threads)
        else:
            _optim.sgd_update(p, g, a, 0.01, 0.9, 0.1, True, False, threads)
        assert not np.array_equal(p, inputs[0])
        results.append((p, a, b))
    for got in results[1:]:
        for x, want in zip(got, results[0]):
            np.testing.assert_array_equal(x, want)
