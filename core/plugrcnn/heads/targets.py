"""Per-image ground truth as the core sees it, plus each head's own targets.

The core knows boxes, labels and crowd flags; everything else (masks, keypoints, a third-party
head's attributes) is read from the COCO annotations by the head's `TargetCodec` and moved under
resize/flip by the same codec. Target `i` of a head belongs to GT box `i`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch


class TargetCodec(Protocol):
    """How a head reads and moves its targets. Runs in data-loader workers: keep it picklable."""

    def read(self, annotations: list[dict[str, Any]], height: int, width: int) -> Any:
        """Targets for `annotations` (validated COCO annotations, in GT order) of one image."""

    def transform(self, target: Any, op: Any) -> Any:
        """`target` after a geometric op (`ResizeOp` or `HFlipOp` from plugrcnn.data.transforms)."""

    def valid(self, target: Any) -> torch.Tensor:
        """(G,) bool: which GT instances carry this head's target (e.g. a visible keypoint)."""


@dataclass
class ImageTargets:
    """Ground truth of one image, in the coordinates of the (resized, flipped) network input."""
    gt_boxes: torch.Tensor                  # (G, 4) XYXY
    gt_labels: torch.Tensor                 # (G,) int64, 1..num_classes
    gt_crowd: torch.Tensor                  # (G,) bool; crowd boxes are never foreground
    heads: dict[str, Any] = field(default_factory=dict)  # head name -> that head's targets

    def to(self, device: torch.device | str) -> ImageTargets:
        return ImageTargets(self.gt_boxes.to(device), self.gt_labels.to(device),
                            self.gt_crowd.to(device), self.heads)
