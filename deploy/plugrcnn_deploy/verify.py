"""Exported model vs PyTorch on the same images: the numbers that say an export is good.

Detections are paired greedily by class and box overlap (equal scores may come in either order);
float32 also needs the same number of detections, fp16 tolerates a few unmatched. Then, per pair:
box corners, and for the fields heads add, the comparison each head declares for it
(`Head.output_checks`): ``binary_mask`` by IoU, ``points`` by pixel distance, ``value`` (the
default) by its largest difference relative to its size, ``skip`` not at all.

A keypoint is the argmax of a heatmap: where two peaks are equally high, float rounding may pick
the other one. A keypoint that moved more than half a pixel while its score (x, y, *score*)
agrees to KEYPOINT_TIE_REL is counted as such a tie, reported, and left out of the distances.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torchvision.ops import box_iou


KEYPOINT_TIE_REL = 1e-3


@dataclass(frozen=True)
class Limits:
    box_px: float = 0.05
    mask_iou: float = 0.98
    keypoint_px: float = 1.0
    field_rel: float = 1e-2       # other fields: |a - b| <= field_rel * (|b| + 1)
    unmatched_fraction: float = 0.0
    keypoint_quantile: float = 1.0  # of the keypoint distances; fp16 may move a flat heatmap's peak


FP32_LIMITS = Limits()
FP16_LIMITS = Limits(box_px=2.0, mask_iou=0.9, keypoint_px=3.0, field_rel=0.05, unmatched_fraction=0.05,
                     keypoint_quantile=0.95)


@dataclass
class Comparison:
    reference_count: int = 0
    matched: int = 0
    max_box_diff: float = 0.0
    mask_intersection: float = 0.0
    mask_union: float = 0.0
    keypoint_distances: list[Tensor] = field(default_factory=list)
    keypoint_ties: int = 0
    field_diffs: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def max_keypoint_distance(self) -> float | None:
        return self.keypoint_distance(1.0)

    def keypoint_distance(self, quantile: float) -> float | None:
        if not self.keypoint_distances:
            return None
        distances = torch.cat(self.keypoint_distances)
        return float(torch.quantile(distances, quantile)) if distances.numel() else 0.0

    @property
    def mask_iou(self) -> float | None:
        return self.mask_intersection / self.mask_union if self.mask_union > 0 else None

    def summary(self) -> list[str]:
        lines = [f"detections: {self.matched} of {self.reference_count} matched (label and box)",
                 f"largest box difference: {self.max_box_diff:.4f} px"]
        if self.mask_iou is not None:
            lines.append(f"binary-mask IoU: {self.mask_iou:.4f}")
        if self.max_keypoint_distance is not None:
            lines.append(f"largest point distance: {self.max_keypoint_distance:.4f} px"
                         + (f" ({self.keypoint_ties} keypoints at an equally high peak elsewhere)"
                            if self.keypoint_ties else ""))
        lines += [f"{name}: largest relative difference {diff:.2e}" for name, diff in self.field_diffs.items()]
        return lines


def field_checks(heads: Mapping[str, Any]) -> dict[str, str]:
    """Detection field -> how verify compares it, from every head's `output_checks`."""
    return {f"pred_{key}": check for head in heads.values() for key, check in head.output_checks().items()}


def _pairs(reference: dict[str, Tensor], candidate: dict[str, Tensor]) -> list[tuple[int, int]]:
    """Greedy pairs (reference, candidate): best-scoring reference first, to the unused candidate of
    the same label that overlaps it most (IoU >= 0.5). Order-free, so equal scores may swap."""
    ref_labels, cand_labels = reference["pred_classes"], candidate["pred_classes"]
    ref_boxes, cand_boxes = reference["pred_boxes"].float(), candidate["pred_boxes"].float()
    iou = box_iou(ref_boxes, cand_boxes).nan_to_num(0.0)
    # a box of zero width or height has no IoU with anything, itself included: equal corners pair
    same = (ref_boxes[:, None, :] - cand_boxes[None, :, :]).abs().amax(-1) <= 0.5 if iou.numel() else iou.bool()
    iou = torch.where(same, torch.ones_like(iou), iou)
    iou[ref_labels[:, None] != cand_labels[None, :]] = 0
    pairs = []
    for i in range(len(ref_labels)):  # reference is sorted by score: best first
        if iou.shape[1] and float(iou[i].max()) >= 0.5:
            j = int(iou[i].argmax())
            iou[:, j] = 0  # used
            pairs.append((i, j))
    return pairs


def compare_image(reference: dict[str, Tensor], candidate: dict[str, Tensor], result: Comparison,
                  strict: bool, checks: Mapping[str, str] | None = None) -> None:
    """Accumulate one image's comparison into `result`; `checks`: field -> how it is compared."""
    checks = checks or {}
    reference = {k: v.detach().cpu() for k, v in reference.items()}
    candidate = {k: v.detach().cpu() for k, v in candidate.items()}
    result.reference_count += len(reference["pred_classes"])
    if strict and len(reference["pred_classes"]) != len(candidate["pred_classes"]):
        result.problems.append(f"{len(candidate['pred_classes'])} detections where PyTorch has "
                               f"{len(reference['pred_classes'])}")
    pairs = _pairs(reference, candidate)
    result.matched += len(pairs)
    if not pairs:
        return
    ri = torch.tensor([p[0] for p in pairs])
    ci = torch.tensor([p[1] for p in pairs])
    box_diff = (reference["pred_boxes"][ri].float() - candidate["pred_boxes"][ci].float()).abs().max()
    result.max_box_diff = max(result.max_box_diff, float(box_diff))
    skip = {"pred_boxes", "pred_classes", "scores"}
    missing = sorted(n for n in set(checks) - set(candidate) if checks[n] != "skip" and n in reference)
    result.problems += [f"the export has no field {n} (PyTorch has it)" for n in missing
                        if f"the export has no field {n} (PyTorch has it)" not in result.problems]
    for name in sorted(set(reference) & set(candidate) - skip):
        ref, cand = reference[name][ri], candidate[name][ci]
        check = checks.get(name, "value")
        if check == "skip":
            continue
        if check == "binary_mask":
            ref_bin, cand_bin = _binary(ref), _binary(cand)
            result.mask_intersection += float((ref_bin & cand_bin).sum())
            result.mask_union += float((ref_bin | cand_bin).sum())
        elif check == "points":
            _add_keypoints(ref.float(), cand.float(), result)
        elif ref.is_floating_point() and ref.shape == cand.shape and ref.numel():
            rel = float(((ref - cand.to(ref.dtype)).abs() / (ref.abs() + 1.0)).max())
            result.field_diffs[name] = max(result.field_diffs.get(name, 0.0), rel)


def _add_keypoints(ref: Tensor, cand: Tensor, result: Comparison) -> None:
    """ref, cand (D, ..., 3) x, y, score."""
    distance = (ref[..., :2] - cand[..., :2]).norm(dim=-1)
    tie = (distance > 0.5) & ((ref[..., 2] - cand[..., 2]).abs() <= KEYPOINT_TIE_REL * ref[..., 2].abs())
    result.keypoint_ties += int(tie.sum())
    result.keypoint_distances.append(distance[~tie])


def _binary(masks: Tensor) -> Tensor:
    return masks if masks.dtype == torch.bool else masks.float() > 0.5


def judge(result: Comparison, limits: Limits) -> list[str]:
    """The limits `result` exceeds, one line each (empty: the export is good)."""
    problems = list(result.problems)
    unmatched = result.reference_count - result.matched
    if unmatched > limits.unmatched_fraction * result.reference_count:
        problems.append(f"{unmatched} PyTorch detections have no match with the same label")
    if result.max_box_diff > limits.box_px:
        problems.append(f"box difference {result.max_box_diff:.4f} px > {limits.box_px} px")
    if result.mask_iou is not None and result.mask_iou < limits.mask_iou:
        problems.append(f"binary-mask IoU {result.mask_iou:.4f} < {limits.mask_iou}")
    distance = result.keypoint_distance(limits.keypoint_quantile)
    if distance is not None and distance > limits.keypoint_px:
        which = "largest" if limits.keypoint_quantile >= 1 else f"{limits.keypoint_quantile:.0%} quantile of"
        problems.append(f"{which} point distance {distance:.3f} px > {limits.keypoint_px} px")
    for name, diff in result.field_diffs.items():
        if diff > limits.field_rel:
            problems.append(f"{name} differs by {diff:.2e} (relative) > {limits.field_rel}")
    return problems
