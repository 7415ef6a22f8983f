"""The head contract: the base class every head plugin subclasses, and the per-image targets."""
from __future__ import annotations

from plugrcnn.heads.base import Head, HeadContext
from plugrcnn.heads.targets import ImageTargets, TargetCodec

__all__ = ["Head", "HeadContext", "ImageTargets", "TargetCodec"]
