"""Detections drawn by the heads' own ``draw``: one path for predict, eval reports, ground truth
and the deploy video pipeline (lowest ``draw_order`` first, so masks lie under boxes)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor

from plugrcnn.heads.base import Head


def select_rows(detection: dict[str, Tensor], keep: Tensor) -> dict[str, Tensor]:
    """`detection` with every per-detection field (first axis = the `len(keep)` detections)
    indexed by the (D,) bool or index tensor `keep`; other fields pass through unchanged."""
    count = int(keep.shape[0])
    return {k: (v[keep] if v.dim() > 0 and v.shape[0] == count else v) for k, v in detection.items()}


def keep_confident(detection: dict[str, Tensor], min_score: float) -> dict[str, Tensor]:
    """The rows of every per-detection field whose score is at least `min_score`."""
    return select_rows(detection, detection["scores"] >= min_score)


def draw_detections(heads: Iterable[Head], image: Tensor, detection: dict[str, Tensor]) -> Tensor:
    """uint8 (3, H, W) with each head's fields of `detection` drawn on it, lowest `draw_order`
    first. Heads may return the picture on another device (the CPU)."""
    for head in sorted(heads, key=lambda h: h.draw_order):
        image = head.draw(image, detection)
    return image


class DetectionDrawer:
    """Draws the detections scoring at least `min_score`, on the image's own device."""

    def __init__(self, heads: Mapping[str, Head], min_score: float = 0.5) -> None:
        self.heads = list(heads.values())
        self.min_score = min_score

    @torch.no_grad()
    def __call__(self, image: Tensor, detection: dict[str, Tensor]) -> Tensor:
        """uint8 (3, H, W) on any device -> drawn uint8 (3, H, W)."""
        return draw_detections(self.heads, image, keep_confident(detection, self.min_score))
