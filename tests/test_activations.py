"""ReLU's one-pass kernels (cynet._activations) against NumPy, on every path: small and
multi-block arrays, 1 and 2 threads, both float dtypes, the fallback for other arrays."""
import numpy as np
import pytest

import cynet
from cynet import _activations
from cynet.layers import ReLU

SIZES = [1, 7, 65536 * 2 + 1, 65536 * 5 + 3]  # up to several threads' shares, uneven


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request, restore_threads):
    cynet.set_num_threads(request.param)
    return request.param


def special_values(rng, n, dtype):
    x = rng.standard_normal(n).astype(dtype)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], dtype)
    x[rng.integers(0, n, size=min(n, 50))] = rng.choice(specials, size=min(n, 50))
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", SIZES)
def test_relu_matches_numpy_to_the_bit(n, dtype, threads, rng):
    x = special_values(rng, n, dtype).reshape(n, 1, 1, 1)
    g = special_values(rng, n, dtype).reshape(x.shape)
    layer = ReLU()
    y = layer.forward(x)
    want = np.maximum(x, 0)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(want))  # -0.0 -> +0.0, as NumPy
    gx = layer.backward(g)
    # the gradient passes where the output is positive; elsewhere it is 0, also for a
    # NaN or infinite incoming gradient (PyTorch's threshold_backward)
    np.testing.assert_array_equal(gx, np.where(want > 0, g, 0))
    assert gx.dtype == dtype


@pytest.mark.parametrize("make", [
    lambda rng: rng.standard_normal((6, 8))[:, ::2],               # not contiguous
    lambda rng: rng.standard_normal((5, 4)).astype(np.float16),    # no kernel for float16
    lambda rng: rng.integers(-5, 5, size=(5, 4)),                  # integers
], ids=["strided", "float16", "int"])
def test_relu_other_arrays_take_numpy(make, rng):
    x = make(rng)
    layer = ReLU()
    y = layer.forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    assert y.dtype == x.dtype
    g = np.ones_like(y)
    np.testing.assert_array_equal(layer.backward(g), (x > 0).astype(g.dtype))


def test_relu_backward_refuses_a_gradient_of_another_shape(rng):
    layer = ReLU()
    layer.forward(rng.standard_normal((2, 3)).astype(np.float32))
    with pytest.raises(ValueError, match="grad_out has shape"):
        layer.backward(np.ones((3, 2), np.float32))


@pytest.mark.parametrize("call", [
    lambda a: _activations.relu_forward(a, a[:-1], 1),
    lambda a: _activations.relu_backward(a, a[:-1], a, 1),
    lambda a: _activations.relu_backward(a, a, a[:-1], 1),
], ids=["forward_out", "backward_y", "backward_out"])
def test_relu_kernels_refuse_arrays_of_another_length(call):
    with pytest.raises(ValueError, match=r"(same length|elements).*\b(9|10)\b"):
        call(np.zeros(10, np.float32))
