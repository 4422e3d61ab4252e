"""Sizes that overflow or could never be allocated: padding, dilation and kernel sizes
so large that a padded plane, an output or a buffer of the kernels overflows a
``Py_ssize_t`` or exceeds any memory. Each is a ``ValueError`` naming the argument (in a
definition: a definition error at its place), never a crash, a MemoryError or numpy's
"array is too big".

Every call runs in a subprocess of its own, so that a crash (SIGSEGV) fails the test
instead of killing pytest.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cli_fixtures import error_lines, subprocess_env

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 300


def _python(code, cwd=ROOT):
    """Run ``code`` in a fresh interpreter importing this checkout's cynet."""
    env = subprocess_env(PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=TIMEOUT)


def _raises(call, argument):
    """``call`` (source text using ``F``, ``np``, ``x`` and ``w``) raises a ValueError
    whose ``argument`` is ``argument`` and whose message names it."""
    result = _python(f"""
        import numpy as np
        import cynet.functional as F
        x = np.ones((1, 1, 2, 2), np.float32)
        w = np.ones((1, 1, 3, 3), np.float32)
        try:
            {call}
        except ValueError as exc:
            print("ValueError", getattr(exc, "argument", None), "|", exc)
        except BaseException as exc:
            print("other", type(exc).__name__, "|", exc)
        else:
            print("no error")
    """)
    assert result.returncode == 0, (
        f"{call}: the interpreter died (exit {result.returncode})\n{result.stderr}")
    out = result.stdout.strip()
    head, _, message = out.partition(" | ")
    assert head == f"ValueError {argument}", f"{call}: {out}\n{result.stderr}"
    assert argument in message, f"{call}: {out}"


HUGE = 2**31 - 1

CONV_CASES = [
    # the segfault: Hp * Wp of the im2col scratch overflowed to 0
    ("F.conv2d(x, w, padding=HUGE, dilation=HUGE)", "dilation"),
    ("F.conv2d(x, w, padding=HUGE)", "padding"),
    ("F.conv2d(x, w, padding=2 * 10**9)", "padding"),  # numpy: "array is too big"
    ("F.conv2d(x, w, padding=10**5)", "padding"),  # a 149 GiB output: MemoryError
    # a 2x1 output, but a 4 x 2e9 padded plane of scratch
    ("F.conv2d(x, w, padding=(1, 10**9), dilation=(1, 10**9))", "padding"),
    ("F.conv2d(x, w, dilation=HUGE, padding=(HUGE // 2 * 2, 0))", "dilation"),
    ("F.conv2d(x, w, padding=(HUGE // 2, 1))", "padding"),
    ("F.conv2d_backward(np.ones((1, 1, 2, 2), np.float32), x, w, padding=HUGE, "
     "dilation=HUGE)", "dilation"),
    ("F.conv2d_backward(np.ones((1, 1, 1, 1), np.float32), x, w, padding=10**5)",
     "padding"),
]

POOL_CASES = [
    ("F.max_pool2d(x, 2, stride=1, padding=1, dilation=HUGE)", "dilation"),
    ("F.max_pool2d(x, HUGE, stride=1, padding=HUGE // 2)", "padding"),
    ("F.avg_pool2d(x, HUGE, stride=1, padding=HUGE // 2)", "padding"),
    ("F.avg_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), (1, 1, HUGE, HUGE), 1)",
     "input_shape"),
    ("F.max_pool2d_backward(np.ones((1, 1, 1, 1), np.float32), np.zeros((1, 1, 1, 1), int), "
     "(1, 1, HUGE, HUGE))", "input_shape"),
]


@pytest.mark.parametrize("call, argument", CONV_CASES + POOL_CASES,
                         ids=[c[0] for c in CONV_CASES + POOL_CASES])
def test_huge_sizes_raise_value_errors_naming_the_argument(call, argument):
    _raises(call.replace("HUGE", str(HUGE)), argument)


KERNEL_CASES = [
    # the private kernels refuse such sizes themselves (a caller that skipped the checks)
    ("im2col.im2col(x, np.empty((9, 4), np.float32), 3, 3, 1, 1, HUGE, HUGE, HUGE, HUGE, "
     "HUGE, HUGE, 2, 2, 1)", "padding"),
    ("im2col.col2im(np.zeros((9, 4), np.float32), x, 3, 3, 1, 1, HUGE, HUGE, HUGE, HUGE, "
     "HUGE, HUGE, 2, 2, 1)", "padding"),
    ("im2col.im2col(x, np.empty((9, 4), np.float32), 3, 3, 1, 1, 2**40, 2**40, 2**40, 2**40, "
     "2**40, 2**40, 2, 2, 1)", "kernel"),
    ("im2col.im2col(x, np.empty((9, 4), np.float32), 3, 3, 1, 1, 0, -2**40, 0, 0, "
     "1, 1, 2, 2, 1)", "padding"),
    ("pool.max_pool_forward(x[0], np.empty((1, 1, 1), np.float32), "
     "np.empty((1, 1, 1), np.int64), 2, 2, 1, 1, 2**40, 2**40, 2**40, 2**40, 1)", "kernel"),
    ("pool.avg_pool_forward(x[0], np.empty((1, 1, 1), np.float32), 2**40, 2**40, 1, 1, "
     "2**39, 2**39, 2**39, 2**39, True, 1)", "kernel"),
    ("direct.packed_size(2**40, 2**40, 2**40, 3, 3)", "kernel"),
]


@pytest.mark.parametrize("call, _", KERNEL_CASES, ids=[c[0] for c in KERNEL_CASES])
def test_kernels_refuse_sizes_that_overflow(call, _):
    result = _python(f"""
        import numpy as np
        from cynet.engine.kernels import direct, im2col, pool
        x = np.ones((1, 1, 2, 2), np.float32)
        try:
            {call.replace("HUGE", str(HUGE))}
        except ValueError as exc:
            print("ValueError |", exc)
        else:
            print("no error")
    """)
    assert result.returncode == 0, (
        f"the interpreter died (exit {result.returncode})\n{result.stderr}")
    assert result.stdout.startswith("ValueError |"), result.stdout + result.stderr
    assert "overflow" in result.stdout or "larger than" in result.stdout, result.stdout


def test_kernels_accept_the_largest_allowed_geometry_values():
    """The kernels' limit is on the arguments, not below what the geometry allows."""
    from cynet.engine.kernels import im2col

    x = np.ones((1, 1, 2, 2), np.float32)
    col = np.empty((1, 1), np.float32)
    # a 1x1 kernel with the largest stride: one output, no padding
    im2col.im2col(x, col, 1, 1, HUGE, HUGE, 0, 0, 0, 0, HUGE, HUGE, 1, 1, 1)
    assert col[0, 0] == 1


# --------------------------------------------------------------------------- definitions

# the definition: it passed `cynet validate`, then `cynet train` died of SIGSEGV
OVERFLOWING = {"input_shape": [1, 2, 2], "layers": [
    {"type": "Conv2D", "out_channels": 1, "kernel_size": 3, "padding": HUGE, "dilation": HUGE},
    {"type": "Flatten"}, {"type": "Dense", "out_features": 2}]}

HUGE_OUTPUT = {"input_shape": [1, 2, 2], "layers": [
    {"type": "Conv2D", "out_channels": 1, "kernel_size": 3, "padding": 10**5},
    {"type": "Flatten"}, {"type": "Dense", "out_features": 2}]}

HUGE_POOL = {"input_shape": [1, 2, 2], "layers": [
    {"type": "MaxPool2D", "kernel_size": HUGE, "stride": 1, "padding": HUGE // 2},
    {"type": "Flatten"}, {"type": "Dense", "out_features": 2}]}


@pytest.mark.parametrize("command", ["validate", "train"])
@pytest.mark.parametrize("doc, argument", [
    (OVERFLOWING, "dilation"),
    (HUGE_OUTPUT, "padding"),
    (HUGE_POOL, "padding"),
], ids=["padding and dilation 2**31-1", "padding 1e5", "pool padding 2**30"])
def test_cli_reports_an_overflowing_definition(tmp_path, command, doc, argument):
    rng = np.random.default_rng(0)
    data = tmp_path / "tiny.npz"
    np.savez(data, x_train=rng.integers(0, 255, (8, 2, 2)).astype(np.uint8),
             y_train=rng.integers(0, 2, 8).astype(np.uint8))
    model = tmp_path / "model.json"
    model.write_text(json.dumps(dict(doc, data=str(data))), encoding="utf-8")
    args = [str(model)] + (["--out", str(tmp_path / "run"), "--epochs", "1"]
                           if command == "train" else [])
    result = _python(f"""
        import sys
        from cynet.cli import main
        sys.argv = ["cynet", {command!r}] + {args!r}
        main()
    """, cwd=tmp_path)
    described = f"exit {result.returncode}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
    assert result.returncode == 2, described
    assert "Traceback" not in result.stdout + result.stderr, described
    errors = error_lines(result.stderr)
    assert len(errors) == 1, described
    assert errors[0].startswith("Error: layers[0]"), described
    assert argument in errors[0], described
    assert not (tmp_path / "run").exists()


class _OutOfMemory:
    """A kernel module whose ``name`` fails as a calloc of the kernels' scratch does."""

    def __init__(self, module, name):
        self._module, self._name = module, name

    def __getattr__(self, attr):
        if attr == self._name:
            def fail(*args, **kwargs):
                raise MemoryError("no memory for 2 padded planes")
            return fail
        return getattr(self._module, attr)


@pytest.mark.parametrize("which, name, direct", [
    ("im2col", "im2col", False), ("im2col", "col2im", False), ("direct", "conv", True)])
def test_scratch_that_cannot_be_allocated_is_a_value_error(which, name, direct, monkeypatch,
                                                          policy):
    from cynet import functional as F
    from cynet.engine import conv as engine_conv

    policy(direct_conv=direct)
    if direct and not engine_conv.direct.available():
        pytest.skip("the direct kernels need AVX-512")
    monkeypatch.setattr(engine_conv, which, _OutOfMemory(getattr(engine_conv, which), name))
    x = np.ones((2, 16, 5, 5), np.float32)
    w = np.ones((32, 16, 3, 3), np.float32)
    with pytest.raises(ValueError, match="reduce padding") as info:
        y = F.conv2d(x, w, padding=2)
        F.conv2d_backward(y, x, w, padding=2)
    assert info.value.argument == "padding"
