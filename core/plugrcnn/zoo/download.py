"""Download a checkpoint once into the cache, with a progress bar, verifying its hash.

The file is streamed to a temporary name beside its final one and renamed only once its sha256
is known good, so a failed or mismatching download leaves nothing under the final name.

- A known hash (a hex digest or prefix: torchvision's file names carry one) must match.
- Without one (detectron2 publishes none), the sha256 of the first download is recorded in
  ``$PLUGRCNN_HOME/recorded_sha256.json`` and any later download of that URL must match it.
- ``PLUGRCNN_OFFLINE=1``: never touch the network; a file not in the cache is an error naming
  the URL and the cache path.
- URLs must be https://; http:// is accepted only from a loopback host (127.0.0.1, ::1,
  localhost): local mirrors and tests.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from plugrcnn.errors import PlugrcnnError

_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_CHUNK = 1 << 20


def cache_home() -> Path:
    return Path(os.environ.get("PLUGRCNN_HOME") or Path.home() / ".cache" / "plugrcnn")


def is_offline() -> bool:
    return os.environ.get("PLUGRCNN_OFFLINE", "") not in ("", "0")


def check_url(url: str) -> str:
    """The file name of an acceptable URL (https, or http from a loopback host)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise PlugrcnnError(f"{url}: http:// is accepted only from a loopback host "
                            f"({', '.join(_LOOPBACK)}); use https://")
    if parts.scheme not in ("https", "http"):
        raise PlugrcnnError(f"{url}: not an https:// URL")
    name = Path(urllib.parse.unquote(parts.path)).name
    if not name or name in (".", ".."):
        raise PlugrcnnError(f"{url}: the URL names no file")
    return name


def fetch(url: str, dest: Path, sha256: str | None) -> Path:
    """`dest` if cached, else download `url` to it, checking `sha256` (hex digest or prefix)."""
    if dest.is_file():
        return dest
    if is_offline():
        raise PlugrcnnError(f"offline (PLUGRCNN_OFFLINE=1) and not cached: {url} (cache path {dest})")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _stream(url, out, dest)
        expected = sha256 or _recorded(url)
        if expected and not digest.startswith(expected.lower()):
            raise PlugrcnnError(f"{url}: sha256 {digest} does not match the published "
                                f"{expected}; nothing saved at {dest}")
        if not sha256:
            _record(url, digest)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _stream(url: str, out, dest: Path) -> str:
    """Copy `url` into `out` with a progress bar on stderr; returns the hex sha256."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                      desc=f"download {dest.name}", disable=False) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise PlugrcnnError(f"{url}: download failed ({reason}); cache path {dest}") from None
    return digest.hexdigest()


def _records_path() -> Path:
    return cache_home() / "recorded_sha256.json"


def _recorded(url: str) -> str | None:
    try:
        return json.loads(_records_path().read_text()).get(url)
    except (OSError, ValueError):
        return None


def _record(url: str, digest: str) -> None:
    path = _records_path()
    try:
        records = json.loads(path.read_text())
    except (OSError, ValueError):
        records = {}
    records[url] = digest
    fd, tmp = tempfile.mkstemp(prefix=".recorded_sha256.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(records, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
