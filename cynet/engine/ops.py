"""The element-wise and optimizer kernels the layers, losses and optimizers call.

Each takes arrays its caller has checked and picks its threads by the policy's rule
for small arrays. :func:`fits_kernel` says when arrays can go to the one-pass kernels
(one float dtype, C-contiguous); callers keep a NumPy fallback for the rest.
"""
import numpy as np

from .kernels import activations, im2col, losses, optim
from .threads import threads_for
from .workers import matmul

__all__ = ["fits_kernel", "relu", "relu_backward", "channel_sums", "sgd_update",
           "adam_update", "softmax_cross_entropy", "matmul"]

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def fits_kernel(*arrays):
    """The arrays share one float dtype the kernels are built for and are C-contiguous."""
    dtype = arrays[0].dtype
    return dtype in _KERNEL_DTYPES and all(
        a.dtype == dtype and a.flags.c_contiguous for a in arrays)


def relu(x):
    """``max(x, 0)`` in one pass (``fits_kernel(x)``): NaN propagates, -0.0 gives +0.0."""
    y = np.empty_like(x)
    activations.relu_forward(x.reshape(-1), y.reshape(-1), threads_for(x.size))
    return y


def relu_backward(grad_out, y):
    """``grad_out`` where the forward output ``y > 0``, else 0 (also for inf or NaN)."""
    gx = np.empty_like(grad_out)
    activations.relu_backward(grad_out.reshape(-1), y.reshape(-1), gx.reshape(-1),
                              threads_for(gx.size))
    return gx


def channel_sums(x, out):
    """``out[c] = x[:, c].sum()`` for (N, C, P) ``x``, accumulated in double."""
    im2col.channel_sums(x, out, threads_for(x.size))
    return out


def sgd_update(p, g, buf, lr, momentum, weight_decay, nesterov, first_step):
    """One fused SGD step in place (``buf``: the momentum buffer, or ``p`` without)."""
    optim.sgd_update(p.reshape(-1), g.reshape(-1), buf.reshape(-1), lr, momentum,
                     weight_decay, nesterov, first_step, threads_for(p.size))


def adam_update(p, g, m, v, b1, b2, eps, step_size, bias_correction2_sqrt, weight_decay):
    """One fused Adam step in place on ``p``, ``m`` and ``v``."""
    optim.adam_update(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), b1, b2,
                      eps, step_size, bias_correction2_sqrt, weight_decay,
                      threads_for(p.size))


def softmax_cross_entropy(logits, labels, grad, smoothing=0.0):
    """``(loss, bad)`` of the mean softmax cross-entropy with ``smoothing`` of the labels;
    ``grad`` is filled (see ``cynet._losses``)."""
    return losses.softmax_cross_entropy(logits, labels, grad, smoothing)
