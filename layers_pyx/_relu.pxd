# The ReLU rule shared by the activation kernels and the max-pooling with a fused ReLU.

from cython cimport floating


cdef inline floating relu(floating v) noexcept nogil:
    """``max(v, 0)`` like ``np.maximum(v, 0)``: NaN propagates, -0.0 gives +0.0 (a select
    the compiler vectorises, not a branch)."""
    return v if (v > 0 or v != v) else 0
