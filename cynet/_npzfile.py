"""Reading ``.npz`` files that may be damaged or hostile.

    with NpzReader(path, DataError) as npz:
        x = npz.array("x")            # npz.names: every member name

    meta, definition, arrays = read_cynet_file(path, error, "cynet_meta", "weights file", 1)

Nothing is ever unpickled. Every problem -- a missing file, a directory, an empty or
truncated file, a zip archive that is not an .npz, a damaged member, an object array, a
metadata text that is not a JSON object -- raises the caller's exception class (a
ValueError) with one line naming the file and what is wrong.
"""
import json
import math
import os
import zipfile
import zlib

import numpy as np

from ._regular import NotARegularFileError, open_regular

# the model definition inside the files cynet writes
DEFINITION_ARRAY = "definition"
# the most a JSON text array (metadata, definition) may hold once read: a 16 MiB text
MAX_TEXT_BYTES = 4 * 16 * 1024 * 1024
# what an array the model has no place for may hold (its name is then reported as
# unexpected, after reading it)
SMALL_ARRAY_BYTES = 4096
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a first member, or an empty archive
_NPY_MAGIC = b"\x93NUMPY"
# what a damaged zip archive or .npy member makes zipfile, zlib and numpy raise
# (NotImplementedError: an unknown compression method; RuntimeError: an encrypted member)
_READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error,
                NotImplementedError, RuntimeError)


def _reason(exc):
    return str(exc) or type(exc).__name__


def _json_kind(value):
    """What a parsed JSON value is, in JSON's words."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    return "null" if value is None else "a number"


class NpzReader:
    """An open ``.npz`` file whose problems raise ``error(message)``; a context manager."""

    def __init__(self, path, error):
        self.path = os.fspath(path)
        self.error = error
        self._file = self._open()
        try:
            self._archive = np.load(self._file, allow_pickle=False)
        except MemoryError:
            self._file.close()
            raise self._fail("not a readable .npz file (corrupt or truncated): its zip "
                             "directory is too large to read") from None
        except _READ_ERRORS as exc:
            self._file.close()
            raise self._fail(f"not a readable .npz file (corrupt or truncated): "
                             f"{_reason(exc)}") from None
        except BaseException:
            self._file.close()
            raise
        self.names = list(self._archive.files)
        self._members = set(self._archive.zip.namelist())

    def _fail(self, problem):
        return self.error(f"{self.path}: {problem}")

    def _open(self):
        """The file, open, once it is known to be a zip archive (numpy would try pickle
        on anything else) and a regular file (a FIFO would block)."""
        try:
            f = open_regular(self.path)
        except FileNotFoundError:
            raise self._fail("file not found") from None
        except NotARegularFileError as exc:
            raise self._fail(f"is {exc.kind}, not an .npz file (not a regular file)") from None
        except OSError as exc:
            raise self._fail(f"cannot read: {exc.strerror or exc}") from None
        try:
            head = f.read(len(_NPY_MAGIC))
            f.seek(0)
        except OSError as exc:
            f.close()
            raise self._fail(f"cannot read: {exc.strerror or exc}") from None
        problem = None
        if not head:
            problem = "not a readable .npz file (corrupt or truncated): the file is empty"
        elif head.startswith(_NPY_MAGIC):
            problem = "not an .npz archive (it holds a single .npy array)"
        elif head[:4] not in _ZIP_MAGIC:
            problem = "not an .npz file (not a zip archive of .npy arrays)"
        if problem:
            f.close()
            raise self._fail(problem)
        return f

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self._archive.close()
        self._file.close()

    def array(self, name):
        """The array ``name`` (which must be among ``names``), read and checked."""
        try:
            value = self._archive[name]
        except MemoryError:
            raise self._fail(f"array {name!r} is too large to load") from None
        except _READ_ERRORS as exc:
            if isinstance(exc, ValueError) and "allow_pickle" in str(exc):
                raise self._fail(f"array {name!r} holds object arrays, which would need "
                                 "pickle (refused); save plain numeric arrays") from None
            raise self._fail(f"corrupt array data in {name!r}: {_reason(exc)}") from None
        if not isinstance(value, np.ndarray):  # a zip member that is not an .npy file
            raise self._fail(f"member {name!r} is not an .npy array")
        return value

    def header(self, name):
        """``(shape, dtype)`` of array ``name`` from its .npy header alone (only the
        header is decompressed), or None for a member that is not an .npy array."""
        member = name + ".npy" if name + ".npy" in self._members else name
        damaged = (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
                   RuntimeError)
        try:
            with self._archive.zip.open(member) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                elif version in ((2, 0), (3, 0)):  # 3.0: a UTF-8 header, ASCII here
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    return None
        except damaged as exc:
            raise self._fail(f"corrupt array data in {name!r}: {_reason(exc)}") from None
        except (ValueError, SyntaxError, TypeError, UnicodeDecodeError):
            return None
        return shape, dtype

    def check_size(self, name, allowed):
        """Refuse, before decompressing it, an array whose header says it holds more than
        ``allowed`` bytes (a small file may inflate to gigabytes) or cannot be read."""
        header = self.header(name)
        if header is None:
            raise self._fail(f"member {name!r} is not an .npy array (no readable header)")
        shape, dtype = header
        held = math.prod(shape) * dtype.itemsize
        if held > allowed:
            raise self._fail(f"array {name!r} (dtype {dtype.str} {shape}) would take "
                             f"{held:,} bytes once read, more than the {allowed:,} bytes it "
                             "can hold here; refused without reading it")

    def json_object(self, name, what):
        """The JSON object stored as the 0-d text array ``name``; ``what`` describes the
        file for a missing array (``"a cynet weights file"``)."""
        if name not in self.names:
            raise self._fail(f"not {what} (it has no {name!r} array)")
        self.check_size(name, MAX_TEXT_BYTES)
        value = self.array(name)
        if value.dtype.kind != "U" or value.shape != ():
            raise self._fail(f"{name!r} is not a JSON text (it is {value.dtype} "
                             f"{value.shape}); the file is damaged")
        try:
            doc = json.loads(value.item())
        except (ValueError, RecursionError) as exc:
            raise self._fail(f"{name!r} is not valid JSON ({_reason(exc)}); the file is "
                             "damaged") from None
        if not isinstance(doc, dict):
            raise self._fail(f"{name!r} is not a JSON object (it is {_json_kind(doc)}); "
                             "the file is damaged")
        return doc


def check_format_version(meta, path, kind, supported, error):
    """The integer ``format_version`` of ``meta`` (a file's metadata), refusing one that
    is missing, not an integer, below 1 or above ``supported`` (a newer cynet's)."""
    if "format_version" not in meta:
        raise error(f"{path}: no format version in its metadata: not a {kind} written by "
                    "cynet, or damaged")
    version = meta["format_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise error(f"{path}: format version {json.dumps(version)} is not an integer; the "
                    "file is damaged")
    if version > supported:
        raise error(f"{path}: written by a newer cynet ({kind} format {version}; this "
                    f"cynet reads format {supported} and older); upgrade cynet")
    if version < 1:
        raise error(f"{path}: format version {version} is invalid (versions start at 1); "
                    "the file is damaged")
    return version


def read_cynet_file(path, error, meta_name, kind, supported, capacity=None):
    """``(meta, definition, arrays)`` of a file cynet wrote (a weights file, a checkpoint):
    the JSON object ``meta_name`` with a ``format_version`` this cynet reads (at most
    ``supported``), the JSON object ``definition``, and every other array by name.

    ``capacity(meta, definition)``, when given, returns ``{name: bytes}`` (or a function of
    the name giving bytes or None): what each array the model has a place for may hold.
    Every array's .npy header is checked against it before any array is decompressed (one
    the model has no place for may hold SMALL_ARRAY_BYTES, enough to be read and reported
    by name; one it has a place for, twice that place and as much again)."""
    what = f"a cynet {kind}"
    with NpzReader(path, error) as npz:
        meta = npz.json_object(meta_name, what)
        check_format_version(meta, path, kind, supported, error)
        definition = npz.json_object(DEFINITION_ARRAY, what)
        names = [k for k in npz.names if k not in (meta_name, DEFINITION_ARRAY)]
        if capacity is not None:
            room = capacity(meta, definition)
            room = room if callable(room) else room.get
            for name in names:
                # twice the room and a little: an array of a wider dtype, or of a slightly
                # different shape, is still read, and then reported exactly by the caller
                npz.check_size(name, 2 * (room(name) or 0) + SMALL_ARRAY_BYTES)
        arrays = {k: npz.array(k) for k in names}
    return meta, definition, arrays
