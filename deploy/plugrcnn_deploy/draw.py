"""Draw detections with the heads' own ``draw`` (lowest ``draw_order`` first: masks under boxes)."""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from plugrcnn.heads.base import Head


def keep_confident(detection: dict[str, Tensor], min_score: float) -> dict[str, Tensor]:
    """The rows of every per-detection field whose score is at least `min_score`."""
    keep = detection["scores"] >= min_score
    count = int(keep.numel())
    return {k: (v[keep] if v.dim() > 0 and v.shape[0] == count else v) for k, v in detection.items()}


class DetectionDrawer:
    def __init__(self, heads: Mapping[str, Head], min_score: float = 0.5) -> None:
        self.heads = sorted(heads.values(), key=lambda h: h.draw_order)
        self.min_score = min_score

    @torch.no_grad()
    def __call__(self, image: Tensor, detection: dict[str, Tensor]) -> Tensor:
        """uint8 (3, H, W) on any device -> drawn uint8 (3, H, W) (heads may move it to the CPU)."""
        detection = keep_confident(detection, self.min_score)
        for head in self.heads:
            image = head.draw(image, detection)
        return image
