"""Ground truth as a detection dict, so each head draws it with its own `draw` (show-data, the
worst images of an evaluation): boxes, labels and every head's GT fields (``pred_<key>``)."""
from __future__ import annotations

from typing import Any

import torch
from torchvision.utils import draw_bounding_boxes

from plugrcnn.heads.targets import ImageTargets
from plugrcnn.inference.draw_detections import draw_detections, select_rows

CROWD_COLOR = (160, 160, 160)


def ground_truth_detection(heads: dict[str, Any], targets: ImageTargets, height: int,
                           width: int) -> dict[str, torch.Tensor]:
    """The non-crowd GT of one image in the layout of a detection (scores 1)."""
    keep = ~targets.gt_crowd
    count = int(targets.gt_boxes.shape[0])
    detection: dict[str, torch.Tensor] = {
        "pred_boxes": targets.gt_boxes.float(), "pred_classes": targets.gt_labels,
        "scores": torch.ones(count)}
    for name, head in heads.items():
        if name in targets.heads:
            detection.update(head.ground_truth_fields(targets.heads[name], height, width))
    return select_rows(detection, keep)


def draw_ground_truth(heads: dict[str, Any], image: torch.Tensor, targets: ImageTargets) -> torch.Tensor:
    """uint8 (3, H, W) `image` with its GT drawn by each head (lowest `draw_order` first) and
    crowd regions as grey filled boxes marked "crowd"."""
    height, width = int(image.shape[-2]), int(image.shape[-1])
    detection = ground_truth_detection(heads, targets, height, width)
    image = draw_detections(heads.values(), image.cpu(), detection)
    crowd = targets.gt_boxes[targets.gt_crowd]
    if len(crowd):
        image = draw_bounding_boxes(image, crowd, labels=["crowd"] * len(crowd), colors=CROWD_COLOR,
                                    fill=True, width=1)
    return image


def uint8_image(image: torch.Tensor) -> torch.Tensor:
    """A mapped image (float in [0, 1]) back to uint8 (3, H, W) for drawing."""
    if image.dtype == torch.uint8:
        return image
    return (image.clamp(0, 1) * 255.0).round().to(torch.uint8)
