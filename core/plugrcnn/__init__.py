"""plugrcnn: a two-stage detector whose heads are plugins.

``plugrcnn.load(config, weights=...)`` returns a `plugrcnn.api.Model` (imported on first use, so
the command line and ``import plugrcnn.errors`` stay light).
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("load", "Model", "Result")


def __getattr__(name: str) -> Any:
    if name in _API:
        from plugrcnn import api

        return getattr(api, name)
    raise AttributeError(f"module 'plugrcnn' has no attribute {name!r}")
