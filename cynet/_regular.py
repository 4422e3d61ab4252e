"""Regular files only: what cynet reads from or writes to a path the user gave.

Opening a FIFO blocks until a writer comes, reading ``/dev/zero`` never ends, and
renaming over a device replaces it; so every user path is checked to be a regular file.
"""
import os
import stat


class NotARegularFileError(ValueError):
    """A path that is not a regular file, where cynet reads or replaces one; ``kind``
    says what it is instead (``"a FIFO (named pipe)"``), when known."""

    def __init__(self, message, kind=None):
        super().__init__(message)
        self.kind = kind


def kind(mode):
    """What a file of ``st_mode`` ``mode`` is, in words, when it is not a regular file."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path):
    """``path`` opened for binary reading, if it is a regular file (a symlink to one is
    followed); else NotARegularFileError naming it. The open itself cannot block: it is
    non-blocking until the file is known to be regular. OSError (missing, unreadable)
    passes through."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
                 | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFileError(f"{os.fspath(path)} is {kind(mode)}, not a regular file",
                                       kind(mode))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
