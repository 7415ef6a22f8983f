"""Assign each prediction (anchor or proposal) to its best ground-truth box and label it.

Shape shorthand:
    G: number of ground-truth boxes
    N: number of predictions

Thresholds [t1, ..., tk] cut the IoU axis into k + 1 intervals
[-inf, t1), [t1, t2), ..., [tk, +inf); labels [l0, ..., lk] name each interval.
RPN: thresholds [0.3, 0.7], labels [0, -1, 1] (background, ignored, foreground).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from plugrcnn.errors import PlugrcnnError


class Matcher:
    """Label predictions by the IoU with their best-matching ground truth.

    Args:
        thresholds: increasing IoU thresholds (each interval is closed on the left).
        labels: one label per interval, len(thresholds) + 1 values from {-1, 0, 1}.
        allow_low_quality_matches: for every ground truth, also mark as foreground (label 1)
            the predictions whose IoU with it is the highest any prediction reaches, ties
            included, so that every ground truth gets at least one prediction.
    """

    def __init__(
        self, thresholds: Sequence[float], labels: Sequence[int], allow_low_quality_matches: bool
    ) -> None:
        thresholds = [float(t) for t in thresholds]
        if any(low > high for low, high in zip(thresholds[:-1], thresholds[1:])):
            raise PlugrcnnError(f"matcher: thresholds {thresholds} must be non-decreasing")
        if len(labels) != len(thresholds) + 1 or any(lab not in (-1, 0, 1) for lab in labels):
            raise PlugrcnnError(
                f"matcher: need {len(thresholds) + 1} labels from {{-1, 0, 1}}, got {list(labels)}"
            )
        self.thresholds = [-float("inf"), *thresholds, float("inf")]
        self.labels = [int(lab) for lab in labels]
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, iou: Tensor) -> tuple[Tensor, Tensor]:
        """Match a (G, N) IoU matrix.

        Returns:
            matched_idx: (N,) int64, index of the best ground truth of each prediction
                (0 when G == 0; meaningful only where match_labels == 1).
            match_labels: (N,) int8, the label of each prediction.
        """
        num_predictions = iou.shape[1]
        if iou.shape[0] == 0:
            matched_idx = torch.zeros(num_predictions, dtype=torch.int64, device=iou.device)
            match_labels = torch.full(
                (num_predictions,), self.labels[0], dtype=torch.int8, device=iou.device
            )
            return matched_idx, match_labels

        # Best ground truth for each prediction: (G, N) -> (N,)
        matched_vals, matched_idx = iou.max(dim=0)
        match_labels = torch.empty(num_predictions, dtype=torch.int8, device=iou.device)
        for label, low, high in zip(self.labels, self.thresholds[:-1], self.thresholds[1:]):
            in_interval = (matched_vals >= low) & (matched_vals < high)
            match_labels[in_interval] = label

        if self.allow_low_quality_matches:
            self._promote_low_quality_matches(iou, match_labels)
        return matched_idx, match_labels

    @staticmethod
    def _promote_low_quality_matches(iou: Tensor, match_labels: Tensor) -> None:
        # Every prediction that reaches some ground truth's highest IoU becomes foreground; its
        # matched_idx stays its own best ground truth (as in torchvision and detectron2).
        best_iou_per_gt = iou.max(dim=1).values
        is_best_for_some_gt = (iou == best_iou_per_gt[:, None]).any(dim=0)
        match_labels[is_best_for_some_gt] = 1
