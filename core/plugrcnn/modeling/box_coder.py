"""Box <-> regression-delta transform of R-CNN (Girshick et al., 2014).

Shape shorthand:
    N: number of boxes
    k: number of boxes predicted per reference box (e.g. one per class)

A delta (dx, dy, dw, dh) moves a reference box (anchor or proposal) onto a target box:
    dx = wx * (target_ctr_x - ref_ctr_x) / ref_w        dw = ww * log(target_w / ref_w)
    dy = wy * (target_ctr_y - ref_ctr_y) / ref_h        dh = wh * log(target_h / ref_h)

The order of the floating-point operations below follows torchvision's BoxCoder on purpose:
with the same inputs the results are bit-identical, which the torchvision-parity configs need.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

# detectron2 and torchvision both cap exp(dw) so that a box grows at most 1000/16 times.
DEFAULT_SCALE_CLAMP = math.log(1000.0 / 16)


class BoxCoder:
    """Encode target boxes as deltas relative to reference boxes and decode them back.

    Args:
        weights: (wx, wy, ww, wh) multipliers of the deltas; (1, 1, 1, 1) for the RPN,
            (10, 10, 5, 5) for the Fast R-CNN box head.
        scale_clamp: upper bound applied to dw and dh before exp() when decoding.
    """

    def __init__(
        self, weights: tuple[float, float, float, float], scale_clamp: float = DEFAULT_SCALE_CLAMP
    ) -> None:
        self.weights = tuple(float(w) for w in weights)
        self.scale_clamp = float(scale_clamp)

    def encode(self, target_boxes: Tensor, reference_boxes: Tensor) -> Tensor:
        """Deltas (N, 4) that move each reference box (N, 4) onto its target box (N, 4)."""
        wx, wy, ww, wh = self.weights
        target_boxes = target_boxes.to(reference_boxes.dtype)

        ref_widths = reference_boxes[:, 2] - reference_boxes[:, 0]
        ref_heights = reference_boxes[:, 3] - reference_boxes[:, 1]
        ref_ctr_x = reference_boxes[:, 0] + 0.5 * ref_widths
        ref_ctr_y = reference_boxes[:, 1] + 0.5 * ref_heights

        target_widths = target_boxes[:, 2] - target_boxes[:, 0]
        target_heights = target_boxes[:, 3] - target_boxes[:, 1]
        target_ctr_x = target_boxes[:, 0] + 0.5 * target_widths
        target_ctr_y = target_boxes[:, 1] + 0.5 * target_heights

        dx = wx * (target_ctr_x - ref_ctr_x) / ref_widths
        dy = wy * (target_ctr_y - ref_ctr_y) / ref_heights
        dw = ww * torch.log(target_widths / ref_widths)
        dh = wh * torch.log(target_heights / ref_heights)
        return torch.stack((dx, dy, dw, dh), dim=1)

    def decode(self, deltas: Tensor, reference_boxes: Tensor) -> Tensor:
        """Boxes (N, k, 4) obtained by applying deltas (N, k*4) to reference boxes (N, 4)."""
        num_boxes = deltas.shape[0]
        boxes_per_reference = deltas.shape[1] // 4
        reference_boxes = reference_boxes.to(deltas.dtype)
        wx, wy, ww, wh = self.weights

        widths = reference_boxes[:, 2] - reference_boxes[:, 0]
        heights = reference_boxes[:, 3] - reference_boxes[:, 1]
        ctr_x = reference_boxes[:, 0] + 0.5 * widths
        ctr_y = reference_boxes[:, 1] + 0.5 * heights

        # (N, k*4) -> four (N, k) views, one per delta component
        dx = deltas[:, 0::4] / wx
        dy = deltas[:, 1::4] / wy
        dw = torch.clamp(deltas[:, 2::4] / ww, max=self.scale_clamp)
        dh = torch.clamp(deltas[:, 3::4] / wh, max=self.scale_clamp)

        pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
        pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
        half_w = 0.5 * (torch.exp(dw) * widths[:, None])
        half_h = 0.5 * (torch.exp(dh) * heights[:, None])

        pred_boxes = torch.stack(
            (pred_ctr_x - half_w, pred_ctr_y - half_h, pred_ctr_x + half_w, pred_ctr_y + half_h), dim=2
        )
        return pred_boxes.reshape(num_boxes, boxes_per_reference, 4)
