"""The RPN of the deploy graph: the core's RPN head and anchors, proposal selection with fixed counts.

Shape shorthand:
    N   images;  L pyramid levels;  A anchors per location
    R   anchors of one image over all levels (fixed by the input size)
    T   candidates: the top pre_nms_topk anchors of each level, sum over levels of Tl = min(topk, Rl)
    P   proposal slots: min(post_nms_topk, T)

Same steps as the core's `select_proposals` (top-k per level, decode, clip, drop small and
low-scoring boxes, NMS within each level, best post_nms_topk), but every count is fixed: a
dropped or suppressed candidate keeps its slot with the score -1, and ``valid`` says which of the
P proposal slots hold a proposal.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from plugrcnn.modeling.rpn import RPN, flatten_deltas, flatten_objectness
from plugrcnn_deploy.graph.static_ops import DEFAULT_NMS_ROUNDS, MASKED_SCORE, static_nms_keep


class StaticProposals(nn.Module):
    """RPN head outputs per level -> proposals (N, P, 4) and valid (N, P) bool, best first."""

    def __init__(self, rpn: RPN, anchors_per_level: Sequence[Tensor], image_size: tuple[int, int],
                 nms_rounds: int = DEFAULT_NMS_ROUNDS) -> None:
        super().__init__()
        self.nms_rounds = nms_rounds
        self.box_coder = rpn.box_coder
        self.image_size = image_size
        self.register_buffer("anchors", torch.cat(list(anchors_per_level)), persistent=False)  # (R, 4)
        self.level_sizes = [int(a.shape[0]) for a in anchors_per_level]
        self.pre_nms_topk = rpn.pre_nms_topk_test
        self.nms_thresh = rpn.nms_thresh
        self.min_box_size = rpn.min_box_size
        self.score_thresh = rpn.score_thresh
        self.level_topk = [min(self.pre_nms_topk, size) for size in self.level_sizes]
        self.num_candidates = sum(self.level_topk)
        self.num_proposals = min(rpn.post_nms_topk_test, self.num_candidates)

    def forward(self, objectness_maps: Sequence[Tensor], delta_maps: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        """objectness (N, A, Hl, Wl) and deltas (N, A*4, Hl, Wl) per level, from the core's RPN head."""
        objectness = flatten_objectness([o.float() for o in objectness_maps])  # (N, R)
        deltas = flatten_deltas([d.float() for d in delta_maps])  # (N, R, 4)
        n = objectness.shape[0]
        top_idx = self._top_per_level(objectness)  # (N, T)
        logits = objectness.gather(1, top_idx)
        # (N, R, 4) gathered at (N, T) -> (N, T, 4)
        top_deltas = deltas.gather(1, top_idx[..., None].expand(n, -1, 4))
        top_anchors = self.anchors[top_idx]  # (N, T, 4)
        boxes = self.box_coder.decode(top_deltas.reshape(-1, 4), top_anchors.reshape(-1, 4)).view(n, -1, 4)
        boxes = _clip(boxes, self.image_size)
        scores = torch.sigmoid(logits)
        width, height = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
        ok = (width >= self.min_box_size) & (height >= self.min_box_size) & (scores >= self.score_thresh)
        scores = torch.where(ok, scores, torch.full_like(scores, MASKED_SCORE))
        keep = self._nms_per_level(boxes, scores)
        scores = torch.where(keep, scores, torch.full_like(scores, MASKED_SCORE))
        best, order = scores.topk(self.num_proposals, dim=1)  # (N, P), sorted
        proposals = boxes.gather(1, order[..., None].expand(n, -1, 4))
        return proposals, best >= 0

    def _nms_per_level(self, boxes: Tensor, scores: Tensor) -> Tensor:
        """boxes (N, T, 4), scores (N, T) -> keep (N, T): NMS within each level's block of
        candidates, so each level's suppression matrix is only (Tl, Tl)."""
        keep, offset = [], 0
        for k in self.level_topk:
            block = slice(offset, offset + k)
            keep.append(static_nms_keep(boxes[:, block], scores[:, block], None, self.nms_thresh, self.nms_rounds))
            offset += k
        return torch.cat(keep, dim=1)

    def _top_per_level(self, objectness: Tensor) -> Tensor:
        top, offset = [], 0
        for size, k in zip(self.level_sizes, self.level_topk):
            _, idx = objectness[:, offset:offset + size].topk(k, dim=1)
            top.append(idx + offset)
            offset += size
        return torch.cat(top, dim=1)


def _clip(boxes: Tensor, image_size: tuple[int, int]) -> Tensor:
    """Clamp XYXY boxes (..., 4) to [0, W] x [0, H], as torchvision's clip_boxes_to_image."""
    height, width = image_size
    x = boxes[..., 0::2].clamp(min=0, max=width)
    y = boxes[..., 1::2].clamp(min=0, max=height)
    # (..., 2) x and (..., 2) y -> (..., 2, 2) -> (..., 4) in x1, y1, x2, y2 order
    return torch.stack((x, y), dim=-1).reshape(boxes.shape)
