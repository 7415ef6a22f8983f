"""From per-class scores and boxes over all proposals to the final detections of each image.

Shape shorthand: R proposals of one image, C+1 classes (0 = background), D detections.
"""
from __future__ import annotations

import torch
from torchvision.ops import batched_nms

from plugrcnn.config.schema import DetectionConfig


def select_detections(scores: torch.Tensor, boxes: torch.Tensor, cfg: DetectionConfig) -> dict[str, torch.Tensor]:
    """scores (R, C+1), boxes (R, C+1, 4) of one image -> threshold, per-class NMS, top-K.

    Returns ``pred_boxes`` (D, 4), ``scores`` (D,), ``pred_classes`` (D,) labels in 1..C and
    ``roi_index`` (D,): the proposal each detection came from. Sorted by decreasing score.
    """
    num_rois, num_labels = scores.shape
    labels = torch.arange(num_labels, device=scores.device).view(1, -1).expand_as(scores)
    # drop the background column, then (R, C) -> (R*C,)
    flat_boxes = boxes[:, 1:].reshape(-1, 4)
    flat_scores = scores[:, 1:].reshape(-1)
    flat_labels = labels[:, 1:].reshape(-1)
    keep = torch.where(flat_scores > cfg.score_thresh)[0]
    if cfg.min_box_size > 0:
        b = flat_boxes[keep]
        large = (b[:, 2] - b[:, 0] >= cfg.min_box_size) & (b[:, 3] - b[:, 1] >= cfg.min_box_size)
        keep = keep[large]
    nms_keep = batched_nms(flat_boxes[keep], flat_scores[keep], flat_labels[keep], cfg.nms_thresh)
    keep = keep[nms_keep[: cfg.detections_per_image]]
    return {
        "pred_boxes": flat_boxes[keep],
        "scores": flat_scores[keep],
        "pred_classes": flat_labels[keep],
        "roi_index": torch.div(keep, num_labels - 1, rounding_mode="floor"),
    }
