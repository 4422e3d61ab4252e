"""Training data: the packaged Fashion-MNIST subset, the full set, IDX folders, .npz files.

    from cynet.data import load_data
    ds = load_data("fashion-mnist-mini")
    model.fit(ds.x_train, ds.y_train, validation_data=(ds.x_test, ds.y_test))

``load_data(spec)`` resolves ``spec`` in this order:

1. ``"fashion-mnist-mini"``: the class-balanced subset shipped inside the package;
2. ``"fashion-mnist"``: the full set, IDX files in ``$CYNET_DATA_DIR`` (the directory
   itself or its ``fashion-mnist/`` subdirectory) or else in Debian's
   ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``);
3. an existing directory: MNIST-layout IDX files inside it, each optionally gzipped;
4. a path ending ``.npz``: arrays ``x_train``, ``y_train`` and optionally ``x_test``,
   ``y_test``.

``load_inputs(path, input_shape)`` reads the images ``x`` of an .npz file for prediction.

Images come back as ``(N, C, H, W)``: uint8 stays uint8 (the model scales it per batch),
float64 becomes float32 (NaN or infinite values are refused). Labels come back as int64
(negative ones are refused). Every problem with a source -- a missing, truncated or
corrupt file, arrays of the wrong dtype or shape -- is a ``DataError`` naming the file
and what is wrong.
"""
import contextlib
import gzip
import os
import stat
import zlib
from dataclasses import dataclass
from importlib import resources

import numpy as np

from ._npzfile import NpzReader
from ._regular import NotARegularFileError, kind, open_regular
from ._suggest import closest, did_you_mean, layout_hint
from .datasets import MINI_FILE, MINI_NAME

FULL_NAME = "fashion-mnist"
BUILTIN_NAMES = (MINI_NAME, FULL_NAME)
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
DATA_DIR_VARIABLE = "CYNET_DATA_DIR"

# (images, labels) file names of each split, MNIST layout
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_UINT8 = 0x08
_READ_CHUNK = 1 << 20

ACCEPTED_FORMS = (
    f"'{MINI_NAME}' (packaged subset), '{FULL_NAME}' (full set, see ${DATA_DIR_VARIABLE}), "
    "a directory of IDX files (train-images-idx3-ubyte[.gz], ...), or a path to an .npz "
    "file with x_train, y_train[, x_test, y_test]"
)


class DataError(ValueError):
    """A data source is missing, malformed or holds arrays of the wrong kind."""


@dataclass(frozen=True, repr=False)
class Dataset:
    """Images ``(N, C, H, W)`` (uint8 or float32) and int64 labels ``(N,)``; the test
    split is ``None`` when the source has none."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray = None
    y_test: np.ndarray = None

    def __repr__(self):
        def shape(a):
            return "None" if a is None else f"{a.dtype}{list(a.shape)}"

        return (f"Dataset({self.name!r}, x_train={shape(self.x_train)}, "
                f"y_train={shape(self.y_train)}, x_test={shape(self.x_test)}, "
                f"y_test={shape(self.y_test)})")


# ---------------------------------------------------------------------- entry point
def load_data(spec):
    """The dataset named or located by ``spec`` (a str or os.PathLike): see the module
    docstring for the accepted forms."""
    if not isinstance(spec, (str, os.PathLike)):
        raise DataError(f"data source must be a name or a path, got {type(spec).__name__}. "
                        f"Accepted: {ACCEPTED_FORMS}")
    text = os.fsdecode(spec)
    if text == MINI_NAME:
        return _load_mini()
    if text == FULL_NAME:
        return load_idx_dir(find_fashion_mnist(), name=FULL_NAME)
    if os.path.isdir(text):
        if text.lower().endswith(".npz") and not _has_idx_files(text):
            raise DataError(f"{text}: is a directory, not an .npz file")
        return load_idx_dir(text)
    if text.lower().endswith(".npz"):
        return load_npz(text)
    raise DataError(_unresolved(text))


def _unresolved(text):
    """Why ``text`` names no data source, with the accepted forms."""
    if os.path.exists(text):
        mode = os.stat(text).st_mode
        what = "" if stat.S_ISREG(mode) else f" (it is {kind(mode)})"
        problem = f"{text}: not a directory of IDX files nor an .npz file{what}"
    elif os.sep in text or (os.altsep and os.altsep in text) or "." in text:
        problem = f"{text}: no such file or directory"
    else:
        close = closest(text, BUILTIN_NAMES)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problem = f"unknown dataset {text!r}{hint}"
    return f"{problem}. Accepted: {ACCEPTED_FORMS}"


# ---------------------------------------------------------------------- built-in sets
def _load_mini():
    packaged = resources.files("cynet.datasets") / MINI_FILE
    if not packaged.is_file():
        raise DataError(
            f"{MINI_NAME}: the packaged file {MINI_FILE} is missing from this cynet "
            "installation; regenerate it with `python -m cynet.datasets.build_mini`")
    with resources.as_file(packaged) as path:
        return load_npz(path, name=MINI_NAME)


def find_fashion_mnist():
    """The directory holding the full Fashion-MNIST IDX files: ``$CYNET_DATA_DIR`` (itself
    or its ``fashion-mnist/`` subdirectory) when set, else Debian's directory."""
    base = os.environ.get(DATA_DIR_VARIABLE)
    candidates = [base, os.path.join(base, FULL_NAME)] if base else [DEBIAN_DIR]
    for directory in candidates:
        if _has_idx_files(directory):
            return directory
    where = " or ".join(candidates)
    raise DataError(
        f"{FULL_NAME}: no IDX files in {where}; install Debian's package with "
        f"`apt-get install dataset-fashion-mnist` (it puts them in {DEBIAN_DIR}), or set "
        f"{DATA_DIR_VARIABLE} to a directory holding the four IDX files "
        f"({', '.join(n for pair in IDX_FILES.values() for n in pair)}, each optionally .gz)")


def _has_idx_files(directory):
    return os.path.isdir(directory) and any(
        _find_idx(directory, n) for pair in IDX_FILES.values() for n in pair)


# ---------------------------------------------------------------------- IDX files
def load_idx_dir(directory, name=None):
    """The train split (required) and test split (optional, but both files or neither)
    from MNIST-layout IDX files in ``directory``."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise DataError(f"{directory}: no such directory")
    x_train, y_train, train_files = _read_split(directory, "train", required=True)
    x_test, y_test, test_files = _read_split(directory, "test", required=False)
    files = dict(zip(("x_train", "y_train", "x_test", "y_test"), train_files + test_files))
    return _dataset(name or directory, x_train, y_train, x_test, y_test, files=files)


def _read_split(directory, split, required):
    """(images, labels, [their files]) of one split, or (None, None, []) for an absent
    optional split."""
    names = IDX_FILES[split]
    paths = [_find_idx(directory, n) for n in names]
    if not required and paths == [None, None]:
        return None, None, []
    for i, path in enumerate(paths):
        if path is None:
            partner = "" if required else f" (its partner {names[1 - i]} is there)"
            raise DataError(f"{os.path.join(directory, names[i])}[.gz]: file not found{partner}")
    images, labels = read_idx(paths[0], ndim=3), read_idx(paths[1], ndim=1)
    if len(images) != len(labels):
        raise DataError(f"{paths[0]} holds {len(images)} images but {paths[1]} holds "
                        f"{len(labels)} labels")
    return images, labels, paths


def _find_idx(directory, name):
    """The path of ``name`` (uncompressed preferred) or ``name.gz`` in ``directory``."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def read_idx(path, ndim):
    """The uint8 array of the IDX file ``path`` (gzipped when it ends ``.gz``), which must
    have ``ndim`` dimensions (3 for images, 1 for labels)."""
    compressed = os.fspath(path).endswith(".gz")
    try:
        with _open_idx(path, compressed) as f:
            shape = _read_idx_header(f, path, ndim)
            if not compressed:  # the size is known: refuse a wrong one before allocating
                _check_payload_size(path, shape, os.fstat(f.fileno()).st_size - f.tell())
            return _read_idx_payload(f, path, shape)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except NotARegularFileError as exc:
        raise DataError(str(exc)) from None
    except (OSError, EOFError, zlib.error) as exc:  # unreadable or a corrupt .gz
        raise DataError(f"{path}: cannot read: {exc}") from exc


@contextlib.contextmanager
def _open_idx(path, compressed):
    """The IDX file, decompressed as it is read when ``compressed``; a regular file only."""
    with open_regular(path) as f:
        if compressed:
            with gzip.GzipFile(fileobj=f, mode="rb") as z:
                yield z
        else:
            yield f


def _read_idx_header(f, path, ndim):
    """The shape given by the header, after checking the magic number."""
    expected = IDX_UINT8 << 8 | ndim
    head = f.read(4)
    if len(head) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(head)} bytes)")
    if head[:2] != b"\0\0" or head[3] != ndim:
        raise DataError(f"{path}: magic number 0x{head.hex()} is not 0x{expected:08x} "
                        f"(an IDX file of {ndim} dimension{'s' if ndim > 1 else ''})")
    if head[2] != IDX_UINT8:
        raise DataError(f"{path}: IDX data type byte 0x{head[2]:02x} is not 0x08 (uint8)")
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header (expected {ndim} dimension sizes)")
    return tuple(int(d) for d in np.frombuffer(dims, dtype=">u4"))


def _check_payload_size(path, shape, size):
    """Refuse a payload of ``size`` bytes that is not the ``prod(shape)`` the header gives."""
    needed = int(np.prod(shape, dtype=object))
    if needed > np.iinfo(np.intp).max:
        raise DataError(f"{path}: header claims an array of shape {shape}, too large")
    if size < needed:
        raise DataError(f"{path}: truncated: the header's shape {shape} needs {needed} bytes "
                        f"of data, the file has {size}")
    if size > needed:
        raise DataError(f"{path}: trailing bytes after the {needed} bytes of data the "
                        f"header's shape {shape} calls for ({size - needed} more)")


def _read_idx_payload(f, path, shape):
    """Exactly ``prod(shape)`` bytes, read in chunks straight into the array."""
    try:
        out = np.empty(shape, dtype=np.uint8)
    except (MemoryError, ValueError):
        raise DataError(f"{path}: header claims an array of shape {shape}, too large") from None
    view = memoryview(out.reshape(-1))  # a 1-D byte view, also of an empty array
    filled = 0
    while filled < out.size:
        n = f.readinto(view[filled:filled + _READ_CHUNK])
        if not n:
            raise DataError(f"{path}: truncated: the header's shape {shape} needs "
                            f"{out.size} bytes of data, the file has {filled}")
        filled += n
    if f.read(1):
        raise DataError(f"{path}: trailing bytes after the {out.size} bytes of data the "
                        f"header's shape {shape} calls for")
    return out


# ---------------------------------------------------------------------- .npz files
DATASET_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_npz(path, name=None):
    """``x_train``, ``y_train`` and optionally ``x_test``, ``y_test`` from an .npz file."""
    arrays, names = _read_npz(path, DATASET_KEYS)
    for key in ("x_train", "y_train"):
        if key not in arrays:
            # a hint only among the names not read: y_train is not a misspelt x_train
            others = [n for n in names if n not in DATASET_KEYS]
            raise DataError(f"{path}: no array {key!r}{did_you_mean(key, others)} (the file "
                            f"has {sorted(names) or 'none'})")
    _refuse_misspelt(path, arrays, names, DATASET_KEYS)
    if ("x_test" in arrays) != ("y_test" in arrays):
        have, lack = ("x_test", "y_test") if "x_test" in arrays else ("y_test", "x_test")
        raise DataError(f"{path}: has {have} but no {lack}: give both or neither")
    return _dataset(name or os.fspath(path), arrays["x_train"], arrays["y_train"],
                    arrays.get("x_test"), arrays.get("y_test"), source=path)


def load_inputs(path, input_shape=None):
    """The images ``x`` of an .npz file, for prediction: ``(N, C, H, W)`` uint8 or float32,
    checked against the model's ``input_shape`` (C, H, W) when given."""
    arrays, names = _read_npz(path, ("x",))
    if "x" not in arrays:
        raise DataError(f"{path}: no array 'x' (the images to predict)"
                        f"{did_you_mean('x', names)}")
    x = _images(arrays["x"], os.fspath(path), "x")
    if len(x) == 0:
        raise DataError(f"{path}: x holds no images")
    if input_shape is not None and x.shape[1:] != tuple(input_shape):
        raise DataError(f"{path}: x holds images of shape {x.shape[1:]}, but the model "
                        f"takes {tuple(input_shape)}{layout_hint(x.shape[1:], input_shape)}")
    return x


def _read_npz(path, keys):
    """``(arrays, names)``: the arrays among ``keys`` that the .npz file holds (others are
    never read, nothing is unpickled) and the names of all its members."""
    with NpzReader(path, DataError) as npz:
        return {k: npz.array(k) for k in keys if k in npz.names}, npz.names


def _refuse_misspelt(path, arrays, names, keys):
    """Refuse a member that looks like a misspelt absent key (``x_tst``): ignored, it
    would silently drop that array. Other extra members are ignored."""
    absent = [k for k in keys if k not in arrays]
    for name in names:
        hint = did_you_mean(name, absent, cutoff=0.75) if name not in keys else ""
        if hint:
            raise DataError(f"{path}: unknown array {name!r}{hint} (the arrays read are "
                            f"{', '.join(keys)})")


# ---------------------------------------------------------------------- array checks
def _dataset(name, x_train, y_train, x_test, y_test, source=None, files=None):
    """A checked ``Dataset``; errors name ``source`` (default: ``name``), or for one array
    its own file when ``files`` maps the array's key to one."""
    where = os.fspath(source) if source is not None else name
    files = files or {}

    def at(key):
        return files.get(key, where)

    x_train = _images(x_train, at("x_train"), "x_train")
    if len(x_train) == 0:
        raise DataError(f"{at('x_train')}: x_train holds no images")
    y_train = _labels(y_train, len(x_train), at("y_train"), "y_train")
    if x_test is not None:
        x_test = _images(x_test, at("x_test"), "x_test")
        if len(x_test) == 0:
            raise DataError(f"{at('x_test')}: x_test holds no images (leave x_test and "
                            "y_test out for no test split)")
        if x_test.shape[1:] != x_train.shape[1:]:
            raise DataError(f"{where}: x_test images have shape {x_test.shape[1:]}, "
                            f"x_train images {x_train.shape[1:]}")
        y_test = _labels(y_test, len(x_test), at("y_test"), "y_test")
    return Dataset(name, x_train, y_train, x_test, y_test)


def _images(x, where, key):
    """``x`` as (N, C, H, W): uint8 kept, float64 (or non-native byte order) -> float32;
    empty images and NaN/infinite values refused."""
    x = np.asarray(x)
    native = x.dtype.newbyteorder("=") if x.dtype.byteorder in "<>" else x.dtype
    if native not in (np.uint8, np.float32, np.float64):
        raise DataError(f"{where}: {key} has dtype {x.dtype}; images must be uint8 "
                        "(0..255) or float32/float64")
    if x.ndim not in (3, 4):
        raise DataError(f"{where}: {key} has shape {x.shape}; images must be (N, H, W) "
                        "or (N, C, H, W)")
    if 0 in x.shape[1:]:
        raise DataError(f"{where}: {key} has shape {x.shape}: images of no pixels")
    if x.dtype.kind == "f":
        finite = np.isfinite(x).all(axis=tuple(range(1, x.ndim)))  # per image
        if not finite.all():
            raise DataError(f"{where}: {key} holds NaN or infinite values (first in image "
                            f"{int(np.argmin(finite))}); images must be finite")
        if x.dtype != np.float32:
            x = x.astype(np.float32)
    return x[:, None] if x.ndim == 3 else x


def _labels(y, count, where, key):
    """``y`` as int64 (N,), checked against the ``count`` of images."""
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: {key} has dtype {y.dtype}; labels must be integers")
    if y.ndim != 1:
        raise DataError(f"{where}: {key} has shape {y.shape}; labels must be 1-D (N,)")
    if len(y) != count:
        raise DataError(f"{where}: {key} holds {len(y)} labels but x_{key[2:]} holds "
                        f"{count} images")
    if len(y):
        low, high = int(y.min()), int(y.max())  # Python ints: no wrap-around
        if low < 0:
            raise DataError(f"{where}: {key} holds the negative label {low} (at index "
                            f"{int(np.argmin(y))}); labels are class numbers 0, 1, ...")
        if high > np.iinfo(np.int64).max:
            raise DataError(f"{where}: {key} holds the label {high}, too large for a class "
                            "number")
    return y.astype(np.int64, copy=False)
