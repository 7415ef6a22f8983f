"""plugrcnn's class head: softmax classification of every RoI over num_classes + background."""
from __future__ import annotations

from plugrcnn_class.head import ClassHead, ClassHeadConfig

__all__ = ["ClassHead", "ClassHeadConfig"]
