"""The records a head plugin yields (kept here for older imports; they live in plugrcnn.heads)."""
from __future__ import annotations

from plugrcnn.heads.spec import HeadContext, HeadSpec, RoIInput

__all__ = ["HeadContext", "HeadSpec", "RoIInput"]
