"""Atomic file replacement: write a temporary file beside the target, then rename it.

A process killed at any moment leaves either the old file or the new one, never half of
one. Files get the permissions the umask gives new files (not mkstemp's 0600).
"""
import os
import tempfile


_file_mode = None


def _new_file_mode():
    """0o666 less the umask, read once (reading it means setting it, so not at import)."""
    global _file_mode
    if _file_mode is None:
        mask = os.umask(0o022)
        os.umask(mask)
        _file_mode = 0o666 & ~mask
    return _file_mode


def atomic_write(path, write, binary=True):
    """Call ``write(f)`` on a temporary file and rename it to ``path``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
