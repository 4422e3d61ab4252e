"""Atomic file replacement: write a temporary file beside the target, then rename it.

A process killed at any moment leaves either the old file or the new one, never half of
one; the directory is fsynced after the rename, so the new name survives a crash too.

Only regular files are replaced. A target that is a FIFO, a device, a socket or a
directory is refused (:class:`NotARegularFileError`): renaming over it would turn, say,
``/dev/null`` into a regular file. A symlink is written through: its target, which must
be a regular file (or not exist yet, in an existing directory), is replaced atomically
and the link stays as it is. A dangling symlink is refused rather than followed.

A new file gets the permissions the umask gives new files (the kernel applies the umask
when the temporary file is created, so the process umask is never read or changed); a
replaced file keeps its permission bits.
"""
import errno
import os
import secrets
import stat

from ._regular import NotARegularFileError, kind

TEMP_PREFIX = ".tmp-"


def resolve_target(path):
    """The file that writing ``path`` replaces, with its ``os.stat`` result (None if it
    does not exist yet): ``path`` itself, or the regular file a symlink points to.
    Anything else is a NotARegularFileError naming ``path``."""
    path = os.fspath(path)
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # the rename will say what is wrong
        return path, None
    if stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(path)
        try:
            st = os.stat(target)
        except FileNotFoundError:
            raise NotARegularFileError(
                f"{path} is a symlink to {target}, which does not exist; refusing to write "
                f"through it") from None
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFileError(
                f"{path} is a symlink to {target}, which is {kind(st.st_mode)}; refusing "
                f"to replace it (give the path of a regular file)")
        return target, st
    if not stat.S_ISREG(st.st_mode):
        raise NotARegularFileError(
            f"{path} is {kind(st.st_mode)}; refusing to replace it (give the path of a "
            f"regular file)")
    return path, st


def check_writable_target(path):
    """Refuse (NotARegularFileError) a ``path`` that :func:`atomic_write` would refuse, so
    that a command can say so before doing its work."""
    resolve_target(path)


def _create_temp(directory, suffix):
    """``(fd, path)`` of a new, empty file in ``directory`` (mode 0666 less the umask)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f"{TEMP_PREFIX}{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no unused temporary file name in {directory}")


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # e.g. Windows, where directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a directory; the data is synced
        pass
    finally:
        os.close(fd)


def atomic_write(path, write, binary=True):
    """Call ``write(f)`` on a temporary file and rename it to ``path`` (or to the regular
    file the symlink ``path`` points to); see the module's docstring."""
    target, existing = resolve_target(path)
    if existing is not None and not os.access(target, os.W_OK):
        # the rename needs only the directory's permission: it would replace a file the
        # user cannot write (root can write any)
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
    directory = os.path.dirname(os.path.abspath(target))
    suffix = os.path.splitext(target)[1]
    try:
        fd, tmp = _create_temp(directory, suffix)
    except OSError as exc:  # a read-only or full directory: say which file was wanted
        raise _naming(exc, path) from None
    try:
        if existing is not None and hasattr(os, "fchmod"):
            os.fchmod(fd, stat.S_IMODE(existing.st_mode) & 0o777)
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # once more just before the rename: what was checked at the start may have been
        # replaced (say, by a FIFO) while ``write`` ran, which can take long
        if resolve_target(path)[0] != target:
            raise NotARegularFileError(f"{path} changed while it was being written; "
                                       f"nothing was replaced")
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.filename in (None, tmp):
            raise _naming(exc, path) from None
        raise
    _fsync_directory(directory)


def _naming(exc, path):
    """``exc`` naming ``path``, the file the user asked for, rather than the temporary
    file (or no file: a write that fills the disk names none)."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror, os.fspath(path))
