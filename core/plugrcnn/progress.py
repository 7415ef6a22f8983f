"""Progress for long loops: a tqdm bar on a terminal, a line every so often otherwise (logs, CI)."""
from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TypeVar

from tqdm import tqdm

T = TypeVar("T")
LINE_EVERY_S = 30.0


def progress(items: Iterable[T], desc: str, unit: str = "it", total: int | None = None,
             enabled: bool = True, every_s: float = LINE_EVERY_S) -> Iterator[T]:
    """Yield `items`, showing progress on stderr: tqdm when stderr is a terminal, else a line
    ``desc: done/total unit (rate)`` at most every `every_s` seconds and at the end."""
    if total is None:
        total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
    if not enabled:
        yield from items
        return
    if sys.stderr.isatty():
        yield from tqdm(items, desc=desc, unit=unit, total=total)
        return
    yield from _periodic(items, desc, unit, total, every_s)


def _periodic(items: Iterable[T], desc: str, unit: str, total: int | None,
              every_s: float) -> Iterator[T]:
    start = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= every_s:
            last = now
            print(_line(desc, done, total, unit, now - start), file=sys.stderr, flush=True)
    print(_line(desc, done, total, unit, time.monotonic() - start), file=sys.stderr, flush=True)


def _line(desc: str, done: int, total: int | None, unit: str, elapsed: float) -> str:
    of = f"/{total}" if total is not None else ""
    rate = done / elapsed if elapsed > 0 else 0.0
    return f"{desc}: {done}{of} {unit} in {elapsed:.0f} s ({rate:.2f} {unit}/s)"
