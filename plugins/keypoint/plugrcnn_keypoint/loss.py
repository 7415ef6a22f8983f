"""Softmax cross-entropy over heatmap positions, one term per keypoint target (Mask R-CNN, sec. 5).

Shape shorthand: R training RoIs, K keypoints, S heatmap side.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from plugrcnn_keypoint.targets import heatmap_targets


def keypoint_rcnn_loss(logits: torch.Tensor, rois: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
    """logits (R, K, S, S), rois (R, 4), keypoints (R, K, 3) of each RoI's GT -> scalar.

    Each labelled keypoint inside its RoI is one S*S-way classification of where it is; the
    loss is their mean (normalised by the number of such keypoints in the batch, as both
    torchvision and detectron2 do by default). A RoI without any such keypoint adds nothing;
    without any in the batch the loss is a zero still connected to the head's parameters.
    """
    side = logits.shape[-1]
    index, valid = heatmap_targets(keypoints, rois, side)
    if not bool(valid.any()):
        return logits.sum() * 0.0
    # (R, K, S, S) -> (R, K, S*S), then the rows that are targets
    flat = logits.flatten(2)[valid]
    return F.cross_entropy(flat, index[valid], reduction="sum") / valid.sum()
