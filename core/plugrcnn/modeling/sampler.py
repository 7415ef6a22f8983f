"""Balanced foreground/background sampling of anchors (RPN) and of proposals (RoI heads).

Shape shorthand:
    N: number of candidates in one image (anchors, or proposals + appended GT boxes)
    G: number of ground-truth boxes in one image (crowd boxes included)
    S: number of sampled RoIs in one image (<= batch_size_per_image)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import box_iou

from plugrcnn.modeling.matcher import Matcher

IGNORE_LABEL = -1


def _random_subset(indices: Tensor, count: int, generator: torch.Generator | None) -> Tensor:
    # Without a generator this is exactly torchvision's call, so a shared seed draws the same set.
    device = indices.device if generator is None else generator.device
    perm = torch.randperm(indices.numel(), generator=generator, device=device)[:count]
    return indices[perm.to(indices.device)]


def subsample_labels(
    labels: Tensor,
    num_samples: int,
    positive_fraction: float,
    bg_label: int,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Randomly pick at most num_samples candidates, at most positive_fraction of them positive.

    Args:
        labels: (N,) int; -1 = ignore, bg_label = background, anything else = foreground.
        num_samples: total number to sample; negatives fill what positives leave free.
        positive_fraction: upper bound on the share of positives.
        bg_label: the background label.
        generator: random source; None uses the global torch generator.

    Returns:
        pos_idx, neg_idx: int64 indices into labels of the sampled positives and negatives.
    """
    positive = torch.where((labels != IGNORE_LABEL) & (labels != bg_label))[0]
    negative = torch.where(labels == bg_label)[0]
    num_pos = min(positive.numel(), int(num_samples * positive_fraction))
    num_neg = min(negative.numel(), num_samples - num_pos)
    return _random_subset(positive, num_pos, generator), _random_subset(negative, num_neg, generator)


@dataclass
class SampledRoIs:
    """The RoIs sampled from one image for training the RoI heads.

    boxes: (S, 4) XYXY; labels: (S,) int64, 0 = background;
    matched_gt: (S,) int64 index into the image's GT list, -1 for background.
    """

    boxes: Tensor
    labels: Tensor
    matched_gt: Tensor


def _label_candidates(
    candidates: Tensor,
    gt_boxes: Tensor,
    gt_labels: Tensor,
    gt_crowd: Tensor,
    matcher: Matcher,
    fg_iou_threshold: float,
) -> tuple[Tensor, Tensor]:
    """Class label (N,) (-1 ignore, 0 background) and matched GT index (N,) (-1 if none)."""
    num_candidates = candidates.shape[0]
    device = candidates.device
    labels = torch.zeros(num_candidates, dtype=torch.int64, device=device)
    matched_gt = torch.full((num_candidates,), -1, dtype=torch.int64, device=device)

    solid_gt_idx = torch.where(~gt_crowd)[0]
    crowd_gt_idx = torch.where(gt_crowd)[0]
    if solid_gt_idx.numel() > 0:
        iou = box_iou(gt_boxes[solid_gt_idx], candidates)  # (G_solid, N)
        matched_idx, match_labels = matcher(iou)
        is_fg = match_labels == 1
        labels[is_fg] = gt_labels[solid_gt_idx[matched_idx[is_fg]]].to(torch.int64)
        matched_gt[is_fg] = solid_gt_idx[matched_idx[is_fg]]
        labels[match_labels == IGNORE_LABEL] = IGNORE_LABEL
    if crowd_gt_idx.numel() > 0:
        # A region covered by a crowd holds objects nobody annotated: neither fg nor bg.
        crowd_iou = box_iou(gt_boxes[crowd_gt_idx], candidates).max(dim=0).values  # (N,)
        labels[(crowd_iou >= fg_iou_threshold) & (matched_gt < 0)] = IGNORE_LABEL
    return labels, matched_gt


def sample_rois(
    proposals: list[Tensor],
    gt_boxes: list[Tensor],
    gt_labels: list[Tensor],
    gt_crowd: list[Tensor],
    *,
    batch_size_per_image: int = 512,
    positive_fraction: float = 0.25,
    fg_iou_threshold: float = 0.5,
    bg_iou_threshold: float = 0.5,
    append_gt: bool = True,
    generator: torch.Generator | None = None,
) -> list[SampledRoIs]:
    """Match proposals to ground truth and sample a balanced set of RoIs per image.

    IoU >= fg_iou_threshold with a non-crowd GT: foreground with that GT's label; below
    bg_iou_threshold: background; in between: ignored. Crowd GT boxes are never matched
    and mark the proposals overlapping them (IoU >= fg_iou_threshold) as ignored.
    Sampled RoIs come foreground first, then background.
    """
    matcher = Matcher([bg_iou_threshold, fg_iou_threshold], [0, -1, 1], allow_low_quality_matches=False)
    sampled = []
    for props, boxes, classes, crowd in zip(proposals, gt_boxes, gt_labels, gt_crowd):
        boxes = boxes.to(props.dtype)
        crowd = crowd.to(torch.bool)
        candidates = torch.cat([props, boxes[~crowd]]) if append_gt else props
        labels, matched_gt = _label_candidates(candidates, boxes, classes, crowd, matcher, fg_iou_threshold)
        pos_idx, neg_idx = subsample_labels(
            labels, batch_size_per_image, positive_fraction, bg_label=0, generator=generator
        )
        keep = torch.cat([pos_idx, neg_idx])
        sampled.append(SampledRoIs(candidates[keep], labels[keep], matched_gt[keep]))
    return sampled
