"""The head plugin system: hook specifications, the HeadSpec record, the plugin manager."""
from __future__ import annotations

from plugrcnn.plugins.hookspecs import hookimpl
from plugrcnn.plugins.spec import HeadSpec, RoIInput

__all__ = ["HeadSpec", "RoIInput", "hookimpl"]
