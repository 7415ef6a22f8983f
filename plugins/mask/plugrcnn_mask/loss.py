"""The mask loss: per-pixel sigmoid BCE on the GT class's channel only (mask and class decoupled).

Shape shorthand:
    R   training RoIs of the mask head (foreground), all images concatenated
    K   mask channels: C + 1 class-specific (0 = background, never trained) or 1 (agnostic)
    M   mask resolution (28)
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from plugrcnn_mask.targets import MaskTargets, crop_mask_targets


def select_class_channel(mask_logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """(R, K, M, M) -> (R, M, M): each row's channel for its class (channel 0 if K == 1)."""
    if mask_logits.shape[1] == 1:
        return mask_logits[:, 0]
    index = classes.to(torch.int64).view(-1, 1, 1, 1).expand(-1, 1, *mask_logits.shape[-2:])
    return mask_logits.gather(1, index)[:, 0]


def build_roi_mask_targets(rois: list[Any], targets: list[MaskTargets],
                           resolution: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For the concatenated RoIs: which have a GT mask (R,) bool, their classes (R',) and their
    binary M x M targets (R', M, M). A RoI whose GT has no mask is left out of the loss."""
    keep, classes, cuts = [], [], []
    for roi, target in zip(rois, targets):  # a loop over images
        gt_index = roi.matched_gt.clamp(min=0)
        if target.valid.numel() == 0:  # an image without GT: nothing to learn a mask from
            has_mask = torch.zeros_like(roi.labels, dtype=torch.bool)
        else:
            has_mask = (roi.labels > 0) & target.valid.to(roi.labels.device)[gt_index]
        keep.append(has_mask)
        classes.append(roi.labels[has_mask])
        cuts.append(crop_mask_targets(target, roi.boxes[has_mask], gt_index[has_mask], resolution))
    return torch.cat(keep), torch.cat(classes), torch.cat(cuts)


def mask_rcnn_loss(mask_logits: torch.Tensor, classes: torch.Tensor,
                   gt_masks: torch.Tensor) -> torch.Tensor:
    """Mean BCE over R x M x M of the class channel's logits (R, K, M, M) against (R, M, M)."""
    if gt_masks.shape[0] == 0:  # keeps the graph connected to the head's parameters (DDP)
        return mask_logits.sum() * 0.0
    return class_channel_loss(select_class_channel(mask_logits, classes), gt_masks)


def class_channel_loss(class_logits: torch.Tensor, gt_masks: torch.Tensor) -> torch.Tensor:
    """Mean BCE over R x M x M of logits already on each row's class channel (R, M, M)."""
    if gt_masks.shape[0] == 0:  # keeps the graph connected to the head's parameters (DDP)
        return class_logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(class_logits, gt_masks.to(class_logits.dtype),
                                              reduction="mean")
