"""Every file cynet reads, damaged or hostile: one clear error naming the file.

Each case of ``CASES`` takes a good file of one kind -- a ``weights.npz``, a run's
``checkpoint.npz``, a dataset ``.npz``, the ``INPUT.npz`` of ``cynet predict`` or an IDX
file of a dataset directory -- and damages it (``build`` makes it). The library must
raise its specific exception (a ValueError) with one line naming the file and the
problem (``assert_refused``); every command that reads that kind of file must exit 2
with exactly one ``Error:`` line naming it and no traceback (``assert_cli_refuses``).
"""
import gzip
import json
import shutil
import struct
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest
from cli_fixtures import (N_CLASSES, SIZE, banded_images, definition, error_lines, load_npz,
                          read_metrics, write_dataset, write_json)
from cynet.data import DataError, load_data, load_inputs
from cynet.definition import DefinitionError
from cynet.checkpoint import CHECKPOINT_FORMAT_VERSION, CheckpointError, fingerprint
from cynet.model import Model
from cynet.rundir import RunDir, RunDirError
from cynet.weights import FORMAT_VERSION, WeightsFileError
from cynet.training_run import DataMismatchError, check_data, load_trained
from test_cli import run as cli
from test_data import idx_bytes

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# --------------------------------------------------------------------------- good files


class Good:
    """A dataset (.npz and IDX directory), a definition using it and a finished 1-epoch
    run of it (weights.npz, checkpoint.npz, metrics.jsonl), and prediction inputs."""

    def __init__(self, base):
        self.data = write_dataset(base / "data.npz")
        self.model = write_json(base / "model.json", definition(data=self.data))
        self.run = base / "run"
        result = cli("train", self.model, "--epochs", 1, "--out", self.run)
        assert result.exit_code == 0, result.output
        self.weights = self.run / "weights.npz"
        self.inputs = base / "inputs.npz"
        np.savez(self.inputs, x=banded_images(5)[0])
        self.idx = base / "idx"
        self.idx.mkdir()
        arrays = load_npz(self.data)
        for name, key in zip(IDX_NAMES, ("x_train", "y_train", "x_test", "y_test")):
            (self.idx / name).write_bytes(idx_bytes(arrays[key]))


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return Good(tmp_path_factory.mktemp("good"))


# --------------------------------------------------------------------------- damage
# A damage takes the path of a copy of the good file, changes the file (or replaces it)
# and returns the path that now holds the damaged content (usually the same).


def raw(change):
    """Damage the bytes: ``change(bytes) -> bytes``."""
    def damage(path):
        path.write_bytes(change(path.read_bytes()))
        return path
    return damage


def arrays(change):
    """Damage the arrays: ``change(dict of arrays)`` in place, then saved with np.savez
    (which pickles object arrays)."""
    def damage(path):
        content = load_npz(path)
        change(content)
        np.savez(path, **content)
        return path
    return damage


def directory(path):
    path.unlink()
    path.mkdir()
    return path


def gzipped(change):
    """The IDX file gzipped as ``NAME.gz`` (the plain file removed), then ``change``d."""
    def damage(path):
        target = path.with_name(path.name + ".gz")
        target.write_bytes(change(gzip.compress(path.read_bytes(), mtime=0)))
        path.unlink()
        return target
    return damage


def random_bytes(data):
    return np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes()


def first_member_data(data):
    """Offset of the first zip member's data (after its local header)."""
    name_length, extra_length = struct.unpack("<HH", data[26:30])
    return 30 + name_length + extra_length


def central_directory(data):
    return data.index(b"PK\x01\x02")


def with_bytes(data, offset, new):
    return data[:offset] + new + data[offset + len(new):]


def unknown_compression(data):
    """Every member claims compression method 99 (AES, which zipfile cannot read)."""
    out = with_bytes(data, 8, struct.pack("<H", 99))
    return with_bytes(out, central_directory(out) + 10, struct.pack("<H", 99))


def encrypted(data):
    """The first member flagged as encrypted."""
    out = with_bytes(data, 6, struct.pack("<H", 1))
    return with_bytes(out, central_directory(out) + 8, struct.pack("<H", 1))


def zip_of_text(data):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "not arrays")
    return buffer.getvalue()


def single_npy(data):
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    return buffer.getvalue()


def pickled():
    objects = np.empty(2, dtype=object)
    objects[:] = [{"a": 1}, "b"]
    return objects


def set_array(key, value):
    return arrays(lambda a: a.__setitem__(key, value))


def drop_arrays(*keys):
    return arrays(lambda a: [a.pop(k) for k in list(a) if k in keys or
                             any(k.startswith(p[:-1]) for p in keys if p.endswith("*"))])


def edit_json(key, change, refingerprint=False):
    """Change the JSON object stored in the text array ``key``; ``refingerprint`` keeps a
    checkpoint's fingerprint in step with an edited definition."""
    def edit(content):
        doc = json.loads(content[key].item())
        change(doc)
        content[key] = np.array(json.dumps(doc))
        if refingerprint:
            meta = json.loads(content["cynet_checkpoint"].item())
            meta["fingerprint"] = fingerprint(doc)
            content["cynet_checkpoint"] = np.array(json.dumps(meta))
    return arrays(edit)


def set_meta(key, field, value):
    return edit_json(key, lambda doc: doc.__setitem__(field, value))


def set_rng(key, path, value):
    """Set ``path`` (keys) inside the first random state: the model's (``rng``), or
    the first layer's for a path into ``inc``."""
    def change(meta):
        state = meta["layer_rngs"][0] if path[-1] == "inc" else meta["rng"]
        for k in path[:-1]:
            state = state[k]
        state[path[-1]] = value
    return edit_json(key, change)


def drop_meta(key, field):
    return edit_json(key, lambda doc: doc.pop(field))


def wider_first_layer(doc):
    doc["layers"][0]["out_channels"] = 8


def unknown_layer_type(doc):
    doc["layers"][0]["type"] = "Conv2d"


def swap(key, change):
    """Replace the array ``key`` by ``change(array)``."""
    return arrays(lambda a: a.__setitem__(key, change(a[key])))


# --------------------------------------------------------------------------- cases


@dataclass
class Case:
    source: str            # weights, checkpoint, data, inputs, idx
    damage: object         # path -> damaged path
    needles: tuple         # fragments of the message besides the file's path
    member: str = None     # the IDX file damaged (default: the training images)
    error: type = None     # the library's exception, when not the source's usual one


LIBRARY_ERRORS = {"weights": WeightsFileError, "checkpoint": CheckpointError,
                  "data": DataError, "inputs": DataError, "idx": DataError}

CORRUPT = ("corrupt", "truncated")
META, DEF, CKPT = "cynet_meta", "definition", "cynet_checkpoint"
WEIGHT, CK_WEIGHT = "layers.0.weight", "model.layers.0.weight"
MOMENTUM = "optimizer.layers.0.weight/momentum_buffer"


BOMB_BYTES = 1 << 28  # 256 MiB of zeros: a few hundred kB once deflated


def inflating(key):
    """Damage: the array ``key`` replaced by a deflated .npy member of BOMB_BYTES zeros (a
    small file that decompresses to a quarter of a gigabyte), the other members kept."""
    def damage(path):
        with zipfile.ZipFile(path) as old:
            members = {info.filename: old.read(info) for info in old.infolist()}
        header = np.lib.format.header_data_from_array_1_0(np.zeros(0, np.float32))
        header["shape"] = (BOMB_BYTES // 4,)
        chunk = bytes(1 << 24)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
            for name, data in members.items():
                if name != key + ".npy":
                    new.writestr(name, data)
            with new.open(key + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_1_0(f, header)
                for _ in range(BOMB_BYTES // len(chunk)):
                    f.write(chunk)
        assert path.stat().st_size < BOMB_BYTES // 100
        return path
    return damage


def _npz_container_cases(source):
    """Damage of the zip container itself, the same for every .npz the CLI reads."""
    return {
        "empty file": Case(source, raw(lambda d: b""), ("empty",)),
        "random bytes": Case(source, raw(random_bytes), ("not an .npz file", "zip archive")),
        "truncated in the first local header": Case(source, raw(lambda d: d[:20]), CORRUPT),
        "truncated inside a member's data": Case(
            source, raw(lambda d: d[:first_member_data(d) + 40]), CORRUPT),
        "truncated inside the central directory": Case(
            source, raw(lambda d: d[:central_directory(d) + 20]), CORRUPT),
        "truncated in the end record": Case(source, raw(lambda d: d[:-5]), CORRUPT),
        "tail zeroed": Case(source, raw(lambda d: d[:len(d) // 2] + bytes(len(d) - len(d) // 2)),
                            CORRUPT),
        "byte flipped in a member (bad CRC)": Case(
            source, raw(lambda d: with_bytes(d, first_member_data(d) + 130,
                                             bytes([d[first_member_data(d) + 130] ^ 0xFF]))),
            ("corrupt array data", "CRC")),
        "unknown compression method": Case(source, raw(unknown_compression),
                                           ("corrupt array data", "compression")),
        "encrypted member": Case(source, raw(encrypted), ("corrupt array data", "encrypted")),
        "a directory": Case(source, directory, ("is a directory",)
                            if source in ("data", "inputs") else ("directory",)),
        "a single .npy array": Case(source, raw(single_npy), ("single .npy array",)),
    }


def _weights_cases():
    newer = FORMAT_VERSION + 1
    return {
        "zip without arrays": Case("weights", raw(zip_of_text),
                                   ("not a cynet weights file", "cynet_meta")),
        "pickled object array": Case("weights", set_array(WEIGHT, pickled()),
                                     ("object arrays", "pickle")),
        "an array that inflates to 256 MiB": Case(
            "weights", inflating(WEIGHT), (WEIGHT, "268,435,456 bytes", "without reading")),
        "no metadata": Case("weights", drop_arrays(META), ("not a cynet weights file",)),
        "no definition": Case("weights", drop_arrays(DEF), ("no 'definition'",)),
        "metadata not JSON": Case("weights", set_array(META, np.array("{oops")),
                                  ("'cynet_meta' is not valid JSON",)),
        "metadata too deeply nested": Case("weights", set_array(META, np.array("[" * 100000)),
                                           ("'cynet_meta' is not valid JSON",)),
        "metadata a JSON array": Case("weights", set_array(META, np.array("[1]")),
                                      ("not a JSON object",)),
        "metadata numbers": Case("weights", set_array(META, np.arange(3)),
                                 ("'cynet_meta' is not a JSON text", "int64")),
        "newer format version": Case("weights", set_meta(META, "format_version", newer),
                                     (f"format {newer}", "newer cynet", "upgrade")),
        "format version a string": Case("weights", set_meta(META, "format_version", "1"),
                                        ('"1" is not an integer',)),
        "format version a float": Case("weights", set_meta(META, "format_version", 1.0),
                                       ("1.0 is not an integer",)),
        "format version a boolean": Case("weights", set_meta(META, "format_version", True),
                                         ("true is not an integer",)),
        "format version null": Case("weights", set_meta(META, "format_version", None),
                                    ("null is not an integer",)),
        "format version 0": Case("weights", set_meta(META, "format_version", 0),
                                 ("format version 0 is invalid",)),
        "no format version": Case("weights", drop_meta(META, "format_version"),
                                  ("no format version",)),
        "definition a JSON array": Case("weights", set_array(DEF, np.array("[]")),
                                        ("'definition' is not a JSON object",)),
        "definition invalid": Case("weights", edit_json(DEF, unknown_layer_type),
                                   ("definition is invalid", "layers[0].type", "Conv2d"),
                                   error=DefinitionError),
        "weights of another architecture": Case(
            "weights", edit_json(DEF, wider_first_layer),
            ("layers[0].weight: file has (4, 1, 3, 3), model needs (8, 1, 3, 3)",
             "layers[0].bias: file has (4,), model needs (8,)")),
        "array missing": Case("weights", drop_arrays("layers.0.bias"),
                              ("layers[0].bias: missing from the file",)),
        "unknown array": Case("weights", set_array("extra", np.zeros(2)),
                              ("unexpected array 'extra'",)),
        "int64 weights": Case("weights", swap(WEIGHT, lambda w: w.astype(np.int64)),
                              ("layers[0].weight: file has dtype int64, model needs float32",)),
        "float16 weights": Case("weights", swap(WEIGHT, lambda w: w.astype(np.float16)),
                                ("dtype float16",)),
        "complex weights": Case("weights", swap(WEIGHT, lambda w: w.astype(np.complex64)),
                                ("dtype complex64",)),
        "string weights": Case("weights", swap(WEIGHT, lambda w: w.astype(str)), ("dtype <U",)),
        "NaN weights": Case("weights", swap(WEIGHT, lambda w: w * np.nan),
                            ("layers[0].weight: holds NaN or infinite values",)),
    }


def _checkpoint_cases():
    newer = CHECKPOINT_FORMAT_VERSION + 1
    return {
        "zip without arrays": Case("checkpoint", raw(zip_of_text),
                                   ("not a cynet checkpoint", "cynet_checkpoint")),
        "pickled object array": Case("checkpoint", set_array(CK_WEIGHT, pickled()),
                                     ("object arrays", "pickle")),
        "an optimizer array that inflates to 256 MiB": Case(
            "checkpoint", inflating(MOMENTUM), (MOMENTUM, "268,435,456 bytes",
                                                "without reading")),
        "newer format version": Case("checkpoint", set_meta(CKPT, "format_version", newer),
                                     (f"format {newer}", "newer cynet", "upgrade")),
        "format version a string": Case("checkpoint", set_meta(CKPT, "format_version", "2"),
                                        ("not an integer",)),
        "no format version": Case("checkpoint", drop_meta(CKPT, "format_version"),
                                  ("no format version",)),
        "metadata a JSON array": Case("checkpoint", set_array(CKPT, np.array("[]")),
                                      ("not a JSON object",)),
        "no fingerprint": Case("checkpoint", drop_meta(CKPT, "fingerprint"),
                               ("no fingerprint",)),
        "definition edited, fingerprint not": Case(
            "checkpoint", edit_json(DEF, wider_first_layer), ("does not match the fingerprint",)),
        "definition invalid": Case(
            "checkpoint", edit_json(DEF, unknown_layer_type, refingerprint=True),
            ("definition is invalid", "Conv2d")),
        "no epoch": Case("checkpoint", drop_meta(CKPT, "epoch"), ("no 'epoch'",)),
        "epoch a string": Case("checkpoint", set_meta(CKPT, "epoch", "1"),
                               ('epoch "1" is not a count of epochs',)),
        "epoch negative": Case("checkpoint", set_meta(CKPT, "epoch", -1), ("epoch -1",)),
        "epoch beyond the history": Case("checkpoint", set_meta(CKPT, "epoch", 2),
                                         ("history holds 1 epochs' metrics, but epoch is 2",)),
        "history not a list": Case("checkpoint", set_meta(CKPT, "history", {"loss": 1}),
                                   ("history is not a list",)),
        "random state damaged": Case("checkpoint", set_meta(CKPT, "rng", {"state": 1}),
                                     ("rng is not a valid PCG64 random generator state",)),
        **{f"random state {what}": Case("checkpoint", set_rng(CKPT, path, value),
                                        (f"{place} is not a valid PCG64 random generator state",
                                         needle))
           for what, place, path, value, needle in [
               ("2**300", "rng", ("state", "state"), 2**300, "too large"),
               ("negative", "layer_rngs[0]", ("state", "inc"), -1,
                "layer_rngs[0].state.inc must not be negative, got -1"),
               ("a fraction", "rng", ("state", "state"), 1.5,
                "rng.state.state must be a whole number, got float"),
               ("a boolean", "rng", ("has_uint32",), True, "got bool"),
               ("a uint32 out of range", "rng", ("uinteger",), 2**32, "uint32"),
               ("of another generator", "rng", ("bit_generator",), "MT19937", "'PCG64'"),
           ]},
        "layer random states missing": Case("checkpoint", set_meta(CKPT, "layer_rngs", []),
                                            ("layer_rngs holds 0",)),
        "no optimizer state": Case("checkpoint", drop_arrays("optimizer.*"),
                                   ("optimizer.lr", "incomplete")),
        "no optimizer state of the parameters": Case(
            "checkpoint", drop_arrays("optimizer.layers*"),
            ("no optimizer state for 'layers.0.bias'", "after epoch 1")),
        "a momentum buffer missing": Case("checkpoint", drop_arrays(MOMENTUM),
                                          ("'layers.0.weight'", "momentum_buffer")),
        "a momentum buffer of the wrong shape": Case(
            "checkpoint", set_array(MOMENTUM, np.zeros((3, 3), np.float32)),
            (f"{MOMENTUM}: file has float32 (3, 3), the model needs float32 (4, 1, 3, 3)",)),
        "a momentum buffer of integers": Case(
            "checkpoint", swap(MOMENTUM, lambda b: b.astype(np.int64)), ("int64",)),
        "a step count negative": Case(
            "checkpoint", set_array("optimizer.layers.0.weight/step", np.array(-1)),
            ("layers.0.weight/step",)),
        "learning rate a vector": Case("checkpoint", set_array("optimizer.lr", np.zeros(3)),
                                       ("optimizer.lr",)),
        "state of an unknown parameter": Case(
            "checkpoint", set_array("optimizer.layers.7.weight/step", np.array(1)),
            ("'layers.7.weight', which is not a parameter",)),
        "weights of another architecture": Case(
            "checkpoint", swap(CK_WEIGHT, lambda w: np.zeros((8, 1, 3, 3), np.float32)),
            ("layers[0].weight: file has (8, 1, 3, 3), model needs (4, 1, 3, 3)",)),
        "unknown array": Case("checkpoint", set_array("extra", np.zeros(1)),
                              ("unexpected array 'extra'",)),
    }


def _data_cases():
    return {
        "zip without arrays": Case("data", raw(zip_of_text), ("no array 'x_train'",)),
        "pickled object array": Case("data", set_array("x_train", pickled()),
                                     ("object arrays", "pickle")),
        "no y_train": Case("data", drop_arrays("y_train"), ("no array 'y_train'",)),
        "misspelt x_test": Case("data", arrays(lambda a: a.__setitem__("x_tst", a.pop("x_test"))),
                                ("unknown array 'x_tst'", "did you mean 'x_test'?")),
        "string images": Case("data", swap("x_train", lambda x: x.astype(str)),
                              ("x_train has dtype <U",)),
        "complex images": Case("data", swap("x_train", lambda x: x.astype(np.complex64)),
                               ("x_train has dtype complex64",)),
        "boolean images": Case("data", swap("x_test", lambda x: x > 0),
                               ("x_test has dtype bool",)),
        "NaN in float images": Case(
            "data", swap("x_train", lambda x: np.where(x > 200, np.nan, x / 255.0)),
            ("x_train holds NaN or infinite values",)),
        "infinity in float test images": Case(
            "data", swap("x_test", lambda x: np.where(x > 200, np.inf, x / 255.0)),
            ("x_test holds NaN or infinite values",)),
        "2-d images": Case("data", swap("x_train", lambda x: x.reshape(len(x), -1)),
                           ("x_train has shape (96, 144)",)),
        "images without pixels": Case("data", swap("x_train", lambda x: x[:, :0]),
                                      ("images of no pixels",)),
        "no float training images": Case(
            "data", arrays(lambda a: a.update(x_train=np.zeros((0, SIZE, SIZE)),
                                              y_train=a["y_train"][:0])),
            ("x_train holds no images",)),
        "empty test split": Case("data", arrays(lambda a: a.update(x_test=a["x_test"][:0],
                                                                   y_test=a["y_test"][:0])),
                                 ("x_test holds no images",)),
        "float labels": Case("data", swap("y_train", lambda y: y.astype(float)),
                             ("y_train has dtype float64",)),
        "negative int64 label": Case(
            "data", swap("y_train", lambda y: np.where(np.arange(len(y)) == 5, -3,
                                                       y.astype(np.int64))),
            ("negative label -3", "at index 5")),
        "uint64 label beyond int64": Case(
            "data", swap("y_test", lambda y: np.full(len(y), 2**64 - 1, np.uint64)),
            ("18446744073709551615",)),
        "labels and images of different lengths": Case(
            "data", swap("y_train", lambda y: y[:-1]), ("y_train holds 95 labels", "96 images")),
        "labels 2-d": Case("data", swap("y_test", lambda y: y[:, None]),
                           ("y_test has shape (48, 1)",)),
    }


def _inputs_cases():
    return {
        "zip without arrays": Case("inputs", raw(zip_of_text), ("no array 'x'",)),
        "pickled x": Case("inputs", set_array("x", pickled()), ("object arrays", "pickle")),
        "X instead of x": Case("inputs", arrays(lambda a: a.__setitem__("X", a.pop("x"))),
                               ("no array 'x'", "did you mean 'X'?")),
        "complex x": Case("inputs", swap("x", lambda x: x.astype(np.complex128)),
                          ("x has dtype complex128",)),
        "NaN in x": Case("inputs", swap("x", lambda x: x * np.nan), ("x holds NaN",)),
        "x of one dimension": Case("inputs", swap("x", lambda x: x.ravel()),
                                   ("x has shape (720,)",)),
        "images of the wrong size": Case("inputs", swap("x", lambda x: x[:, :10, :10]),
                                         ("(1, 10, 10)", "the model takes (1, 12, 12)")),
        "no images": Case("inputs", swap("x", lambda x: x[:0]), ("x holds no images",)),
    }


def _idx_cases():
    labels = "train-labels-idx1-ubyte"
    tests = "t10k-images-idx3-ubyte"
    return {
        "wrong magic": Case("idx", raw(lambda d: with_bytes(d, 3, b"\x01")),
                            ("magic number 0x00000801",)),
        "wrong data type code": Case("idx", raw(lambda d: with_bytes(d, 2, b"\x0d")),
                                     ("data type byte 0x0d",)),
        "dimensions need more than the payload": Case(
            "idx", raw(lambda d: with_bytes(d, 4, struct.pack(">I", 97))),
            ("truncated", "needs 13968 bytes", "the file has 13824")),
        "dimensions need less than the payload": Case(
            "idx", raw(lambda d: with_bytes(d, 4, struct.pack(">I", 95))), ("trailing bytes",)),
        "a zero dimension": Case("idx", raw(lambda d: with_bytes(d, 8, struct.pack(">I", 0))[:16]),
                                 ("x_train has shape (96, 0, 12)", "no pixels")),
        "no images at all": Case("idx", raw(lambda d: with_bytes(d, 4, bytes(4))[:16]),
                                 ("holds 0 images", "96 labels")),
        "more labels than images": Case(
            "idx", raw(lambda d: with_bytes(d, 4, struct.pack(">I", 97)) + b"\0"),
            ("holds 96 images", "97 labels"), member=labels),
        "random bytes": Case("idx", raw(random_bytes), ("magic number",), member=tests),
        "empty": Case("idx", raw(lambda d: b""), ("too short for an IDX header",)),
        "gzip truncated": Case("idx", gzipped(lambda g: g[:len(g) // 2]), ("cannot read",)),
        "gzip corrupt": Case("idx", gzipped(lambda g: with_bytes(g, 12, b"\xff\xff\xff\xff")),
                             ("cannot read",)),
        "gzip checksum wrong": Case(
            "idx", gzipped(lambda g: with_bytes(g, len(g) - 8, bytes([g[-8] ^ 0xFF]))),
            ("cannot read", "CRC"), member=labels),
        "gzip of nothing": Case("idx", gzipped(lambda g: gzip.compress(b"")),
                                ("too short for an IDX header",)),
    }


CASES = {}
for _source, _cases in [("weights", _weights_cases()), ("checkpoint", _checkpoint_cases()),
                        ("data", _data_cases()), ("inputs", _inputs_cases()),
                        ("idx", _idx_cases())]:
    if _source != "idx":
        _cases = {**_npz_container_cases(_source), **_cases}
    CASES.update({f"{_source}: {name}": case for name, case in _cases.items()})


# --------------------------------------------------------------------------- build, assert


def build(case, good, tmp_path):
    """A damaged copy of the good file of ``case.source``: ``(target, named)``, the path to
    give the reader (a file, a run directory or an IDX directory) and the damaged file
    every message must name."""
    if case.source == "checkpoint":
        run = tmp_path / "run"
        run.mkdir()
        for name in ("model.json", "metrics.jsonl", "checkpoint.npz"):  # no weights.npz
            shutil.copy(good.run / name, run / name)
        return run, case.damage(run / "checkpoint.npz")
    if case.source == "idx":
        shutil.copytree(good.idx, tmp_path / "idx")
        named = case.damage(tmp_path / "idx" / (case.member or IDX_NAMES[0]))
        return tmp_path / "idx", named
    original = {"weights": good.weights, "data": good.data, "inputs": good.inputs}[case.source]
    path = tmp_path / original.name
    shutil.copy(original, path)
    named = case.damage(path)
    return named, named


def read(source, target):
    """What the library does with a file of ``source``'s kind."""
    if source == "weights":
        return Model.load(target)
    if source == "checkpoint":
        return load_trained(target)
    if source == "inputs":
        return load_inputs(target, (1, SIZE, SIZE))
    return load_data(target)


def assert_refused(call, error, named, needles):
    """``call()`` raises ``error`` (a ValueError) in one line naming ``named`` and holding
    every needle."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in message, message
    assert str(named) in message, message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


def commands(source, target, good, tmp_path):
    """Every command line that reads a file of ``source``'s kind at ``target``."""
    if source == "weights":
        return [["evaluate", target], ["predict", target, good.inputs]]
    if source == "checkpoint":
        return [["evaluate", target], ["train", good.model, "--resume", target]]
    if source == "inputs":
        return [["predict", good.run, target]]
    return [["train", good.model, "--data", target, "--out", tmp_path / "new-run"],
            ["evaluate", good.run, "--data", target]]


def assert_cli_refuses(args, named, needles=(), code=2):
    """``cynet ARGS`` exits ``code`` with one ``Error:`` line (the last line of stderr)
    naming ``named`` and holding every needle; no traceback, no escaped exception."""
    result = cli(*args)
    shown = f"cynet {' '.join(map(str, args))}: exit {result.exit_code}\n{result.output}"
    assert result.exit_code == code, shown
    assert result.exception is None or isinstance(result.exception, SystemExit), shown
    assert "Traceback" not in result.output, shown
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and result.stderr.rstrip("\n").splitlines()[-1] == errors[0], shown
    assert "internal error" not in errors[0], shown
    assert str(named) in errors[0], shown
    for needle in needles:
        assert needle in errors[0], shown
    return errors[0]


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_library_refuses(case, good, tmp_path):
    target, named = build(case, good, tmp_path)
    error = case.error or LIBRARY_ERRORS[case.source]
    assert_refused(lambda: read(case.source, target), error, named, case.needles)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_cli_refuses(case, good, tmp_path):
    target, named = build(case, good, tmp_path)
    for args in commands(case.source, target, good, tmp_path):
        assert_cli_refuses(args, named, case.needles)
    assert not (tmp_path / "new-run").exists()


def test_resume_refuses_a_damaged_checkpoint_without_touching_the_run(good, tmp_path):
    target, named = build(_checkpoint_cases()["a momentum buffer of the wrong shape"], good,
                          tmp_path)
    def files():  # but the lock file, which names the last process that took the lock
        return {p.name: p.read_bytes() for p in target.iterdir() if p.name != ".lock"}

    before = files()
    assert_cli_refuses(["train", good.model, "--resume", target, "--epochs", 2], named)
    assert files() == before


def test_a_refused_training_state_leaves_the_model_as_it_was(good):
    arrays, meta, doc = RunDir(good.run).load_checkpoint()
    model = Model.from_dict(doc)
    before = {k: v.copy() for k, v in model.state_arrays().items()}
    damaged = dict(meta, layer_rngs=meta["layer_rngs"][:-1])
    with pytest.raises(WeightsFileError, match="layer_rngs holds"):
        model.load_training_state(arrays, damaged, source="ckpt")
    assert all(np.array_equal(v, before[k]) for k, v in model.state_arrays().items())
    assert model.epoch == 0 and model.history == []


# ---- data that is well-formed but does not fit the model: labels beyond its classes


@pytest.mark.parametrize("label", [N_CLASSES, 9, 2**40], ids=["n_outputs", "9", "2**40"])
def test_labels_beyond_the_models_classes(good, tmp_path, label):
    content = load_npz(good.data)
    content["y_test"] = np.where(np.arange(len(content["y_test"])) == 3, label,
                                 content["y_test"].astype(np.int64))
    path = tmp_path / "data.npz"
    np.savez(path, **content)
    model = Model.load(good.weights)
    assert_refused(lambda: check_data(model, load_data(path)), DataMismatchError, path,
                   [f"label {label}", f"[0, {N_CLASSES})"])
    for args in commands("data", path, good, tmp_path):
        assert_cli_refuses(args, path, [f"label {label}"])


def test_idx_images_of_the_wrong_size_for_the_model(good, tmp_path):
    directory = tmp_path / "idx"
    directory.mkdir()
    arrays = load_npz(good.data)
    for name in IDX_NAMES:
        shape = (len(arrays["y_train" if "train" in name else "y_test"]),)
        content = np.zeros(shape + ((10, 10) if "images" in name else ()), np.uint8)
        (directory / name).write_bytes(idx_bytes(content))
    for args in commands("idx", directory, good, tmp_path):
        assert_cli_refuses(args, directory, ["(1, 10, 10)", "(1, 12, 12)"])


# ---- format versions


@pytest.mark.parametrize("name, key, version", [
    ("weights.npz", "cynet_meta", FORMAT_VERSION),
    ("checkpoint.npz", "cynet_checkpoint", CHECKPOINT_FORMAT_VERSION),
])
def test_weights_and_checkpoints_carry_an_integer_format_version(good, name, key, version):
    content = load_npz(good.run / name)  # readable without pickle
    meta = json.loads(content[key].item())
    assert type(meta["format_version"]) is int and meta["format_version"] == version >= 1


# ---- run directories and metrics


def test_evaluate_a_directory_that_is_not_a_run(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("hello")
    assert_refused(lambda: load_trained(tmp_path / "stuff"), RunDirError, tmp_path / "stuff",
                   ["not a run directory", "weights.npz", "checkpoint.npz"])
    assert_cli_refuses(["evaluate", tmp_path / "stuff"], tmp_path / "stuff",
                       ["not a run directory"])


def test_resume_rewrites_a_corrupt_metrics_file_from_the_checkpoint(good, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(good.run, run)
    (run / "metrics.jsonl").write_bytes(b'{"epoch": 1, "lo\n\x00\xff garbage\n')
    result = cli("train", good.model, "--resume", run, "--epochs", 2)
    assert result.exit_code == 0, result.output
    metrics = read_metrics(run)
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert metrics[0] == read_metrics(good.run)[0]


def test_an_error_message_with_a_line_break_stays_one_line(good, tmp_path):
    path = tmp_path / "two\nlines.npz"
    assert_cli_refuses(["train", good.model, "--data", path], "two\\nlines.npz",
                       ["file not found"])


def test_a_checkpoint_given_as_weights_says_what_to_give_instead(good):
    checkpoint = good.run / "checkpoint.npz"
    for verb in (["evaluate", checkpoint], ["predict", checkpoint, good.inputs]):
        assert_cli_refuses(verb, checkpoint, ("is a training checkpoint, not a weights file",
                                              f"give its run directory ({good.run})"))


def test_a_runs_weights_must_belong_to_its_model_json(good, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(good.run, run)
    doc = json.loads((run / "model.json").read_text())
    doc["layers"][0]["out_channels"] += 1  # model.json edited after training
    (run / "model.json").write_text(json.dumps(doc))
    assert_cli_refuses(["evaluate", run], run / "weights.npz",
                       ("does not belong to", "model.json", "out_channels"))
