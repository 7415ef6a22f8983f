"""The plugin system: hook specifications and the plugin manager.

Head authors import what they need from `plugrcnn.heads`; `HeadSpec` and `RoIInput` are also
re-exported here for older plugins.
"""
from __future__ import annotations

from plugrcnn.heads.spec import HeadSpec, RoIInput
from plugrcnn.plugins.hookspecs import hookimpl

__all__ = ["HeadSpec", "RoIInput", "hookimpl"]
