"""Shared fixtures of the kernel tests.

``rng`` (seeded per test), ``restore_threads`` (thread counts put back after the test),
``policy`` (the engine's policy changed for the rest of a test),
``assert_close`` (dtype-aware comparison), ``torch_oracle``
(torch.nn.functional, skipping without torch), ``sweep`` (collects the failing cases of a
randomised sweep), ``numerical_grad`` (central differences) and ``relayout`` (the same
values in other memory layouts; tests using it run once per layout).

Hypothesis profiles for the property tests: ``default`` (reproducible and quick, for CI)
and ``thorough`` (many more random examples, for local runs):
``HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_functional_properties.py``.
"""
import contextlib
import os
import sys
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import settings

# ``import reference`` from the test modules, whatever pytest's import mode
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
# ``from benchmarks.torch_twin import ...`` (test_torch_twin.py) under a bare ``pytest``,
# whose sys.path lacks the repository root; appended, so it never changes which cynet
# is imported
_ROOT = os.path.dirname(_HERE)
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

# No deadline: a kernel's first call (workspaces, thread pool) is slower than the rest, and
# the machine may be shared. derandomize: the same examples on every run and machine.
settings.register_profile("default", deadline=None, max_examples=200, derandomize=True,
                          print_blob=True)
settings.register_profile("thorough", deadline=None, max_examples=2000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Relative tolerance, scaled by max(1, max |expected|), per result dtype.
TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-9}


@pytest.fixture
def restore_threads():
    """Put cynet's and numpy's BLAS thread counts back as they were after the test."""
    from threadpoolctl import threadpool_info, threadpool_limits

    import cynet

    before = cynet.get_num_threads()
    blas_before = max([p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
                      or [1])
    yield
    cynet.set_num_threads(before)
    threadpool_limits(blas_before, user_api="blas")


@pytest.fixture
def policy():
    """``policy(**changes)``: the engine's policy with ``changes`` (``cynet.engine.Policy``
    fields) for the rest of the test, restored after it."""
    from cynet import engine

    with contextlib.ExitStack() as stack:
        yield lambda **changes: stack.enter_context(engine.using(**changes))


@pytest.fixture
def rng(request):
    """A generator seeded from the test's module, name and parameters, so every test (and
    parameter set) gets its own data, the same on every run."""
    key = f"{request.node.module.__name__}::{request.node.name}"
    return np.random.default_rng(zlib.crc32(key.encode()))


def _assert_close(actual, expected, dtype=None, what="result", rtol=None):
    """``actual`` has ``expected``'s shape and the given dtype, and matches it to within
    ``rtol * max(1, max |expected|)`` (NaN must sit where expected has NaN)."""
    expected = np.asarray(expected)
    dtype = np.dtype(dtype if dtype is not None else expected.dtype)
    assert isinstance(actual, np.ndarray), f"{what}: expected an ndarray, got {type(actual)}"
    assert actual.dtype == dtype, f"{what}: dtype {actual.dtype}, expected {dtype}"
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape}, expected {expected.shape}")
    if rtol is None:
        rtol = TOLERANCE[dtype]
    exp = expected.astype(np.float64)
    act = actual.astype(np.float64)
    finite = np.isfinite(exp)
    scale = max(1.0, float(np.abs(exp[finite]).max())) if finite.any() else 1.0
    np.testing.assert_array_equal(np.isnan(act), np.isnan(exp), err_msg=f"{what}: NaN positions")
    inf = np.isinf(exp)
    np.testing.assert_array_equal(act[inf], exp[inf], err_msg=f"{what}: infinities")
    np.testing.assert_allclose(act[finite], exp[finite], rtol=0, atol=rtol * scale,
                               err_msg=f"{what}: values (scale {scale:g})")


@pytest.fixture(scope="session")  # stateless: usable by hypothesis tests too
def assert_close():
    """The comparison used against the reference and torch: see ``_assert_close``."""
    return _assert_close


def _tuple(v):
    """torch takes ints, tuples and strings; lists become tuples."""
    return tuple(v) if isinstance(v, list) else v


def _pair(v):
    """An int or a pair as a list of two ints (what torch's aten ops take)."""
    return [int(a) for a in v] if isinstance(v, (list, tuple)) else [int(v), int(v)]


class TorchOracle:
    """torch.nn.functional forward and autograd backward, NumPy in and out."""

    def __init__(self, torch):
        self.torch = torch
        self.F = torch.nn.functional

    def _leaf(self, a):
        return self.torch.from_numpy(np.array(a, copy=True)).requires_grad_(True)

    @staticmethod
    def _grad(t):
        return None if t is None else t.grad.numpy()

    def conv2d(self, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
               padding_mode="zeros", grad_out=None):
        """y, or with ``grad_out`` (y, gx, gw, gb)."""
        tx, tw = self._leaf(x), self._leaf(weight)
        tb = None if bias is None else self._leaf(bias)
        source = tx
        per_side = isinstance(padding, (tuple, list)) and isinstance(padding[0], (tuple, list))
        strided_same = padding == "same" and _tuple(stride) not in (1, (1, 1))
        if per_side or strided_same or padding_mode != "zeros":
            # torch pads explicitly where its conv2d cannot (per side, "same" at a
            # stride: TensorFlow's rule), and nn.Conv2d pads so for its padding_mode
            import reference

            (pt, pb), (pl, pr) = reference.conv_pads(
                padding, weight.shape[2:], reference._pair(dilation), reference._pair(stride),
                x.shape[2:])
            mode = {"zeros": "constant"}.get(padding_mode, padding_mode)
            source, padding = self.F.pad(tx, (pl, pr, pt, pb), mode=mode), 0
        with warnings.catch_warnings():
            # torch notes that "same" with an even kernel pads a copy: expected here
            warnings.simplefilter("ignore", UserWarning)
            y = self.F.conv2d(source, tw, tb, stride=_tuple(stride), padding=_tuple(padding),
                              dilation=_tuple(dilation), groups=groups)
        if grad_out is None:
            return y.detach().numpy()
        y.backward(self.torch.from_numpy(np.array(grad_out, copy=True)))
        return y.detach().numpy(), self._grad(tx), self._grad(tw), self._grad(tb)

    def conv_transpose2d(self, x, weight, bias=None, stride=1, padding=0, output_padding=0,
                         dilation=1, groups=1, grad_out=None):
        """y, or with ``grad_out`` (y, gx, gw, gb)."""
        tx, tw = self._leaf(x), self._leaf(weight)
        tb = None if bias is None else self._leaf(bias)
        y = self.F.conv_transpose2d(tx, tw, tb, stride=_tuple(stride), padding=_tuple(padding),
                                    output_padding=_tuple(output_padding),
                                    dilation=_tuple(dilation), groups=groups)
        if grad_out is None:
            return y.detach().numpy()
        y.backward(self.torch.from_numpy(np.array(grad_out, copy=True)))
        return y.detach().numpy(), self._grad(tx), self._grad(tw), self._grad(tb)

    def max_pool2d(self, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                   grad_out=None):
        """(y, indices), or with ``grad_out`` (y, indices, gx)."""
        tx = self._leaf(x)
        y, idx = self.F.max_pool2d(tx, _tuple(kernel_size), _tuple(stride), _tuple(padding),
                                   _tuple(dilation), ceil_mode=ceil_mode, return_indices=True)
        if grad_out is None:
            return y.detach().numpy(), idx.numpy()
        y.backward(self.torch.from_numpy(np.array(grad_out, copy=True)))
        return y.detach().numpy(), idx.numpy(), tx.grad.numpy()

    def max_pool2d_past_the_plane(self, x, grad_out, kernel_size, stride=None, padding=0,
                                  dilation=1, ceil_mode=False):
        """``(y, indices, gx, past)``: torch's max pooling, and its backward run plane by
        plane into a buffer longer than the plane. A window without an input element has
        an index past its plane, where torch's backward writes without a check (into the
        next plane, or past the array: autograd would corrupt memory). ``gx`` is what it
        wrote inside each plane, ``past`` (N, C, extra) what it wrote after it."""
        torch, k = self.torch, _pair(kernel_size)
        s = k if stride is None else _pair(stride)
        tx = torch.from_numpy(np.array(x, copy=True))
        y, idx = self.F.max_pool2d(tx, k, s, _pair(padding), _pair(dilation),
                                   ceil_mode=ceil_mode, return_indices=True)
        N, C, H, W = x.shape
        room = max(H * W, int(idx.max()) + 1)
        gx, past = np.zeros(x.shape, x.dtype), np.zeros((N, C, room - H * W), x.dtype)
        dy = torch.from_numpy(np.array(grad_out, copy=True))
        for n in range(N):
            for c in range(C):
                buf = torch.zeros(room, dtype=tx.dtype)
                out = torch.ops.aten.max_pool2d_with_indices_backward.grad_input(
                    dy[n:n + 1, c:c + 1], tx[n:n + 1, c:c + 1], k, s, _pair(padding),
                    _pair(dilation), ceil_mode, idx[n:n + 1, c:c + 1],
                    grad_input=buf[:H * W].view(1, 1, H, W))
                assert out.data_ptr() == buf.data_ptr(), "torch reallocated grad_input"
                gx[n, c] = buf[:H * W].view(H, W).numpy()
                past[n, c] = buf[H * W:].numpy()
        return y.numpy(), idx.numpy(), gx, past

    def avg_pool2d(self, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                   count_include_pad=True, divisor_override=None, grad_out=None):
        """y, or with ``grad_out`` (y, gx)."""
        tx = self._leaf(x)
        y = self.F.avg_pool2d(tx, _tuple(kernel_size), _tuple(stride), _tuple(padding),
                              ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                              divisor_override=divisor_override)
        if grad_out is None:
            return y.detach().numpy()
        y.backward(self.torch.from_numpy(np.array(grad_out, copy=True)))
        return y.detach().numpy(), tx.grad.numpy()


@pytest.fixture(scope="session")
def torch_oracle():
    """torch.nn.functional as an oracle; skips the test when torch is not installed."""
    torch = pytest.importorskip("torch")
    # The shapes here are tiny: one thread avoids torch's per-op thread start-up cost,
    # which otherwise dominates the sweeps by two orders of magnitude.
    torch.set_num_threads(1)
    return TorchOracle(torch)


class SweepFailures:
    """Collects failing cases of a randomised sweep so that one run reports all of them."""

    def __init__(self, limit=10):
        self.limit = limit
        self.failures = []
        self.count = 0

    def check(self, label, fn):
        try:
            fn()
        except Exception as exc:  # a wrong result or an unexpected error, both a failure
            self.count += 1
            if len(self.failures) < self.limit:
                self.failures.append(f"--- {label}\n{type(exc).__name__}: {exc}")

    def assert_none(self, total):
        assert not self.count, (
            f"{self.count} of {total} cases failed; first {len(self.failures)}:\n"
            + "\n".join(self.failures))


@pytest.fixture
def sweep():
    """A fresh ``SweepFailures``: ``sweep.check(label, fn)`` per case, then ``assert_none``."""
    return SweepFailures()


def _numerical_grad(loss, a, eps):
    """Central differences of the scalar ``loss()`` wrt every element of the array ``a``,
    which is perturbed in place and restored."""
    g = np.zeros_like(a)
    flat, gflat = a.reshape(-1), g.reshape(-1)
    assert np.shares_memory(flat, a), "a must be contiguous to be perturbed in place"
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = loss()
        flat[i] = old - eps
        down = loss()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return g


@pytest.fixture
def numerical_grad():
    """``numerical_grad(loss, a, eps)``: see ``_numerical_grad``."""
    return _numerical_grad


def _relayout(a, kind):
    """``a``'s values in another memory layout (``None`` stays ``None``)."""
    if a is None:
        return None
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "moved_axes":  # last axis outermost in memory
        return np.moveaxis(np.moveaxis(a, -1, 0).copy(), 0, -1)
    if kind == "strided":  # every other element of a larger buffer
        big = np.zeros(tuple(2 * n + 1 for n in a.shape), dtype=a.dtype)
        view = big[tuple(slice(1, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    if kind == "negative":  # negative strides on every axis
        flip = tuple(slice(None, None, -1) for _ in a.shape)
        return a[flip].copy()[flip]
    if kind == "readonly":
        out = a.copy()
        out.flags.writeable = False
        return out
    raise AssertionError(kind)


@pytest.fixture(params=["fortran", "moved_axes", "strided", "negative", "readonly"])
def relayout(request):
    """A function giving an array's values in one non-default memory layout; tests that
    use it run once per layout."""
    kind = request.param

    def apply(a):
        return _relayout(a, kind)

    apply.kind = kind
    return apply
