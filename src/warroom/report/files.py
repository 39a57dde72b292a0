"""Writing output files (reports, traces, exports): every failure is one OutputError naming
the file, never a traceback, and a file is either written whole or left as it was.

    path = check_output(Path("out/report.md"), "--out")   # early: before the work starts
    write_text(path, markdown, "--out")                    # creates out/ if it is missing

A regular file is written to a scratch file beside it and renamed over it, so a full disk
leaves the old file, not half a new one. A character device (/dev/null, /dev/stdout) or a
pipe with a reader is written in place; a directory, a socket, a block device or a pipe
nobody reads is refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from warroom.errors import InputError


class OutputError(InputError):
    """An output path that cannot be written; the message names it and why."""


def check_output(path: Path, what: str, special_ok: bool = True) -> Path:
    """`path` if a file can be written there (its missing folders made later); else OutputError.

    `special_ok=False` refuses devices and pipes too (an append-only log must be a file)."""
    info = _stat(path, what)
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise OutputError(f"{what} {path} is a directory; give a file name")
        special = stat.S_ISCHR(info.st_mode) or stat.S_ISFIFO(info.st_mode)
        if not stat.S_ISREG(info.st_mode) and not (special_ok and special):
            raise OutputError(f"{what} {path} is not a regular file ({_kind(info.st_mode)})")
    else:
        _check_parent(path, what)
    return path


def write_text(path: Path, text: str, what: str) -> Path:
    """Write `text` (UTF-8) to `path`, making missing parent folders; OutputError on failure."""
    check_output(path, what)
    data = text.encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        info = _stat(path, what)
        if info is not None and not stat.S_ISREG(info.st_mode):
            _write_special(path, data)
        else:
            _write_atomically(path, data)
    except OSError as err:
        raise OutputError(f"cannot write {what} {path}: {_reason(err)}") from None
    return path


def _write_atomically(path: Path, data: bytes) -> None:
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with scratch.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # a full disk shows here, before the rename
        os.replace(scratch, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            scratch.unlink()


def _write_special(path: Path, data: bytes) -> None:
    # Non-blocking open: a pipe with no reader fails at once (ENXIO) instead of waiting forever.
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _stat(path: Path, what: str) -> os.stat_result | None:
    try:
        return path.stat()
    except (FileNotFoundError, NotADirectoryError):  # a file on the way: _check_parent says
        return None
    except OSError as err:  # no permission, a symlink loop
        raise OutputError(f"cannot write {what} {path}: {_reason(err)}") from None


def _check_parent(path: Path, what: str) -> None:
    """The nearest existing ancestor must be a folder we may write in."""
    for parent in path.absolute().parents:
        info = _stat(parent, what)
        if info is None:
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise OutputError(f"cannot write {what} {path}: {parent} is not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write {what} {path}: no permission to write in {parent}")
        return


def _kind(mode: int) -> str:
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    return "a special file"


def _reason(err: OSError) -> str:
    if err.errno == errno.ENXIO:
        return "a pipe that nobody reads"
    if err.errno == errno.ENOSPC:
        return "no space left on the device"
    return err.strerror or str(err)
