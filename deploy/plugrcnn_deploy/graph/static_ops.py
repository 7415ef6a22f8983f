"""Fixed-shape building blocks of the deploy graph: NMS as a fixed-size matrix computation, and
multi-level RoIAlign.

Shape shorthand:
    N   images in the batch
    T   candidate boxes per image (static)
    R   boxes per image to pool; C channels; P pooled size

Every output shape depends only on the input shapes, so the graph is fully static: no
``NonMaxSuppression`` (whose list of kept indices has a data-dependent length), no ``NonZero``.

NMS (``static_nms_keep``): greedy NMS keeps box j iff no *kept* box that precedes it (higher
score; lower index on a tie) in its group overlaps it by more than the IoU threshold. With the
(T, T) suppression matrix S[i, j] = "i precedes j, same group, IoU > threshold", that is the fixed
point of ``keep = candidate & ~any_i(keep[i] & S[i, j])``; iterating from ``keep = candidate``
reaches it after as many rounds as the longest chain of "kept box suppresses a box that would
otherwise have suppressed the next" (often 2-6). Each round is one (1, T) x (T, T) MatMul.
A traced or exported graph (ONNX, torch.export for AOTInductor) runs a fixed, odd number of
rounds (``DEFAULT_NMS_ROUNDS``); eager PyTorch (the torch backend) runs torchvision's exact greedy
NMS instead, which is the fixed point and on the CPU ~10x faster than building the matrix. The iterates alternate between a
subset and a superset of the exact answer, so an odd count that has not converged keeps fewer
boxes, never two boxes that overlap over the threshold; ``--verify`` compares with PyTorch.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.ops import batched_nms, roi_align

from plugrcnn.modeling.poolers import MultiLevelRoIAlign, assign_boxes_to_levels
from plugrcnn_deploy.formats.spec import DEFAULT_NMS_ROUNDS

MASKED_SCORE = -1.0  # score of a candidate that must not be selected (real scores are >= 0)


def _exporting() -> bool:
    """True while a tracer or compiler records the graph (a fixed round count is needed)."""
    tracing = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
    exporting = getattr(torch.compiler, "is_exporting", lambda: False)()
    return bool(tracing or exporting or torch.compiler.is_compiling())


def suppression_matrix(boxes: Tensor, scores: Tensor, groups: Tensor | None, iou_threshold: float) -> Tensor:
    """S (N, T, T) bool: S[n, i, j] = candidate i precedes j (higher score, or the same score and a
    lower index), both in the same group, and IoU(i, j) > iou_threshold (torchvision's formula)."""
    t = scores.shape[1]
    x1, y1, x2, y2 = boxes.float().unbind(-1)  # (N, T) each
    area = (x2 - x1) * (y2 - y1)
    # (N, T, 1) against (N, 1, T), one coordinate at a time (cheaper than a (N, T, T, 2) broadcast
    # in onnxruntime): pairwise intersection width and height
    width = (torch.minimum(x2[:, :, None], x2[:, None, :]) - torch.maximum(x1[:, :, None], x1[:, None, :])).clamp(min=0)
    height = (torch.minimum(y2[:, :, None], y2[:, None, :]) - torch.maximum(y1[:, :, None], y1[:, None, :])).clamp(min=0)
    inter = width * height  # (N, T, T)
    iou = inter / (area[:, :, None] + area[:, None, :] - inter)
    index = torch.arange(t, device=scores.device)
    earlier = index[:, None] < index[None, :]  # (T, T)
    s_i, s_j = scores[:, :, None], scores[:, None, :]
    precedes = (s_i > s_j) | ((s_i == s_j) & earlier)
    matrix = precedes & (iou > iou_threshold)
    if groups is not None:
        matrix = matrix & (groups[:, :, None] == groups[:, None, :])
    return matrix


def static_nms_keep(boxes: Tensor, scores: Tensor, groups: Tensor | None, iou_threshold: float,
                    rounds: int = DEFAULT_NMS_ROUNDS) -> Tensor:
    """Greedy NMS (within groups) with fixed shapes: boxes (N, T, 4), scores (N, T)
    (MASKED_SCORE = not a candidate), groups (N, T) int or None -> keep (N, T) bool.

    Eager: torchvision's greedy NMS (exact). Traced/exported: `rounds` rounds (see module doc).
    """
    candidate = scores >= 0
    if not _exporting():
        return _greedy_keep(boxes, scores, groups, iou_threshold)
    matrix_f = (suppression_matrix(boxes, scores, groups, iou_threshold) & candidate[:, :, None]).float()
    keep = candidate
    for _ in range(rounds):
        # (N, 1, T) @ (N, T, T) -> (N, T): how many kept boxes suppress each box
        keep = candidate & ~(torch.matmul(keep.float()[:, None, :], matrix_f)[:, 0] > 0)
    return keep


def _greedy_keep(boxes: Tensor, scores: Tensor, groups: Tensor | None, iou_threshold: float) -> Tensor:
    """torchvision's batched NMS over the candidates (scores >= 0) of each image -> keep (N, T)."""
    keep = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    for i in range(scores.shape[0]):
        idx = torch.where(scores[i] >= 0)[0]
        group = groups[i, idx] if groups is not None else torch.zeros_like(idx)
        kept = idx[batched_nms(boxes[i, idx].float(), scores[i, idx], group, iou_threshold)]
        keep[i, kept] = True
    return keep


def nms_rounds_needed(boxes: Tensor, scores: Tensor, groups: Tensor | None, iou_threshold: float) -> int:
    """How many rounds the fixed-point iteration needs on this input to reach greedy NMS (for
    choosing DEFAULT_NMS_ROUNDS by measurement): the first r whose iterate is the fixed point."""
    candidate = scores >= 0
    matrix_f = (suppression_matrix(boxes, scores, groups, iou_threshold) & candidate[:, :, None]).float()
    keep, rounds = candidate, 0
    while True:
        new_keep = candidate & ~(torch.matmul(keep.float()[:, None, :], matrix_f)[:, 0] > 0)
        if torch.equal(new_keep, keep):
            return rounds
        keep, rounds = new_keep, rounds + 1


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
                                    pooler.canonical_level, pooler.eps)
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
