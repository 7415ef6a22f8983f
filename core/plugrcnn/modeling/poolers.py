"""RoIAlign over a feature pyramid: each box is pooled from the level that suits its size.

Shape shorthand:
    R: number of boxes, all images concatenated
    C: channels of the feature maps
    Hl, Wl: height and width of feature level l
    P: output_size (the pooled RoI is P x P)

Level assignment is eq. 1 of the FPN paper (Lin et al., 2017):
    level = floor(canonical_level + log2(sqrt(box area) / canonical_box_size))
with a small eps so that boxes exactly on a boundary (224 px -> level 4) are not pushed down by
rounding. The eps is added after log2, in torchvision's operation order (bit-exact with it);
detectron2 adds it inside log2, which differs only for boxes within ~1e-7 of a boundary.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from plugrcnn.errors import PlugrcnnError
from plugrcnn.modeling.roi_align import roi_align


def assign_boxes_to_levels(
    boxes: Tensor,
    min_level: int,
    max_level: int,
    canonical_box_size: int = 224,
    canonical_level: int = 4,
    eps: float = 1e-6,
) -> Tensor:
    """Pyramid level index (R,) int64 of each box (R, 4), counted from min_level (= 0)."""
    box_sizes = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    # Same operation order as torchvision's LevelMapper, for identical rounding.
    eps_t = torch.tensor(eps, dtype=box_sizes.dtype, device=box_sizes.device)
    levels = torch.floor(canonical_level + torch.log2(box_sizes / canonical_box_size) + eps_t)
    levels = torch.clamp(levels, min=min_level, max=max_level)
    return levels.to(torch.int64) - min_level


def boxes_to_rois(boxes: Sequence[Tensor]) -> Tensor:
    """Per-image boxes -> (R, 5) rows (image index, x1, y1, x2, y2), the roi_align format."""
    concat = torch.cat(list(boxes), dim=0)
    image_idx = torch.cat(
        [torch.full((b.shape[0], 1), i, dtype=concat.dtype, device=concat.device) for i, b in enumerate(boxes)]
    )
    return torch.cat([image_idx, concat], dim=1)


class MultiLevelRoIAlign(nn.Module):
    """Pool a P x P feature for every box from its assigned pyramid level.

    Args:
        output_size: P.
        scales: feature-map size / image size of each level, finest first, e.g. [1/4, ..., 1/32].
        sampling_ratio: bilinear samples per bin side (0 = adaptive).
        aligned: shift boxes by -0.5 px so pixel centres line up (detectron2); False = torchvision.
        canonical_box_size, canonical_level, eps: see assign_boxes_to_levels.
    """

    def __init__(
        self,
        *,
        output_size: int,
        scales: Sequence[float],
        sampling_ratio: int,
        aligned: bool,
        canonical_box_size: int = 224,
        canonical_level: int = 4,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        levels = [-math.log2(s) for s in scales]
        if not scales or any(abs(lvl - round(lvl)) > 1e-6 for lvl in levels):
            raise PlugrcnnError(f"pooler: scales must be powers of 1/2 (e.g. 0.25), got {list(scales)}")
        self.min_level = round(levels[0])
        self.max_level = round(levels[-1])
        if self.max_level - self.min_level + 1 != len(scales):
            raise PlugrcnnError(f"pooler: scales {list(scales)} must halve from one level to the next")
        self.output_size = int(output_size)
        self.scales = [float(s) for s in scales]
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = bool(aligned)
        self.canonical_box_size = canonical_box_size
        self.canonical_level = canonical_level
        self.eps = eps

    def forward(self, features: Sequence[Tensor], boxes: Sequence[Tensor]) -> Tensor:
        """features: one (N, C, Hl, Wl) per level; boxes: (Ri, 4) per image -> (R, C, P, P)."""
        if len(features) != len(self.scales):
            raise PlugrcnnError(
                f"pooler: got {len(features)} feature levels, configured for {len(self.scales)} scales"
            )
        rois = boxes_to_rois(boxes)
        levels = assign_boxes_to_levels(
            rois[:, 1:], self.min_level, self.max_level, self.canonical_box_size,
            self.canonical_level, self.eps,
        )
        first = features[0]
        pooled = torch.zeros(
            (rois.shape[0], first.shape[1], self.output_size, self.output_size),
            dtype=first.dtype, device=first.device,
        )
        for level, (feature, scale) in enumerate(zip(features, self.scales)):
            idx_in_level = torch.where(levels == level)[0]
            pooled_level = roi_align(
                feature, rois[idx_in_level], output_size=self.output_size, spatial_scale=scale,
                sampling_ratio=self.sampling_ratio, aligned=self.aligned,
            )
            # autocast may give levels different dtypes; the in-place write needs one.
            pooled[idx_in_level] = pooled_level.to(pooled.dtype)
        return pooled
