"""Drawing straight into a uint8 (3, H, W) image tensor on its own device (the GPU in the video path).

torchvision's ``draw_bounding_boxes`` / ``draw_keypoints`` go through PIL on the CPU; these draw
with tensor indexing, so a frame that lives on the GPU is drawn there and never leaves it. No text
(fonts need PIL): boxes without their labels.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def _paint(image: Tensor, ys: Tensor, xs: Tensor, colors: Tensor) -> Tensor:
    """Set pixels (ys, xs) (P,) to colors (P, 3) uint8, dropping those outside the image."""
    height, width = image.shape[-2:]
    inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
    ys, xs, colors = ys[inside], xs[inside], colors[inside]
    for channel in range(3):
        image[channel].index_put_((ys, xs), colors[:, channel])
    return image


def draw_boxes_on_tensor(image: Tensor, boxes: Tensor, colors: Sequence[tuple[int, int, int]],
                         width: int = 2) -> Tensor:
    """Outline XYXY boxes (D, 4) in `image` (3, H, W) uint8, `width` px inside each box's edge."""
    image = image.clone()
    if len(boxes) == 0:
        return image
    height, image_width = image.shape[-2:]
    corners = boxes.round().long()
    corners[:, 0::2] = corners[:, 0::2].clamp(0, image_width - 1)
    corners[:, 1::2] = corners[:, 1::2].clamp(0, height - 1)
    palette = torch.tensor(list(colors), dtype=torch.uint8, device=image.device).view(-1, 3, 1, 1)
    for (x1, y1, x2, y2), color in zip(corners.tolist(), palette):  # one host read for all boxes
        w = max(1, min(width, (x2 - x1 + 1 + 1) // 2, (y2 - y1 + 1 + 1) // 2))
        image[:, y1:y1 + w, x1:x2 + 1] = color
        image[:, y2 - w + 1:y2 + 1, x1:x2 + 1] = color
        image[:, y1:y2 + 1, x1:x1 + w] = color
        image[:, y1:y2 + 1, x2 - w + 1:x2 + 1] = color
    return image


def draw_keypoints_on_tensor(image: Tensor, points: Tensor, connectivity: Sequence[tuple[int, int]] | None,
                             color: tuple[int, int, int], radius: int = 3, width: int = 2) -> Tensor:
    """Squares of side 2*radius+1 at points (D, K, 2) (x, y) and `width`-px lines between the pairs
    of `connectivity`, in one indexed write each (no per-point loop)."""
    image = image.clone()
    if points.numel() == 0:
        return image
    device = image.device
    points = points.float()
    offsets = torch.arange(-radius, radius + 1, device=device)
    # (P, 1, 1) + (1, S, 1) / (1, 1, S): a (2r+1)^2 square around every point
    centres = points.reshape(-1, 2).round().long()
    ys = (centres[:, 1, None, None] + offsets[None, :, None]).expand(-1, len(offsets), len(offsets)).reshape(-1)
    xs = (centres[:, 0, None, None] + offsets[None, None, :]).expand(-1, len(offsets), len(offsets)).reshape(-1)
    if connectivity:
        pairs = torch.tensor(list(connectivity), dtype=torch.long, device=device)  # (E, 2)
        start, end = points[:, pairs[:, 0]], points[:, pairs[:, 1]]  # (D, E, 2)
        steps = int(max(float((end - start).abs().max()), 1.0)) + 1  # samples per segment: every pixel
        t = torch.linspace(0, 1, steps, device=device)
        line = start[..., None, :] + (end - start)[..., None, :] * t[:, None]  # (D, E, steps, 2)
        line = line.reshape(-1, 2).round().long()
        thick = torch.arange(width, device=device) - (width - 1) // 2
        # (L, width) thickened across y, then across x, flattened row-major like repeat_interleave
        ys = torch.cat([ys, (line[:, 1, None] + thick[None, :]).reshape(-1), line[:, 1].repeat_interleave(width)])
        xs = torch.cat([xs, line[:, 0].repeat_interleave(width), (line[:, 0, None] + thick[None, :]).reshape(-1)])
    colors = torch.tensor(color, dtype=torch.uint8, device=device).expand(len(ys), 3)
    return _paint(image, ys, xs, colors)
