"""plugrcnn's mask head: Mask R-CNN instance masks, as a plugin."""
from __future__ import annotations

from plugrcnn_mask.head import MaskHead, MaskHeadConfig
from plugrcnn_mask.paste import paste_masks
from plugrcnn_mask.targets import MaskCodec, MaskTargets

__all__ = ["MaskCodec", "MaskHead", "MaskHeadConfig", "MaskTargets", "paste_masks"]
