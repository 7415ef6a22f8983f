"""Final detections with fixed counts: per-class score threshold, per-class NMS, the best K.

Shape shorthand:
    N   images;  P proposal slots;  C foreground classes (C+1 columns, 0 = background)
    T   candidates: the best min(P*C, max_candidates) (proposal, class) pairs over the threshold
    K   detection slots

The core's `select_detections` keeps every (proposal, class) pair over the threshold; here the
best T of them go to NMS. The two agree whenever at most T pairs pass the threshold, and the
export verification compares them on real inputs.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from plugrcnn.config.schema import DetectionConfig
from plugrcnn_deploy.graph.static_ops import DEFAULT_NMS_ROUNDS, MASKED_SCORE, static_nms_keep


class StaticDetections(nn.Module):
    """scores (N, P, C+1), boxes (N, P, C+1, 4), proposal valid (N, P) -> K detections per image.

    Returns boxes (N, K, 4), scores (N, K), labels (N, K) int64 in 1..C, the proposal slot each
    detection came from (N, K) int64 and valid (N, K) bool (a prefix of every row).
    """

    def __init__(self, cfg: DetectionConfig, num_classes: int, num_proposals: int, max_detections: int,
                 max_candidates: int, nms_rounds: int = DEFAULT_NMS_ROUNDS) -> None:
        super().__init__()
        self.nms_rounds = nms_rounds
        self.cfg = cfg
        self.num_classes = num_classes
        self.num_candidates = min(num_proposals * num_classes, max_candidates)
        self.max_detections = min(max_detections, self.num_candidates)

    def forward(self, scores: Tensor, boxes: Tensor, proposal_valid: Tensor) -> tuple[Tensor, ...]:
        n, p, _ = scores.shape
        c = self.num_classes
        # drop the background column; (N, P, C) -> (N, P*C), proposal-major as in the core
        fg_scores = scores[:, :, 1:].reshape(n, p * c)
        fg_boxes = boxes[:, :, 1:].reshape(n, p * c, 4)
        ok = proposal_valid[:, :, None].expand(n, p, c).reshape(n, p * c) & (fg_scores > self.cfg.score_thresh)
        if self.cfg.min_box_size > 0:
            size = self.cfg.min_box_size
            ok = ok & (fg_boxes[..., 2] - fg_boxes[..., 0] >= size) & (fg_boxes[..., 3] - fg_boxes[..., 1] >= size)
        masked = torch.where(ok, fg_scores, torch.full_like(fg_scores, MASKED_SCORE))
        cand_scores, cand_idx = masked.topk(self.num_candidates, dim=1)  # (N, T)
        cand_boxes = fg_boxes.gather(1, cand_idx[..., None].expand(n, -1, 4))
        cand_classes = torch.remainder(cand_idx, c)  # 0-based class of each candidate
        keep = static_nms_keep(cand_boxes, cand_scores, cand_classes, self.cfg.nms_thresh, self.nms_rounds)
        kept_scores = torch.where(keep, cand_scores, torch.full_like(cand_scores, MASKED_SCORE))
        det_scores, order = kept_scores.topk(self.max_detections, dim=1)  # (N, K), sorted
        det_idx = cand_idx.gather(1, order)  # index into P*C
        valid = det_scores >= 0
        det_boxes = cand_boxes.gather(1, order[..., None].expand(n, -1, 4))
        det_scores = torch.where(valid, det_scores, torch.zeros_like(det_scores))
        labels = torch.remainder(det_idx, c) + 1
        proposal_slot = torch.div(det_idx, c, rounding_mode="floor")
        return det_boxes, det_scores, labels, proposal_slot, valid
