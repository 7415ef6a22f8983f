"""Valid ranges of config values, declared beside the default and checked when a config loads.

A schema field declares its range with `ranged`:

    nms_thresh: float = ranged(0.7, ge=0, le=1)          # IoU above which NMS drops a box
    min_size_train: tuple[int, ...] = ranged((800,), gt=0, min_items=1)

The bounds apply to the value, or to every number inside it when it is a (nested) sequence;
`min_items` applies to every sequence level; `pattern` (a regular expression matched in full)
applies to strings. `plugrcnn.config.loader.structure` checks each declared range and reports
`<file>: key model.rpn.nms_thresh: must be in [0, 1], got 1.5`. Head plugins use the same
`ranged` in their config dataclasses. Non-finite floats are refused for every key by the loader.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

RANGE_KEY = "plugrcnn_range"  # the dataclass field metadata key


@dataclass(frozen=True)
class Range:
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    min_items: int | None = None
    pattern: str | None = None
    pattern_help: str | None = None   # the pattern in words, for the error message

    def describe(self) -> str:
        """`> 0`, `in [0, 1]`, `in (0, 1]`, `>= 1 and <= 8192` ..."""
        low = (f"{_num(self.ge)}", "[") if self.ge is not None else \
              (f"{_num(self.gt)}", "(") if self.gt is not None else None
        high = (f"{_num(self.le)}", "]") if self.le is not None else \
               (f"{_num(self.lt)}", ")") if self.lt is not None else None
        if low and high:
            return f"in {low[1]}{low[0]}, {high[0]}{high[1]}"
        if low:
            return f"{'>=' if low[1] == '[' else '>'} {low[0]}"
        if high:
            return f"{'<=' if high[1] == ']' else '<'} {high[0]}"
        return "any value"

    def problem(self, value: Any) -> str | None:
        """Why `value` is out of range (naming the item for sequences), or None."""
        if isinstance(value, (list, tuple)):
            if self.min_items is not None and len(value) < self.min_items:
                return f"needs at least {self.min_items} item(s), got {list(value)!r:.40}"
            for i, item in enumerate(value):
                inner = self.problem(item)
                if inner is not None:
                    return inner if isinstance(item, (list, tuple)) else f"item {i}: {inner}"
            return None
        if isinstance(value, str):
            if self.pattern is not None and not re.fullmatch(self.pattern, value):
                return f"must be {self.pattern_help or 'a match of ' + self.pattern}, got {value!r:.40}"
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if ((self.ge is not None and not value >= self.ge) or (self.gt is not None and not value > self.gt)
                or (self.le is not None and not value <= self.le) or (self.lt is not None and not value < self.lt)):
            return f"must be {self.describe()}, got {value!r}"
        return None


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def ranged(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
           lt: float | None = None, min_items: int | None = None, pattern: str | None = None,
           pattern_help: str | None = None) -> Any:
    """A dataclass field with `default` (immutable: a number, a string, a tuple) and its range."""
    rng = Range(ge=ge, gt=gt, le=le, lt=lt, min_items=min_items, pattern=pattern, pattern_help=pattern_help)
    return dataclasses.field(default=default, metadata={RANGE_KEY: rng})


def field_range(f: dataclasses.Field) -> Range | None:
    return f.metadata.get(RANGE_KEY)


def range_problems(instance: Any) -> list[tuple[str, str]]:
    """(field name, problem) for every field of a dataclass instance outside its declared range."""
    found = []
    for f in dataclasses.fields(instance):
        rng = field_range(f)
        if rng is not None and (problem := rng.problem(getattr(instance, f.name))) is not None:
            found.append((f.name, problem))
    return found
