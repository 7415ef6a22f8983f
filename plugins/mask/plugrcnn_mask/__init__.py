"""plugrcnn's mask head: Mask R-CNN instance masks, as a plugin."""
from __future__ import annotations

from plugrcnn_mask.head import MaskHead, MaskHeadConfig
from plugrcnn_mask.loss import build_roi_mask_targets, select_class_channel
from plugrcnn_mask.paste import paste_masks
from plugrcnn_mask.targets import MaskCodec, MaskTargets

__all__ = ["MaskCodec", "MaskHead", "MaskHeadConfig", "MaskTargets", "build_roi_mask_targets", "paste_masks",
           "select_class_channel"]
