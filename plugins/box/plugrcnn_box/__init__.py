"""plugrcnn's box head: class-specific box refinement of every RoI."""
from __future__ import annotations

from plugrcnn_box.head import BoxHead, BoxHeadConfig

__all__ = ["BoxHead", "BoxHeadConfig"]
