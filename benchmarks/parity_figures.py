"""How far plugrcnn's detections are from torchvision's on the same image.

Detections are matched greedily, best torchvision score first, to the unmatched plugrcnn
detection of the same class with the highest box IoU (>= 0.5). In exact mode every detection
should match its twin at the same rank; in fast mode a few near the score threshold or the
per-image cut may have no twin, which the matched count shows.
"""
from __future__ import annotations

from typing import Any

import torch
from torchvision.ops import box_iou

# export-parity limits (deploy verify): the fast mode is held to these
LIMITS = {"box_px": 1.0, "mask_iou": 0.98, "keypoint_px": 2.0}


def _match(ref_boxes: torch.Tensor, ref_labels: torch.Tensor, boxes: torch.Tensor,
           labels: torch.Tensor) -> list[tuple[int, int]]:
    """(ref index, ours index) pairs; ref detections are already in descending score order."""
    if len(ref_boxes) == 0 or len(boxes) == 0:
        return []
    iou = box_iou(ref_boxes, boxes)
    iou[ref_labels[:, None] != labels[None, :]] = -1.0
    pairs, taken = [], torch.zeros(len(boxes), dtype=torch.bool)
    for r in range(len(ref_boxes)):
        row = iou[r].masked_fill(taken, -1.0)
        best = int(row.argmax())
        if row[best] >= 0.5:
            pairs.append((r, best))
            taken[best] = True
    return pairs


def _mask_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row IoU of (D, H, W) bool masks; two empty masks agree (IoU 1)."""
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def compare(ref: dict[str, torch.Tensor], ours: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Parity figures of plugrcnn's `ours` (pred_* fields) against torchvision's `ref`."""
    ref_boxes, ref_labels = ref["boxes"].float(), ref["labels"]
    boxes, labels = ours["pred_boxes"].float(), ours["pred_classes"]
    pairs = _match(ref_boxes, ref_labels, boxes, labels)
    r_idx = torch.tensor([p[0] for p in pairs], dtype=torch.long)
    o_idx = torch.tensor([p[1] for p in pairs], dtype=torch.long)
    same_order = (len(boxes) == len(ref_boxes) and torch.equal(labels.cpu(), ref_labels.cpu())
                  and bool((r_idx == o_idx).all()) and len(pairs) == len(ref_boxes))
    figures: dict[str, Any] = {
        "count_torchvision": len(ref_boxes), "count_plugrcnn": len(boxes), "matched": len(pairs),
        "same_order": same_order,
        "max_box_diff_px": _max_abs(boxes[o_idx] - ref_boxes[r_idx]),
        "max_score_diff": _max_abs(ours["scores"].float()[o_idx] - ref["scores"].float()[r_idx]),
    }
    ious = diff = None
    if "masks" in ref and "pred_masks" in ours:
        ious = _mask_iou(ours["pred_masks"][o_idx].bool(), ref["masks"][r_idx, 0] >= 0.5)
        figures["min_mask_iou"] = float(ious.min()) if len(ious) else 1.0
        figures["mean_mask_iou"] = float(ious.mean()) if len(ious) else 1.0
    if "keypoints" in ref and "pred_keypoints" in ours:
        diff = ours["pred_keypoints"][o_idx, :, :2].float() - ref["keypoints"][r_idx, :, :2].float()
        figures["max_keypoint_diff_px"] = _max_abs(diff)
    figures["within_limits_fraction"] = _fraction_within_limits(
        len(ref_boxes), boxes[o_idx] - ref_boxes[r_idx], ious if "min_mask_iou" in figures else None,
        diff if "max_keypoint_diff_px" in figures else None)
    figures["identical"] = same_order and figures["max_box_diff_px"] <= 1e-3 and \
        figures.get("min_mask_iou", 1.0) >= 0.99 and figures.get("max_keypoint_diff_px", 0.0) <= 1e-2
    figures["within_limits"] = (figures["max_box_diff_px"] <= LIMITS["box_px"]
                                and figures.get("min_mask_iou", 1.0) >= LIMITS["mask_iou"]
                                and figures.get("max_keypoint_diff_px", 0.0) <= LIMITS["keypoint_px"])
    return figures


def _fraction_within_limits(count: int, box_diff: torch.Tensor, ious: torch.Tensor | None,
                            keypoint_diff: torch.Tensor | None) -> float:
    """Fraction of the reference's detections with a twin within every limit."""
    if not len(box_diff):
        return 0.0 if count else 1.0
    ok = box_diff.abs().amax(1) <= LIMITS["box_px"]
    if ious is not None:
        ok &= ious >= LIMITS["mask_iou"]
    if keypoint_diff is not None:
        ok &= keypoint_diff.abs().flatten(1).amax(1) <= LIMITS["keypoint_px"]
    return float(ok.sum()) / count if count else 1.0


def _max_abs(diff: torch.Tensor) -> float:
    return float(diff.abs().max()) if diff.numel() else 0.0
