"""Output files that are either complete or absent, and one-line errors when they cannot be.

Every command writes through these helpers: the bytes go to a temp file next to the target
(``.<name>.<random>.tmp``, the pattern `engine.checkpoint.remove_stale_temp_files` cleans up),
are flushed and fsynced, then renamed over the target in one step. A full disk, an unwritable
folder or an output path that is a file ends in a `PlugrcnnError` naming the path and the
reason; the file that was there before (an earlier good output) is left as it was.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from plugrcnn.errors import PlugrcnnError

_TEMP_SUFFIX = ".tmp"


def os_error_reason(exc: OSError) -> str:
    """`No space left on device`, `Permission denied`, ...: the part of an OSError a user needs."""
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    return exc.strerror or str(exc) or type(exc).__name__


def os_error_behind(exc: BaseException) -> OSError | None:
    """The OSError that caused `exc`, if any: torch.save on a full disk raises ENOSPC, and then a
    RuntimeError from its zip writer while closing, with the OSError as its context."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def prepare_output_dir(path: str | Path) -> Path:
    """Create the folder `path` (and its parents); a clear error if it cannot be a folder."""
    path = Path(path)
    for parent in (path, *path.parents):
        if parent.exists() and not parent.is_dir():
            raise PlugrcnnError(f"{path}: cannot be used as an output folder: {parent} is a file")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PlugrcnnError(f"{path}: cannot create the output folder ({os_error_reason(exc)})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise PlugrcnnError(f"{path}: output folder is not writable")
    return path


def replace_atomically(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write(file)` on a temp file next to `path`, then rename it to `path` in one step.

    The temp file is removed on any failure, so `path` keeps its earlier content. A failure whose
    cause is an OSError (a full disk: torch.save raises ENOSPC, then its zip writer a
    RuntimeError on close) is raised as one OSError naming `path`; anything else as it is.
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{_TEMP_SUFFIX}"
    try:
        # os.open rather than mkstemp: the file gets the usual umask permissions, not 0600
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        cause = os_error_behind(exc)
        if cause is not None:
            raise OSError(cause.errno, cause.strerror or str(cause), str(path)) from None
        raise
    fsync_directory(path.parent)


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """`replace_atomically` for a user-facing output: the folder is made and checked first, and
    an OSError (disk full, permissions, a folder in the way) becomes a one-line PlugrcnnError."""
    path = Path(path)
    prepare_output_dir(path.parent)
    if path.is_dir():
        raise PlugrcnnError(f"{path}: is a folder; cannot write the output file there")
    try:
        replace_atomically(path, write)
    except OSError as exc:
        raise PlugrcnnError(f"{path}: cannot write ({os_error_reason(exc)}); any earlier "
                            f"{path.name} is left as it was") from None


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    write_atomic(path, lambda file: file.write(data))


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, obj: Any, indent: int | None = None) -> None:
    # serialise first: an object JSON cannot hold fails before anything touches the disk
    write_text_atomic(path, json.dumps(obj, indent=indent))


def fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
