"""plugrcnn's keypoint head: one heatmap per keypoint on detections, any number of keypoints."""
from __future__ import annotations

from plugrcnn_keypoint.config import KeypointHeadConfig, KeypointLayout, resolve_layout
from plugrcnn_keypoint.decode import heatmaps_to_keypoints
from plugrcnn_keypoint.head import KeypointHead
from plugrcnn_keypoint.loss import keypoint_rcnn_loss
from plugrcnn_keypoint.targets import KeypointCodec, heatmap_targets

__all__ = ["KeypointCodec", "KeypointHead", "KeypointHeadConfig", "KeypointLayout",
           "heatmap_targets", "heatmaps_to_keypoints", "keypoint_rcnn_loss", "resolve_layout"]
