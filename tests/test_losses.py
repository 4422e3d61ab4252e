"""Tests of cynet.losses: cross_entropy and mse, values and gradients.

Each loss is checked against a float64 NumPy reference written here (log-sum-exp by
``np.logaddexp.reduce``, a different algorithm from the max-shift in cynet), against
central differences, and (where torch is installed) against torch.nn.functional. Large
logits, dtypes, memory layouts, unmodified inputs and every argument error have their
own tests.
"""
import numpy as np
import pytest

from cynet import losses
from cynet.losses import cross_entropy, mse

DTYPES = [np.float32, np.float64]
# loss and grad tolerance per dtype, relative to max(1, max |expected|)
RTOL = {np.float32: 2e-6, np.float64: 1e-12}


# --------------------------------------------------------------------------- references


def cross_entropy_reference(logits, labels):
    """Mean of logsumexp(z) - z[label] and its gradient (softmax - onehot) / N, float64."""
    z = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(labels))
    lse = np.logaddexp.reduce(z, axis=1)
    grad = np.exp(z - lse[:, None])
    grad[rows, labels] -= 1.0
    return float(np.mean(lse - z[rows, labels])), grad / len(labels)


def one_hot(labels, k):
    out = np.zeros((len(labels), k))
    out[np.arange(len(labels)), labels] = 1.0
    return out


def mse_reference(outputs, dense_targets):
    d = np.asarray(outputs, dtype=np.float64) - np.asarray(dense_targets, dtype=np.float64)
    return float(np.mean(d * d)), 2.0 * d / d.size


def check_loss(result, expected, dtype, assert_close, rtol=None):
    """``result`` = (Python float loss, grad of ``dtype``) matches ``expected``."""
    loss, grad = result
    exp_loss, exp_grad = expected
    assert type(loss) is float, f"loss is {type(loss).__name__}, expected float"
    rtol = RTOL[dtype] if rtol is None else rtol
    assert_close(np.array(loss), np.array(exp_loss), dtype=np.float64, what="loss", rtol=rtol)
    assert_close(grad, exp_grad, dtype=dtype, what="grad", rtol=rtol)


def logits_and_labels(rng, n, k, scale, dtype):
    logits = (rng.standard_normal((n, k)) * scale).astype(dtype)
    return logits, rng.integers(0, k, size=n)


CE_CASES = [
    pytest.param(1, 1, 1.0, id="one_class"),
    pytest.param(1, 3, 1.0, id="one_row"),
    pytest.param(5, 4, 1.0, id="small"),
    pytest.param(16, 10, 3.0, id="batch"),
    pytest.param(7, 5, 50.0, id="wide_range"),
    pytest.param(6, 4, 1e4, id="huge"),
]


# --------------------------------------------------------------------------- cross_entropy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, k, scale", CE_CASES)
def test_cross_entropy_matches_reference(rng, assert_close, n, k, scale, dtype):
    logits, labels = logits_and_labels(rng, n, k, scale, dtype)
    before = logits.copy()
    result = cross_entropy(logits, labels)
    check_loss(result, cross_entropy_reference(logits, labels), dtype, assert_close)
    np.testing.assert_array_equal(logits, before, err_msg="logits were modified")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, k, scale", CE_CASES)
def test_cross_entropy_matches_torch(torch_oracle, rng, assert_close, n, k, scale, dtype):
    torch = torch_oracle.torch
    logits, labels = logits_and_labels(rng, n, k, scale, dtype)
    t = torch.from_numpy(logits.copy()).requires_grad_(True)
    loss = torch_oracle.F.cross_entropy(t, torch.from_numpy(labels))
    loss.backward()
    expected = (loss.item(), t.grad.numpy())
    check_loss(cross_entropy(logits, labels), expected, dtype, assert_close)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("magnitude", [1e4, 1e30, 1e38])
def test_cross_entropy_huge_logits_stay_finite(assert_close, magnitude, dtype):
    m = magnitude
    # one dominant logit per row, so that the float64 reference is exact too
    logits = np.array([[m, 0.0, -m], [-m, m, 0.0], [0.0, -m, 1.0], [m / 2, -m, m]], dtype=dtype)
    labels = np.array([2, 0, 1, 2])
    loss, grad = cross_entropy(logits, labels)
    assert np.isfinite(loss) and np.isfinite(grad).all(), (loss, grad)
    check_loss((loss, grad), cross_entropy_reference(logits, labels), dtype, assert_close)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("offset", [1e4, -3e4, 1e30, -1e30])
def test_cross_entropy_ignores_huge_row_offsets(rng, assert_close, offset, dtype):
    """Adding a constant to a row changes no probability: huge offsets must not overflow or
    lose the small differences (eighths, exact in float32 next to 3e4; for 1e30 all
    logits of a row are equal)."""
    small = rng.integers(-32, 33, size=(5, 6)) / 8.0
    if abs(offset) > 1e5:
        small[:] = small[:, :1]
    labels = rng.integers(0, 6, size=5)
    shifted = (small + offset * rng.integers(1, 4, size=(5, 1))).astype(dtype)
    assert np.array_equal(shifted - shifted[:, :1], (small - small[:, :1]).astype(dtype))
    check_loss(cross_entropy(shifted, labels), cross_entropy_reference(small, labels), dtype,
               assert_close)


@pytest.mark.parametrize("n, k, scale", CE_CASES[:5])
def test_cross_entropy_grad_matches_central_differences(rng, assert_close, numerical_grad,
                                                       n, k, scale):
    logits, labels = logits_and_labels(rng, n, k, scale, np.float64)
    _, grad = cross_entropy(logits, labels)
    expected = numerical_grad(lambda: cross_entropy(logits, labels)[0], logits, 1e-6)
    assert_close(grad, expected, what="grad", rtol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_any_layout_and_label_dtype(rng, relayout, dtype):
    logits, labels = logits_and_labels(rng, 6, 5, 2.0, dtype)
    loss, grad = cross_entropy(logits, labels)
    loss2, grad2 = cross_entropy(relayout(logits), labels.astype(np.uint8))
    assert loss2 == loss
    np.testing.assert_array_equal(grad2, grad)


@pytest.mark.parametrize("logits, labels, error, match", [
    pytest.param([[0.0, 1.0, 2.0]] * 2, [0, 3], ValueError, r"labels\[1\] = 3 .*\[0, 3\)",
                 id="label_too_big"),
    pytest.param([[0.0, 1.0]] * 2, [-1, 0], ValueError, r"labels\[0\] = -1", id="label_negative"),
    pytest.param([[0.0, 1.0]] * 3, np.array([0, 2**63 + 5, 2**64 - 1], np.uint64), ValueError,
                 r"labels\[1\] = 9223372036854775813 ", id="uint64_label_past_int64"),
    pytest.param([[0.0, 1.0]] * 2, [0.0, 1.5], ValueError, "integer.*float64", id="float_labels"),
    pytest.param([[0.0, 1.0]] * 2, [True, False], ValueError, "integer.*bool", id="bool_labels"),
    pytest.param([[0.0, 1.0]] * 2, [[0], [1]], ValueError, r"labels must have shape \(2,\)",
                 id="labels_2d"),
    pytest.param([[0.0, 1.0]] * 2, [0, 1, 1], ValueError, r"shape \(2,\)", id="labels_too_many"),
    pytest.param([0.0, 1.0], [0], ValueError, "logits must be 2-D", id="logits_1d"),
    pytest.param(np.zeros((0, 3)), np.zeros(0, int), ValueError, "at least one row",
                 id="empty_batch"),
    pytest.param(np.zeros((2, 3), np.int64), [0, 1], TypeError, "logits .*int64",
                 id="int_logits"),
    pytest.param(np.zeros((2, 3), np.float16), [0, 1], TypeError, "logits .*float16",
                 id="half_logits"),
])
def test_cross_entropy_rejects(logits, labels, error, match):
    with pytest.raises(error, match=match):
        cross_entropy(logits, labels)


# --------------------------------------------------------------------------- mse


def dense_targets(rng, shape, kind):
    """Targets of ``kind``: a float32/float64 array of ``shape``, or class labels."""
    if kind == "labels":
        return rng.integers(0, shape[1], size=shape[0])
    return rng.standard_normal(shape).astype(kind)


MSE_CASES = [
    pytest.param((5, 3), np.float64, id="2d"),
    pytest.param((2, 3, 4, 5), np.float32, id="4d"),
    pytest.param((7,), np.float64, id="1d"),
    pytest.param((1, 1), np.float32, id="single"),
    pytest.param((6, 4), "labels", id="labels_one_hot"),
    pytest.param((1, 9), "labels", id="one_label"),
]


def dense(targets, shape):
    return one_hot(targets, shape[1]) if targets.dtype.kind == "i" else targets


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, kind", MSE_CASES)
def test_mse_matches_reference(rng, assert_close, shape, kind, dtype):
    outputs = rng.standard_normal(shape).astype(dtype)
    targets = dense_targets(rng, shape, kind)
    before = outputs.copy(), targets.copy()
    result = mse(outputs, targets)
    check_loss(result, mse_reference(outputs, dense(targets, shape)), dtype, assert_close)
    np.testing.assert_array_equal(outputs, before[0], err_msg="outputs were modified")
    np.testing.assert_array_equal(targets, before[1], err_msg="targets were modified")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, kind", MSE_CASES)
def test_mse_matches_torch(torch_oracle, rng, assert_close, shape, kind, dtype):
    torch = torch_oracle.torch
    outputs = rng.standard_normal(shape).astype(dtype)
    targets = dense_targets(rng, shape, kind)
    t = torch.from_numpy(outputs.copy()).requires_grad_(True)
    if kind == "labels":
        t_targets = torch_oracle.F.one_hot(torch.from_numpy(targets), shape[1]).to(t.dtype)
    else:
        t_targets = torch.from_numpy(targets.astype(dtype))
    loss = torch_oracle.F.mse_loss(t, t_targets)
    loss.backward()
    check_loss(mse(outputs, targets), (loss.item(), t.grad.numpy()), dtype, assert_close)


@pytest.mark.parametrize("shape, kind", MSE_CASES)
def test_mse_grad_matches_central_differences(rng, assert_close, numerical_grad, shape, kind):
    outputs = rng.standard_normal(shape)
    targets = dense_targets(rng, shape, kind)
    _, grad = mse(outputs, targets)
    expected = numerical_grad(lambda: mse(outputs, targets)[0], outputs, 1e-6)
    assert_close(grad, expected, what="grad", rtol=1e-7)


def test_mse_float64_targets_keep_float32_grad(rng, assert_close):
    outputs = rng.standard_normal((4, 3)).astype(np.float32)
    targets = rng.standard_normal((4, 3))
    check_loss(mse(outputs, targets), mse_reference(outputs, targets.astype(np.float32)),
               np.float32, assert_close)


def test_mse_integer_targets_of_outputs_shape_are_values_not_labels(assert_close):
    outputs = np.array([0.5, 2.0, -1.0])
    targets = np.array([1, 2, 3])  # 1-D ints, but outputs is 1-D: regression targets
    check_loss(mse(outputs, targets), mse_reference(outputs, targets), np.float64, assert_close)


def test_mse_any_layout(rng, relayout):
    outputs = rng.standard_normal((3, 4, 5)).astype(np.float32)
    targets = rng.standard_normal((3, 4, 5)).astype(np.float32)
    loss, grad = mse(outputs, targets)
    loss2, grad2 = mse(relayout(outputs), relayout(targets))
    assert loss2 == loss
    np.testing.assert_array_equal(grad2, grad)


@pytest.mark.parametrize("outputs, targets, error, match", [
    pytest.param(np.zeros((2, 3)), np.zeros((3, 2)), ValueError, r"targets has shape \(3, 2\)",
                 id="shape_mismatch"),
    pytest.param(np.zeros((2, 3)), np.zeros(6), ValueError, r"targets has shape \(6,\)",
                 id="float_1d_targets"),
    pytest.param(np.zeros((2, 3)), np.array([0, 5]), ValueError, r"targets\[1\] = 5",
                 id="label_out_of_range"),
    pytest.param(np.zeros((2, 3)), np.array([0, 1, 2]), ValueError,
                 r"targets must have shape \(2,\)", id="label_count"),
    pytest.param(np.zeros((2, 3)), np.full((2, 3), "a"), TypeError,
                 "targets must be a numeric array", id="string_targets"),
    pytest.param(np.zeros((0, 3)), np.zeros((0, 3)), ValueError, "outputs must not be empty",
                 id="empty"),
    pytest.param(np.zeros((2, 3), np.int32), np.zeros((2, 3)), TypeError, "outputs .*int32",
                 id="int_outputs"),
])
def test_mse_rejects(outputs, targets, error, match):
    with pytest.raises(error, match=match):
        mse(outputs, targets)


# --------------------------------------------------------------------------- get_loss


@pytest.mark.parametrize("name, fn", [("cross_entropy", cross_entropy), ("mse", mse)])
def test_get_loss(name, fn):
    assert losses.get_loss(name) is fn


@pytest.mark.parametrize("name, error, match", [
    pytest.param("crossentropy", ValueError, "did you mean 'cross_entropy'", id="typo"),
    pytest.param("mes", ValueError, "did you mean 'mse'", id="swapped"),
    pytest.param("hinge", ValueError, "unknown loss 'hinge'.*cross_entropy, mse", id="unknown"),
    pytest.param(None, TypeError, "loss name must be a string", id="not_a_string"),
])
def test_get_loss_rejects(name, error, match):
    with pytest.raises(error, match=match):
        losses.get_loss(name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_non_finite_logits_give_a_non_finite_loss(dtype):
    # the model stops on a non-finite loss; the kernel must not hide one
    for bad in (np.nan, np.inf):
        logits = np.array([[0.0, 1.0, 2.0], [bad, 0.0, 1.0]], dtype)
        loss, grad = cross_entropy(logits, np.array([0, 1]))
        assert not np.isfinite(loss) and grad.dtype == dtype and grad.shape == logits.shape
