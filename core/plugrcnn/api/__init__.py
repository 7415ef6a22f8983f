"""The Python API: ``model = plugrcnn.load(config, weights=...)``; ``result = model("img.jpg")``."""
from __future__ import annotations

from plugrcnn.api.model import Model, load
from plugrcnn.api.resolve import register_zoo, resolve
from plugrcnn.api.results import Result

__all__ = ["Model", "Result", "load", "register_zoo", "resolve"]
