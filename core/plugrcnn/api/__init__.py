"""The Python API: ``model = plugrcnn.load(config, weights=...)``; ``result = model("img.jpg")``."""
from __future__ import annotations

from plugrcnn.api.model import Model, load
from plugrcnn.api.resolve import resolve
from plugrcnn.api.results import Result

__all__ = ["Model", "Result", "load", "resolve"]
