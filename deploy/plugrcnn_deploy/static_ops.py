"""Fixed-shape building blocks of the deploy graph: class-aware NMS and multi-level RoIAlign.

Shape shorthand:
    N   images in the batch
    T   candidate boxes per image (static)
    G   groups NMS runs within (pyramid levels for proposals, classes for detections)
    R   boxes per image to pool; C channels; P pooled size

Both produce tensors whose shapes depend only on the input shapes, so the graph around them is
static; only NMS's own list of kept indices has a data-dependent length, and it is turned into a
(N, T) mask straight away.

In ONNX export NMS becomes one standard ``NonMaxSuppression`` node that does the grouping itself:
scores go in as (N, G, T) with every box scored only in its own group and -1 elsewhere, and a
score threshold of -0.5 drops the -1 entries. Everywhere else (eager PyTorch, torch.export for
AOTInductor) it is torchvision's NMS with each group shifted to its own region of the plane, in
float64 so that the shift loses no precision.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.ops import nms, roi_align

from plugrcnn.modeling.poolers import MultiLevelRoIAlign, assign_boxes_to_levels

MASKED_SCORE = -1.0  # score of a candidate that must not be selected (real scores are >= 0)


class _OnnxNonMaxSuppression(torch.autograd.Function):
    """ONNX NonMaxSuppression: boxes (N, T, 4), scores (N, G, T) -> selected (S, 3) int64 rows
    (image, group, box). The eager forward only serves the tracer; its values are exact."""

    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor, max_per_group: int,  # type: ignore[override]
                iou_threshold: float, score_threshold: float) -> Tensor:
        rows = []
        for n in range(boxes.shape[0]):
            for g in range(scores.shape[1]):
                idx = torch.where(scores[n, g] > score_threshold)[0]
                keep = idx[nms(boxes[n, idx], scores[n, g, idx], iou_threshold)][:max_per_group]
                rows.append(torch.stack([torch.full_like(keep, n), torch.full_like(keep, g), keep], 1))
        return torch.cat(rows) if rows else boxes.new_zeros((0, 3), dtype=torch.int64)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_group: int, iou_threshold: float,  # type: ignore[no-untyped-def]
                 score_threshold: float):
        return g.op(
            "NonMaxSuppression", boxes, scores,
            g.op("Constant", value_t=torch.tensor([max_per_group], dtype=torch.int64)),
            g.op("Constant", value_t=torch.tensor([iou_threshold], dtype=torch.float32)),
            g.op("Constant", value_t=torch.tensor([score_threshold], dtype=torch.float32)),
            center_point_box_i=0,
        )


def grouped_nms_keep(boxes: Tensor, scores: Tensor, groups: Tensor, num_groups: int,
                     iou_threshold: float, max_per_group: int, coordinate_bound: float) -> Tensor:
    """NMS within each group: boxes (N, T, 4), scores (N, T) (MASKED_SCORE = not a candidate),
    groups (N, T) or (T,) int64 in [0, G) -> keep (N, T) bool, masked candidates never kept.

    `coordinate_bound` bounds every box coordinate (boxes are clipped to the image), which sets
    how far apart the groups are moved in the non-ONNX path.
    """
    n, t = scores.shape
    groups = groups.expand(n, t)
    if torch.onnx.is_in_onnx_export():
        one_hot = groups[:, None, :] == torch.arange(num_groups, device=groups.device)[None, :, None]
        # (N, T) -> (N, G, T): each box scored in its own group only
        grouped_scores = torch.where(one_hot, scores[:, None, :], torch.full_like(one_hot, MASKED_SCORE,
                                                                                   dtype=scores.dtype))
        selected = _OnnxNonMaxSuppression.apply(boxes.float(), grouped_scores.float(), max_per_group,
                                                iou_threshold, MASKED_SCORE / 2)
        flat = selected[:, 0] * t + selected[:, 2]
        kept = torch.zeros(n * t, dtype=scores.dtype, device=scores.device)
        kept = kept.index_put((flat,), torch.ones_like(flat, dtype=scores.dtype))
        return (kept.view(n, t) > 0.5) & (scores >= 0)
    shift = groups.to(torch.float64) * (coordinate_bound + 1.0)
    shifted = boxes.to(torch.float64) + shift[..., None]  # (N, T, 4), groups far apart
    keep_rows = []
    for i in range(n):
        kept_idx = nms(shifted[i], scores[i].to(torch.float64), iou_threshold)
        keep_rows.append(torch.zeros(t, dtype=torch.bool, device=scores.device).index_fill(0, kept_idx, True))
    return torch.stack(keep_rows) & (scores >= 0)


def pool_static(pooler: MultiLevelRoIAlign, features: Sequence[Tensor], boxes: Tensor) -> Tensor:
    """`pooler`'s multi-level RoIAlign with fixed shapes: boxes (N, R, 4) -> (N*R, C, P, P).

    Every level pools every box, but a box not assigned to a level is replaced by an empty box
    there (one cheap sample per bin with adaptive sampling) and its result is discarded, so the
    level assignment needs neither per-box loops nor data-dependent shapes. Each level is one
    standard ONNX RoiAlign (sampling_ratio and the half-pixel mode written out by torchvision).
    """
    n, r, _ = boxes.shape
    flat = boxes.reshape(n * r, 4).float()
    # (N,) -> (N, R) -> (N*R, 1): the image of every box, image-major like `flat`
    image_idx = torch.arange(n, device=boxes.device, dtype=flat.dtype)[:, None].expand(n, r).reshape(n * r, 1)
    levels = assign_boxes_to_levels(flat, pooler.min_level, pooler.max_level, pooler.canonical_box_size,
                                    pooler.canonical_level, pooler.eps, pooler.eps_inside_log)
    empty = torch.zeros_like(flat)
    pooled: Tensor | None = None
    for level, (feature, scale) in enumerate(zip(features, pooler.scales)):
        here = levels == level
        rois = torch.cat([image_idx, torch.where(here[:, None], flat, empty)], dim=1)  # (N*R, 5)
        level_pooled = roi_align(feature.float(), rois, output_size=pooler.output_size, spatial_scale=scale,
                                 sampling_ratio=pooler.sampling_ratio, aligned=pooler.aligned)
        pooled = level_pooled if pooled is None else torch.where(here[:, None, None, None], level_pooled, pooled)
    assert pooled is not None
    return pooled
