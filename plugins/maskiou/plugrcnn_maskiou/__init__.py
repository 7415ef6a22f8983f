"""Mask Scoring R-CNN (Huang et al., 2019) for plugrcnn: a MaskIoU head that builds on the mask head."""
from __future__ import annotations

from plugrcnn_maskiou.head import MaskIoUHead, MaskIoUHeadConfig, mask_iou_targets

__all__ = ["MaskIoUHead", "MaskIoUHeadConfig", "mask_iou_targets"]
