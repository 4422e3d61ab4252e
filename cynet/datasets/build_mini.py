"""Build ``fashion-mnist-mini.npz``: a class-balanced subset of Fashion-MNIST.

    python -m cynet.datasets.build_mini [--source DIR] [--out FILE]

Takes ``TRAIN_PER_CLASS`` training and ``TEST_PER_CLASS`` test images of every class from
the IDX files in ``--source`` (default: Debian's ``dataset-fashion-mnist`` directory)
and writes them uint8 with ``np.savez_compressed`` to ``--out`` (default: the packaged
file next to this script). The choice is deterministic: one ``np.random.default_rng(SEED)``
gives a permutation of each class's indices (training classes in ascending order, then
test classes), the first ones of each are kept, and the kept indices are sorted.
"""
import argparse
import os
import sys

import numpy as np

from cynet._atomic import atomic_write
from cynet.data import DEBIAN_DIR, DataError, load_idx_dir
from cynet.datasets import MINI_FILE

TRAIN_PER_CLASS = 600
TEST_PER_CLASS = 100
SEED = 0
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), MINI_FILE)


def balanced_indices(labels, per_class, rng):
    """Sorted indices of ``per_class`` samples of every class in ``labels``."""
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise DataError(f"class {c} has only {len(members)} samples, {per_class} wanted")
        chosen.append(rng.permutation(members)[:per_class])
    return np.sort(np.concatenate(chosen))


def build(source):
    """The mini set's arrays, uint8, images (N, 28, 28), from the IDX files in ``source``."""
    ds = load_idx_dir(source)
    if ds.x_test is None:
        raise DataError(f"{source}: no test split (t10k-images-idx3-ubyte[.gz] and "
                        "t10k-labels-idx1-ubyte[.gz]) to take the test images from")
    rng = np.random.default_rng(SEED)
    train = balanced_indices(ds.y_train, TRAIN_PER_CLASS, rng)
    test = balanced_indices(ds.y_test, TEST_PER_CLASS, rng)
    return {
        "x_train": ds.x_train[train, 0], "y_train": ds.y_train[train].astype(np.uint8),
        "x_test": ds.x_test[test, 0], "y_test": ds.y_test[test].astype(np.uint8),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cynet.datasets.build_mini",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=DEBIAN_DIR,
                        help="directory of the Fashion-MNIST IDX files (default: %(default)s)")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help="the .npz file to write (default: the packaged file)")
    args = parser.parse_args(argv)
    try:
        arrays = build(args.source)
    except DataError as exc:
        parser.exit(1, f"error: {exc}\n")
    # replaced atomically: a killed build leaves the previous file, not half of one (the
    # packaged file is every default run's data); a file object: numpy adds no suffix
    atomic_write(args.out, lambda f: np.savez_compressed(f, **arrays))
    print(f"wrote {args.out} ({os.path.getsize(args.out):,} bytes) from {args.source}")
    for key, a in arrays.items():
        print(f"  {key}: {a.dtype} {a.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
