"""Reading a file whose path a user gave: bounded, and never blocking.

Any path on the command line or in a folder a user hands over may be a FIFO (a read would wait
forever for a writer), a device (`/dev/zero` never ends), a folder, or a regular file of
gigabytes. Every read of such a path goes through here: the file is opened without blocking,
its type and size are taken from the opened file itself (so one swapped in between cannot slip
by), and no more than `limit` bytes are ever read. The errors are `OSError`s, so a caller's
existing `except OSError` names the file and the fix as for any unreadable file.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

# No file vlm-tv-eval reads comes near this: results, units and analyses are kilobytes to a few
# megabytes; the largest task file a person would write is tens of megabytes.
MAX_READ_BYTES = 256 * 1024 * 1024

_FILE_TYPES = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class ReadRefused(OSError):
    """A path that is not read at all: not a regular file, a link where none is accepted, or
    larger than the bound. `str()` is the reason, in words, with the fix."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def _file_type(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((words for test, words in _FILE_TYPES if test(mode)), "not a regular file")


def file_problem(path: str | Path) -> str | None:
    """Why `path` is not a file to read (None when it is one, or a link to one), without
    opening it: asked before a read, so the message is "is a folder" rather than a misleading
    error, and a FIFO is named rather than waited on."""
    path = Path(path)
    try:
        if path.is_file():
            return None
        if path.is_dir():
            return "is a folder"
        if path.is_symlink() and not path.exists():
            return "is a link to a file that does not exist"
        if not path.exists():
            return "does not exist"
        return f"is {_file_type(path.stat().st_mode)}, not a regular file"
    except OSError as exc:  # e.g. a name too long for the file system
        return f"cannot be read ({exc.strerror or exc})"


def _open_flags(follow_symlinks: bool) -> int:
    """Read-only and non-blocking (opening a FIFO with no writer would wait forever), and not
    through a symbolic link unless asked."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    return flags if follow_symlinks else flags | getattr(os, "O_NOFOLLOW", 0)


def read_capped(
    path: str | Path, *, follow_symlinks: bool = True, limit: int = MAX_READ_BYTES
) -> tuple[bytes | None, str | None]:
    """The bytes of `path`, or None and why it was not read: a symbolic link (unless
    `follow_symlinks`), anything but a regular file, or more than `limit` bytes."""
    path = Path(path)
    link = "is a symbolic link, not a file; replace it with the file itself"
    if not follow_symlinks and path.is_symlink():
        return None, link
    try:
        fd = os.open(path, _open_flags(follow_symlinks))
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            return None, link
        if exc.errno == errno.ENOENT:
            return None, "does not exist"
        return None, f"cannot be opened: {exc.strerror or exc}"
    try:
        info = os.fstat(fd)
        kind = _file_type(info.st_mode)
        if kind:
            return None, f"is {kind}, not a regular file; give a file"
        too_big = (
            f"is larger than {limit} bytes, which no file vlm-tv-eval reads is; is this the "
            "file you meant?"
        )
        if info.st_size > limit:
            return None, too_big
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(limit + 1)
        return (None, too_big) if len(data) > limit else (data, None)
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror or exc}"
    finally:
        os.close(fd)


def read_bytes(path: str | Path, *, limit: int = MAX_READ_BYTES) -> bytes:
    """`read_capped`, raising `ReadRefused` (an OSError) with the reason instead of returning it."""
    data, problem = read_capped(path, limit=limit)
    if data is None:
        raise ReadRefused(f"{path} {problem}")
    return data


def read_text(path: str | Path, *, limit: int = MAX_READ_BYTES) -> str:
    """The file as UTF-8 text, bounded like `read_bytes` (UnicodeDecodeError when it is not)."""
    return read_bytes(path, limit=limit).decode("utf-8")
