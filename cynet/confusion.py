"""Per-class figures of a classifier: the confusion matrix and per-class accuracy.

    matrix = confusion_matrix(model, x, y)   # (K, K) int64: rows true, columns predicted
    matrix = count(outputs, y)               # the same from outputs already computed
    per_class_accuracy(matrix)               # (K,) float: NaN for a class with no image
"""
import numpy as np

from .training import check_inputs, check_labels, predict

__all__ = ["confusion_matrix", "count", "per_class_accuracy", "FASHION_MNIST_CLASSES"]

# the class names of Fashion-MNIST (Xiao et al., 2017), label order
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")


def confusion_matrix(model, x, y, batch_size=None):
    """``matrix[i, j]``: the images of label ``i`` that ``model`` predicts as class ``j``
    (the argmax of its outputs), over its ``n_outputs`` classes."""
    x = check_inputs(x, model.input_shape)
    y = check_labels(y, len(x), "cross_entropy", model.n_outputs)
    return count(predict(model, x, batch_size), y)


def count(outputs, y):
    """The confusion matrix of class scores ``outputs`` (N, K) against labels ``y`` in
    [0, K)."""
    k = outputs.shape[1]
    predicted = outputs.argmax(axis=1)
    return np.bincount(np.asarray(y, np.int64) * k + predicted, minlength=k * k).reshape(k, k)


def per_class_accuracy(matrix):
    """The share of each class's images predicted right (NaN where a class has none)."""
    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / np.maximum(totals, 1), np.nan)
