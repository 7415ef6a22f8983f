"""Output files that are either complete or absent: write to a temp name, rename at the end."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from plugrcnn.errors import PlugrcnnError
from plugrcnn.outputs import os_error_reason, prepare_output_dir


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path next to `path` (same suffix, so tools that look at it pick the right
    format); on success it is renamed over `path`, on any error or interrupt it is deleted."""
    path = Path(path)
    if path.is_dir():
        raise PlugrcnnError(f"{path}: is a folder; give a file name for the output")
    prepare_output_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{suffix or path.suffix}",
                                   dir=path.parent)
    except OSError as exc:
        raise PlugrcnnError(f"{path}: cannot write ({os_error_reason(exc)})") from None
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; the finished file gets the usual mode
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:  # a full disk while writing, or the rename refused
        raise PlugrcnnError(f"{path}: cannot write ({os_error_reason(exc)}); any earlier "
                            f"{path.name} is left as it was") from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
