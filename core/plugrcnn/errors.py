"""The one exception type that means "the user's input is wrong"; the CLI prints it as one line."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class PlugrcnnError(ValueError):
    """Bad input named precisely: the file, the key or the id, and what to do about it."""


_WORKER_MARK = "Original Traceback"
_OWN_NAME = f"{__name__}.PlugrcnnError: "


def one_line(exc: BaseException) -> str:
    """The message of `exc` as the one line the CLI prints.

    A PlugrcnnError raised in a DataLoader worker reaches the main process re-raised with the
    worker's whole traceback as its message; the user's line is the last one, after
    `plugrcnn.errors.PlugrcnnError: `. Any other multi-line message is joined with "; ".
    """
    text = str(exc).strip()
    if _WORKER_MARK in text:
        last = [line for line in text.splitlines() if line.strip()][-1].strip()
        text = last.split(_OWN_NAME, 1)[1] if _OWN_NAME in last else last
    return "; ".join(line.strip() for line in text.splitlines() if line.strip()) or type(exc).__name__


def build_by_plugin(kind: str, name: str, key: str, build: Callable[..., T], *args: Any) -> T:
    """`build(*args)` of a plugin's head or backbone: a plugin's bug or an unchecked option
    becomes one line naming the plugin and the config key to check."""
    try:
        return build(*args)
    except PlugrcnnError:
        raise
    except Exception as exc:
        raise PlugrcnnError(f"{kind} '{name}': building it failed ({type(exc).__name__}: {exc}); "
                            f"check {key}") from exc
