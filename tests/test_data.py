"""cynet.data: IDX folders, .npz files, the packaged mini set, the full set, and errors."""
import gzip
import os
import re

import numpy as np
import pytest

from cynet import data
from cynet.data import DataError, Dataset, load_data
from cynet.datasets import build_mini

IMAGES, LABELS = 0x0803, 0x0801
TRAIN_N, TEST_N, SIDE = 7, 3, 4


# ---------------------------------------------------------------------- helpers
def idx_bytes(array, magic=None, extra=b"", cut=0):
    """An IDX file's bytes: magic number, big-endian dimension sizes, uint8 payload;
    ``extra`` appended and the last ``cut`` bytes dropped to make hostile files."""
    array = np.asarray(array, dtype=np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    head = np.array([magic, *array.shape], dtype=">u4").tobytes()
    raw = head + array.tobytes() + extra
    return raw[:len(raw) - cut]


def write_file(path, raw, gz=False):
    path = str(path) + (".gz" if gz else "")
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(raw)
    return path


def sample_arrays(rng, n, side=SIDE):
    return (rng.integers(0, 256, (n, side, side), dtype=np.uint8),
            rng.integers(0, 10, n, dtype=np.uint8))


def write_idx_dir(directory, rng, gz=False, test=True, train_n=TRAIN_N, test_n=TEST_N):
    """MNIST-layout IDX files in ``directory``; returns the arrays written."""
    os.makedirs(directory, exist_ok=True)
    arrays = {}
    splits = {"train": train_n, "test": test_n} if test else {"train": train_n}
    for split, n in splits.items():
        x, y = sample_arrays(rng, n)
        image_name, label_name = data.IDX_FILES[split]
        write_file(os.path.join(directory, image_name), idx_bytes(x), gz)
        write_file(os.path.join(directory, label_name), idx_bytes(y), gz)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    return arrays


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


# ---------------------------------------------------------------------- IDX round trips
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_idx_dir_round_trip(tmp_path, rng, gz):
    arrays = write_idx_dir(tmp_path, rng, gz=gz)
    ds = load_data(tmp_path)
    assert isinstance(ds, Dataset)
    assert ds.name == str(tmp_path)
    for split in ("train", "test"):
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        assert x.dtype == np.uint8 and x.shape == arrays[f"x_{split}"].shape[:1] + (1, SIDE, SIDE)
        np.testing.assert_array_equal(x[:, 0], arrays[f"x_{split}"])
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y, arrays[f"y_{split}"])


def test_idx_dir_without_test_split(tmp_path, rng):
    write_idx_dir(tmp_path, rng, test=False)
    ds = load_data(str(tmp_path))
    assert ds.x_train.shape == (TRAIN_N, 1, SIDE, SIDE)
    assert ds.x_test is None and ds.y_test is None


def test_idx_dir_mixing_plain_and_gzip(tmp_path, rng):
    arrays = write_idx_dir(tmp_path, rng)
    os.remove(tmp_path / "train-labels-idx1-ubyte")
    write_file(tmp_path / "train-labels-idx1-ubyte", idx_bytes(arrays["y_train"]), gz=True)
    np.testing.assert_array_equal(load_data(tmp_path).y_train, arrays["y_train"])


def test_idx_arrays_are_writable(tmp_path, rng):
    write_idx_dir(tmp_path, rng, gz=True)
    assert load_data(tmp_path).x_train.flags.writeable


def test_read_idx_spans_several_read_chunks(tmp_path, rng, monkeypatch):
    monkeypatch.setattr(data, "_READ_CHUNK", 5)
    x, _ = sample_arrays(rng, 3)
    path = write_file(tmp_path / "images", idx_bytes(x), gz=True)
    np.testing.assert_array_equal(data.read_idx(path, ndim=3), x)


# ---------------------------------------------------------------------- .npz round trips
def test_npz_uint8_kept_and_channel_axis_added(tmp_path, rng):
    x, y = sample_arrays(rng, 5)
    ds = load_data(write_npz(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:2], y_test=y[:2]))
    assert ds.name == str(tmp_path / "d.npz")
    assert ds.x_train.dtype == np.uint8 and ds.x_train.shape == (5, 1, SIDE, SIDE)
    np.testing.assert_array_equal(ds.x_train[:, 0], x)
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    np.testing.assert_array_equal(ds.y_test, y[:2])


def test_npz_float64_becomes_float32_and_nchw_kept(tmp_path, rng):
    x = rng.standard_normal((4, 3, 5, 6))
    y = np.arange(4, dtype=np.int16)
    ds = load_data(write_npz(tmp_path / "f.npz", x_train=x, y_train=y))
    assert ds.x_train.dtype == np.float32 and ds.x_train.shape == (4, 3, 5, 6)
    np.testing.assert_array_equal(ds.x_train, x.astype(np.float32))
    assert ds.x_test is None and ds.y_test is None


def test_npz_float32_kept(tmp_path, rng):
    x = rng.random((2, 1, 3, 3), dtype=np.float32)
    ds = load_data(write_npz(tmp_path / "f.npz", x_train=x, y_train=np.array([1, 0])))
    assert ds.x_train.dtype == np.float32
    np.testing.assert_array_equal(ds.x_train, x)


def test_npz_given_as_pathlike(tmp_path, rng):
    x, y = sample_arrays(rng, 2)
    write_npz(tmp_path / "p.npz", x_train=x, y_train=y)
    assert load_data(tmp_path / "p.npz").x_train.shape == (2, 1, SIDE, SIDE)


@pytest.mark.parametrize("x, shape", [
    (np.zeros((2, 4, 4), np.uint8), (1, 4, 4)),
    (np.zeros((2, 3, 4, 4), np.float64), (3, 4, 4)),
], ids=["uint8 NHW", "float64 NCHW"])
def test_load_inputs(tmp_path, x, shape):
    got = data.load_inputs(write_npz(tmp_path / "in.npz", x=x), input_shape=list(shape))
    assert got.shape == (2,) + shape
    assert got.dtype == (np.uint8 if x.dtype == np.uint8 else np.float32)


@pytest.mark.parametrize("arrays, fragment", [
    ({"x_train": np.zeros((2, 4, 4), np.uint8)}, "no array 'x'"),
    ({"x": np.zeros((2, 5, 5), np.uint8)},
     "images of shape (1, 5, 5), but the model takes (1, 4, 4)"),
    ({"x": np.zeros((2, 4, 4), np.int64)}, "x has dtype int64"),
    ({"x": np.zeros((0, 4, 4), np.uint8)}, "x holds no images"),
], ids=["no x", "wrong image shape", "int x", "empty"])
def test_load_inputs_errors(tmp_path, arrays, fragment):
    path = write_npz(tmp_path / "in.npz", **arrays)
    with pytest.raises(DataError) as err:
        data.load_inputs(path, input_shape=(1, 4, 4))
    assert path in str(err.value) and fragment in str(err.value), str(err.value)


# ---------------------------------------------------------------------- built-in sets
def test_mini_set():
    ds = load_data("fashion-mnist-mini")
    assert ds.name == "fashion-mnist-mini"
    for x, y, n in ((ds.x_train, ds.y_train, 600), (ds.x_test, ds.y_test, 100)):
        assert x.dtype == np.uint8 and x.shape == (10 * n, 1, 28, 28)
        assert y.dtype == np.int64 and y.shape == (10 * n,)
        np.testing.assert_array_equal(np.bincount(y, minlength=10), [n] * 10)
        assert x.max() > 200  # real images, not zeros


@pytest.mark.parametrize("subdir", [False, True], ids=["dir", "fashion-mnist-subdir"])
def test_full_set_from_data_dir_variable(tmp_path, rng, monkeypatch, subdir):
    where = tmp_path / "fashion-mnist" if subdir else tmp_path
    arrays = write_idx_dir(where, rng, gz=True)
    monkeypatch.setenv("CYNET_DATA_DIR", str(tmp_path))
    ds = load_data("fashion-mnist")
    assert ds.name == "fashion-mnist"
    np.testing.assert_array_equal(ds.x_test[:, 0], arrays["x_test"])
    np.testing.assert_array_equal(ds.y_train, arrays["y_train"])


def test_full_set_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CYNET_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataError) as err:
        load_data("fashion-mnist")
    message = str(err.value)
    for fragment in (str(tmp_path / "empty"), "apt-get install dataset-fashion-mnist",
                     "CYNET_DATA_DIR", "train-images-idx3-ubyte"):
        assert fragment in message


def test_mini_set_missing_from_installation(monkeypatch):
    monkeypatch.setattr(data, "MINI_FILE", "absent-mini.npz")
    with pytest.raises(DataError, match=r"absent-mini\.npz is missing.*build_mini"):
        load_data("fashion-mnist-mini")


def test_full_set_default_is_debian_directory(monkeypatch):
    monkeypatch.delenv("CYNET_DATA_DIR", raising=False)
    if os.path.isdir(data.DEBIAN_DIR):
        assert data.find_fashion_mnist() == data.DEBIAN_DIR
    else:
        with pytest.raises(DataError, match=re.escape(data.DEBIAN_DIR)):
            data.find_fashion_mnist()


needs_debian_set = pytest.mark.skipif(
    not os.path.isfile(os.path.join(data.DEBIAN_DIR, "train-images-idx3-ubyte.gz")),
    reason=f"Debian's full Fashion-MNIST is not in {data.DEBIAN_DIR} "
           "(apt-get install dataset-fashion-mnist)")


@needs_debian_set
def test_full_debian_set_and_mini_set_built_from_it(monkeypatch):
    monkeypatch.delenv("CYNET_DATA_DIR", raising=False)
    full = load_data("fashion-mnist")
    assert full.x_train.shape == (60000, 1, 28, 28) and full.x_test.shape == (10000, 1, 28, 28)
    assert full.x_train.dtype == np.uint8 and full.y_train.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(full.y_train), [6000] * 10)
    # the packaged file is exactly what build_mini makes from these files
    built, packaged = build_mini.build(data.DEBIAN_DIR), load_data("fashion-mnist-mini")
    for key in ("x_train", "y_train", "x_test", "y_test"):
        expected = built[key][:, None] if key[0] == "x" else built[key]
        np.testing.assert_array_equal(getattr(packaged, key), expected, err_msg=key)


def test_build_mini_script(tmp_path, rng, capsys, monkeypatch):
    monkeypatch.setattr(build_mini, "TRAIN_PER_CLASS", 2)
    monkeypatch.setattr(build_mini, "TEST_PER_CLASS", 1)
    source = tmp_path / "src"
    arrays = write_idx_dir(source, rng, train_n=60, test_n=30)
    arrays["y_train"][:20] = np.arange(20) % 10  # every class present in both splits
    arrays["y_test"][:10] = np.arange(10)
    write_file(source / "train-labels-idx1-ubyte", idx_bytes(arrays["y_train"]))
    write_file(source / "t10k-labels-idx1-ubyte", idx_bytes(arrays["y_test"]))
    out = tmp_path / "mini"  # no .npz suffix: written as given
    assert build_mini.main(["--source", str(source), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    with np.load(out) as f:
        assert f["x_train"].shape == (20, SIDE, SIDE) and f["x_test"].shape == (10, SIDE, SIDE)
        np.testing.assert_array_equal(np.bincount(f["y_train"]), [2] * 10)
        np.testing.assert_array_equal(np.bincount(f["y_test"]), [1] * 10)


def test_build_mini_needs_enough_per_class(tmp_path, rng):
    source = tmp_path / "src"
    write_idx_dir(source, rng, train_n=5)
    with pytest.raises(SystemExit) as exit_:
        build_mini.main(["--source", str(source), "--out", str(tmp_path / "o.npz")])
    assert exit_.value.code == 1
    assert not (tmp_path / "o.npz").exists()


# ---------------------------------------------------------------------- hostile inputs
def _idx_dir_with(tmp_path, rng, name, raw, gz=False):
    """A valid IDX directory whose file ``name`` is replaced by ``raw``: (the directory,
    the file)."""
    write_idx_dir(tmp_path, rng, gz=gz)
    os.remove(os.path.join(tmp_path, name + (".gz" if gz else "")))
    return tmp_path, write_file(tmp_path / name, raw, gz)


def wrong_magic(tmp_path, rng):
    x, _ = sample_arrays(rng, TRAIN_N)
    return _idx_dir_with(tmp_path, rng, "train-images-idx3-ubyte", idx_bytes(x, magic=LABELS))


def wrong_dtype_byte(tmp_path, rng):
    _, y = sample_arrays(rng, TRAIN_N)
    return _idx_dir_with(tmp_path, rng, "train-labels-idx1-ubyte", idx_bytes(y, magic=0x0D01))


def non_zero_magic_prefix(tmp_path, rng):
    _, y = sample_arrays(rng, TRAIN_N)
    return _idx_dir_with(tmp_path, rng, "train-labels-idx1-ubyte", idx_bytes(y, magic=0x1000801))


def truncated_payload(tmp_path, rng):
    x, _ = sample_arrays(rng, TRAIN_N)
    return _idx_dir_with(tmp_path, rng, "train-images-idx3-ubyte", idx_bytes(x, cut=3), gz=True)


def absurd_header_shape(tmp_path, rng):
    raw = np.array([IMAGES, 2**32 - 1, 2**32 - 1, 2**32 - 1], dtype=">u4").tobytes()
    return _idx_dir_with(tmp_path, rng, "train-images-idx3-ubyte", raw + b"\0" * 16)


def truncated_header(tmp_path, rng):
    x, _ = sample_arrays(rng, TRAIN_N)
    return _idx_dir_with(tmp_path, rng, "train-images-idx3-ubyte", idx_bytes(x)[:9])


def empty_idx_file(tmp_path, rng):
    return _idx_dir_with(tmp_path, rng, "t10k-labels-idx1-ubyte", b"")


def trailing_bytes(tmp_path, rng):
    _, y = sample_arrays(rng, TEST_N)
    return _idx_dir_with(tmp_path, rng, "t10k-labels-idx1-ubyte", idx_bytes(y, extra=b"\0"))


def image_label_count_mismatch(tmp_path, rng):
    _, y = sample_arrays(rng, TRAIN_N + 1)
    return _idx_dir_with(tmp_path, rng, "train-labels-idx1-ubyte", idx_bytes(y))


def _rewrite_gzip(tmp_path, rng, name, damage):
    """A valid gzipped IDX directory whose file ``name`` is recompressed without a file
    name in its header (the deflate data starts at byte 10), then ``damage``d."""
    write_idx_dir(tmp_path, rng, gz=True)
    path = tmp_path / (name + ".gz")
    raw = bytearray(gzip.compress(gzip.decompress(path.read_bytes()), mtime=0))
    damage(raw)
    path.write_bytes(bytes(raw))
    return tmp_path, str(path)


def corrupt_deflate_data(tmp_path, rng):
    def damage(raw):
        raw[10:14] = b"\xff" * 4
    return _rewrite_gzip(tmp_path, rng, "train-images-idx3-ubyte", damage)


def corrupt_gzip_checksum(tmp_path, rng):
    def damage(raw):
        raw[-8] ^= 0xFF
    return _rewrite_gzip(tmp_path, rng, "t10k-labels-idx1-ubyte", damage)


def truncated_gzip(tmp_path, rng):
    write_idx_dir(tmp_path, rng, gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    return tmp_path, str(path)


def not_gzip_at_all(tmp_path, rng):
    write_idx_dir(tmp_path, rng, gz=True)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(b"this is not gzip data")
    return tmp_path, str(path)


def missing_label_file(tmp_path, rng):
    write_idx_dir(tmp_path, rng)
    os.remove(tmp_path / "train-labels-idx1-ubyte")
    return tmp_path, str(tmp_path / "train-labels-idx1-ubyte")


def half_test_pair(tmp_path, rng):
    write_idx_dir(tmp_path, rng, gz=True)
    os.remove(tmp_path / "t10k-images-idx3-ubyte.gz")
    return tmp_path, str(tmp_path / "t10k-images-idx3-ubyte")


def empty_directory(tmp_path, rng):
    return tmp_path, str(tmp_path / "train-images-idx3-ubyte")


def _npz(tmp_path, **arrays):
    return write_npz(tmp_path / "bad.npz", **arrays)


def npz_missing_y_train(tmp_path, rng):
    return _npz(tmp_path, x_train=sample_arrays(rng, 3)[0])


def npz_x_test_without_y_test(tmp_path, rng):
    x, y = sample_arrays(rng, 3)
    return _npz(tmp_path, x_train=x, y_train=y, x_test=x)


def npz_y_test_without_x_test(tmp_path, rng):
    x, y = sample_arrays(rng, 3)
    return _npz(tmp_path, x_train=x, y_train=y, y_test=y)


def npz_object_arrays(tmp_path, rng):
    x = np.empty(3, dtype=object)
    x[:] = [np.zeros((2, 2))] * 3
    np.savez(tmp_path / "bad.npz", x_train=x, y_train=np.arange(3))  # pickles x
    return str(tmp_path / "bad.npz")


def npz_truncated(tmp_path, rng):
    x, y = sample_arrays(rng, 3)
    path = _npz(tmp_path, x_train=x, y_train=y)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    return path


def npz_corrupt_member(tmp_path, rng):
    path = _npz(tmp_path, x_train=np.full((3, 8, 8), 7, np.uint8), y_train=np.arange(3))
    raw = bytearray(open(path, "rb").read())
    raw[raw.index(bytes([7] * 64)) + 10] = 8  # inside x_train's stored bytes: bad CRC
    return write_file(path, bytes(raw))


def npz_empty_file(tmp_path, rng):
    return write_file(tmp_path / "bad.npz", b"")


def npz_not_a_zip(tmp_path, rng):
    return write_file(tmp_path / "bad.npz", b"x_train,y_train\n1,2\n")


def npz_holding_a_single_array(tmp_path, rng):
    path = tmp_path / "bad.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    return str(path)


def npz_rank_2_images(tmp_path, rng):
    return _npz(tmp_path, x_train=np.zeros((3, 16), np.uint8), y_train=np.arange(3))


def npz_rank_5_images(tmp_path, rng):
    return _npz(tmp_path, x_train=np.zeros((3, 1, 1, 2, 2), np.uint8), y_train=np.arange(3))


def npz_rank_2_labels(tmp_path, rng):
    return _npz(tmp_path, x_train=np.zeros((3, 2, 2), np.uint8),
                y_train=np.zeros((3, 10), np.int64))


def npz_int_images(tmp_path, rng):
    return _npz(tmp_path, x_train=np.zeros((3, 2, 2), np.int32), y_train=np.arange(3))


def npz_bool_images(tmp_path, rng):
    return _npz(tmp_path, x_train=np.zeros((3, 2, 2), bool), y_train=np.arange(3))


def npz_float_labels(tmp_path, rng):
    return _npz(tmp_path, x_train=np.zeros((3, 2, 2), np.uint8), y_train=np.arange(3.0))


def npz_bool_labels(tmp_path, rng):
    return _npz(tmp_path, x_train=np.zeros((3, 2, 2), np.uint8), y_train=np.ones(3, bool))


def npz_length_mismatch(tmp_path, rng):
    return _npz(tmp_path, x_train=np.zeros((3, 2, 2), np.uint8), y_train=np.arange(4))


def npz_test_length_mismatch(tmp_path, rng):
    x = np.zeros((3, 2, 2), np.uint8)
    return _npz(tmp_path, x_train=x, y_train=np.arange(3), x_test=x, y_test=np.arange(2))


def npz_test_image_shape_differs(tmp_path, rng):
    return _npz(tmp_path, x_train=np.zeros((3, 2, 2), np.uint8), y_train=np.arange(3),
                x_test=np.zeros((3, 3, 3), np.uint8), y_test=np.arange(3))


def npz_no_images(tmp_path, rng):
    return _npz(tmp_path, x_train=np.zeros((0, 2, 2), np.uint8), y_train=np.arange(0))


def npz_missing(tmp_path, rng):
    return str(tmp_path / "absent.npz")


def nonexistent_path(tmp_path, rng):
    return str(tmp_path / "no" / "such" / "place")


def existing_file_of_other_kind(tmp_path, rng):
    return write_file(tmp_path / "train.csv", b"1,2,3\n")


# case -> (maker, fragments the message must hold, "{file}" standing for the file named).
# A maker returns the path it made (loaded and named), or for an IDX directory the pair
# (directory to load, file the message must name).
HOSTILE = {
    "wrong magic": (wrong_magic, ["{file}", "magic number 0x00000801", "0x00000803"]),
    "wrong dtype byte": (wrong_dtype_byte, ["{file}", "data type byte 0x0d", "uint8"]),
    "magic prefix not zero": (non_zero_magic_prefix, ["{file}", "magic number 0x01000801"]),
    "truncated payload": (truncated_payload, ["{file}", "truncated", "the file has 109"]),
    "absurd header shape": (absurd_header_shape, ["{file}", "too large"]),
    "truncated header": (truncated_header, ["{file}", "truncated IDX header"]),
    "empty IDX file": (empty_idx_file, ["{file}", "too short for an IDX header"]),
    "trailing bytes": (trailing_bytes, ["{file}", "trailing bytes"]),
    "image/label count mismatch": (image_label_count_mismatch,
                                   ["{file}", "7 images", "8 labels"]),
    "corrupt deflate data": (corrupt_deflate_data, ["{file}", "cannot read", "invalid"]),
    "corrupt gzip checksum": (corrupt_gzip_checksum, ["{file}", "cannot read", "CRC"]),
    "truncated gzip": (truncated_gzip, ["{file}", "cannot read"]),
    "not gzip at all": (not_gzip_at_all, ["{file}", "cannot read", "Not a gzipped file"]),
    "missing label file": (missing_label_file, ["{file}[.gz]: file not found"]),
    "half the test pair": (half_test_pair, ["{file}[.gz]: file not found",
                                            "t10k-labels-idx1-ubyte is there"]),
    "empty directory": (empty_directory, ["{file}[.gz]: file not found"]),
    "npz missing y_train": (npz_missing_y_train, ["{file}", "no array 'y_train'",
                                                  "['x_train']"]),
    "npz x_test without y_test": (npz_x_test_without_y_test,
                                  ["{file}", "has x_test but no y_test"]),
    "npz y_test without x_test": (npz_y_test_without_x_test,
                                  ["{file}", "has y_test but no x_test"]),
    "npz object arrays": (npz_object_arrays, ["{file}", "object arrays", "pickle"]),
    "npz truncated": (npz_truncated, ["{file}", "corrupt or truncated"]),
    "npz corrupt member": (npz_corrupt_member, ["{file}", "corrupt array data"]),
    "npz empty file": (npz_empty_file, ["{file}", "corrupt or truncated"]),
    "npz not a zip": (npz_not_a_zip, ["{file}", "not an .npz file", "zip archive"]),
    "npz of a single array": (npz_holding_a_single_array, ["{file}", "not an .npz archive"]),
    "rank 2 images": (npz_rank_2_images, ["{file}", "x_train has shape (3, 16)",
                                          "(N, H, W) or (N, C, H, W)"]),
    "rank 5 images": (npz_rank_5_images, ["{file}", "x_train has shape (3, 1, 1, 2, 2)"]),
    "rank 2 labels": (npz_rank_2_labels, ["{file}", "y_train has shape (3, 10)", "1-D"]),
    "int images": (npz_int_images, ["{file}", "x_train has dtype int32", "uint8"]),
    "bool images": (npz_bool_images, ["{file}", "x_train has dtype bool"]),
    "float labels": (npz_float_labels, ["{file}", "y_train has dtype float64", "integers"]),
    "bool labels": (npz_bool_labels, ["{file}", "y_train has dtype bool"]),
    "labels/x length mismatch": (npz_length_mismatch,
                                 ["{file}", "y_train holds 4 labels", "x_train holds 3 images"]),
    "test labels/x length mismatch": (npz_test_length_mismatch,
                                      ["{file}", "y_test holds 2 labels", "x_test holds 3"]),
    "test image shape differs": (npz_test_image_shape_differs,
                                 ["{file}", "x_test images have shape (1, 3, 3)"]),
    "no training images": (npz_no_images, ["{file}", "x_train holds no images"]),
    "npz missing": (npz_missing, ["{file}: file not found"]),
    "nonexistent path": (nonexistent_path, ["{file}: no such file or directory", "Accepted:"]),
    "file of another kind": (existing_file_of_other_kind,
                             ["{file}: not a directory of IDX files nor an .npz file"]),
}


def test_a_missing_key_is_not_said_to_be_another_key(tmp_path, rng):
    """No y_train is not a misspelt x_train: no did-you-mean among the keys read."""
    with pytest.raises(DataError, match=r"no array 'y_train' \(the file has \['x_train'\]\)$"):
        load_data(npz_missing_y_train(tmp_path, rng))
    x, y = sample_arrays(rng, 3)
    with pytest.raises(DataError, match="no array 'y_train'; did you mean 'y_trian'"):
        load_data(_npz(tmp_path, x_train=x, y_trian=y))


@pytest.mark.parametrize("make, fragments", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_source_raises_data_error(tmp_path, rng, make, fragments):
    made = make(tmp_path, rng)
    spec, named = made if isinstance(made, tuple) else (made, made)
    with pytest.raises(DataError) as err:
        load_data(spec)
    for fragment in fragments:
        assert fragment.format(file=named) in str(err.value), str(err.value)


@pytest.mark.parametrize("spec, fragments", [
    ("fashion-mnist-mni", ["unknown dataset 'fashion-mnist-mni'",
                           "did you mean 'fashion-mnist-mini'?"]),
    ("fashoin-mnist", ["unknown dataset 'fashoin-mnist'", "did you mean 'fashion-mnist'?"]),
    ("cifar10", ["unknown dataset 'cifar10'", "Accepted: 'fashion-mnist-mini'", ".npz"]),
    (42, ["must be a name or a path, got int", "Accepted:"]),
    (None, ["must be a name or a path, got NoneType"]),
], ids=["near mini", "near full", "far", "int", "None"])
def test_unresolvable_spec(spec, fragments):
    with pytest.raises(DataError) as err:
        load_data(spec)
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)
    if spec == "cifar10":
        assert "did you mean" not in str(err.value)


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


def test_dataset_repr_shows_shapes_not_values(rng):
    x, y = sample_arrays(rng, 2)
    text = repr(Dataset("tiny", x[:, None], y.astype(np.int64)))
    assert text == ("Dataset('tiny', x_train=uint8[2, 1, 4, 4], y_train=int64[2], "
                    "x_test=None, y_test=None)")
