"""Detections of one image from network-input to original-image coordinates: the one step after
the RoI stage that the eager model and the deploy decoder share (outside any graph)."""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from plugrcnn.heads.base import Head
from plugrcnn.modeling.preprocess import rescale_boxes


def finalize_detection(detection: dict[str, Tensor], heads: Iterable[Head],
                       network_size: tuple[int, int], original_size: tuple[int, int], *,
                       clip_boxes: bool = False) -> dict[str, Tensor]:
    """In place (and returned): scale ``pred_boxes`` from the (h, w) `network_size` the boxes were
    predicted in to `original_size`, then let each head move its own fields (mask paste,
    keypoint scaling). `clip_boxes` clamps the boxes to the original image afterwards, for inputs
    whose network image had padding around the resized picture (a letterbox), where a box may
    reach into the padding; the heads still see the unclipped boxes, as in the eager model."""
    detection["pred_boxes"], scale = rescale_boxes(detection["pred_boxes"], network_size, original_size)
    for head in heads:
        head.finalize(detection, scale, original_size)
    if clip_boxes:
        height, width = original_size
        x1, y1, x2, y2 = detection["pred_boxes"].unbind(1)
        detection["pred_boxes"] = torch.stack([x1.clamp(0, width), y1.clamp(0, height),
                                               x2.clamp(0, width), y2.clamp(0, height)], 1)
    return detection
