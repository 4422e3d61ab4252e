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
import os
import zipfile
import zlib

import numpy as np

# the model definition inside the files cynet writes
DEFINITION_ARRAY = "definition"
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
        self._check_kind()
        try:
            self._archive = np.load(self.path, allow_pickle=False)
        except MemoryError:
            raise self._fail("not a readable .npz file (corrupt or truncated): its zip "
                             "directory is too large to read") from None
        except _READ_ERRORS as exc:
            raise self._fail(f"not a readable .npz file (corrupt or truncated): "
                             f"{_reason(exc)}") from None
        self.names = list(self._archive.files)

    def _fail(self, problem):
        return self.error(f"{self.path}: {problem}")

    def _check_kind(self):
        """Refuse what is not a zip archive before numpy sees it (numpy would try pickle)."""
        if os.path.isdir(self.path):
            raise self._fail("is a directory, not an .npz file")
        try:
            with open(self.path, "rb") as f:
                head = f.read(len(_NPY_MAGIC))
        except FileNotFoundError:
            raise self._fail("file not found") from None
        except OSError as exc:
            raise self._fail(f"cannot read: {exc.strerror or exc}") from None
        if not head:
            raise self._fail("not a readable .npz file (corrupt or truncated): the file is "
                             "empty")
        if head.startswith(_NPY_MAGIC):
            raise self._fail("not an .npz archive (it holds a single .npy array)")
        if head[:4] not in _ZIP_MAGIC:
            raise self._fail("not an .npz file (not a zip archive of .npy arrays)")

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self._archive.close()

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

    def json_object(self, name, what):
        """The JSON object stored as the 0-d text array ``name``; ``what`` describes the
        file for a missing array (``"a cynet weights file"``)."""
        if name not in self.names:
            raise self._fail(f"not {what} (it has no {name!r} array)")
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


def read_cynet_file(path, error, meta_name, kind, supported):
    """``(meta, definition, arrays)`` of a file cynet wrote (a weights file, a checkpoint):
    the JSON object ``meta_name`` with a ``format_version`` this cynet reads (at most
    ``supported``), the JSON object ``definition``, and every other array by name."""
    what = f"a cynet {kind}"
    with NpzReader(path, error) as npz:
        meta = npz.json_object(meta_name, what)
        check_format_version(meta, path, kind, supported, error)
        definition = npz.json_object(DEFINITION_ARRAY, what)
        arrays = {k: npz.array(k) for k in npz.names
                  if k not in (meta_name, DEFINITION_ARRAY)}
    return meta, definition, arrays
