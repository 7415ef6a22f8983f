"""Geometric transforms: shortest-edge resize and horizontal flip, for images and for the
coordinates that move with them.

The image side is done here; each head moves its own targets by applying the returned op
records (`ResizeOp`, `HFlipOp`) with the helpers below (boxes, points, polygons, RLE, masks).
Keypoint heads also swap left/right names after a flip: that is theirs to do, with their
config's flip pairs.

Coordinates are continuous: pixel column i covers [i, i + 1), so the image spans [0, W] and a
horizontal flip maps x -> W - x for box corners, points and polygon vertices alike (a box
[x1, x2] becomes [W - x2, W - x1]).

Shape shorthand:
    C   image channels
    H, W    image height and width before the op; H', W' after it
    N   number of boxes / masks
    ... any leading dimensions
"""
from __future__ import annotations

import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import pycocotools.mask as mask_utils
import torch
import torch.nn.functional as F

__all__ = ["ResizeOp", "HFlipOp", "GeometricOp", "resize_shortest_edge", "hflip",
           "transform_boxes", "transform_points", "transform_polygons", "transform_rle",
           "transform_masks", "TrainAugmentation"]


@dataclass(frozen=True)
class ResizeOp:
    """x' = x * scale_x, y' = y * scale_y; the image became new_height x new_width."""

    scale_x: float
    scale_y: float
    new_height: int
    new_width: int


@dataclass(frozen=True)
class HFlipOp:
    """x' = width - x on an image `width` pixels wide."""

    width: int


GeometricOp = Union[ResizeOp, HFlipOp]
Ops = Union[GeometricOp, Sequence[GeometricOp]]


def _as_list(ops: Ops) -> list[GeometricOp]:
    return [ops] if isinstance(ops, (ResizeOp, HFlipOp)) else list(ops)


def resize_shortest_edge(
    image: torch.Tensor, min_size: int, max_size: int
) -> tuple[torch.Tensor, ResizeOp]:
    """Resize (C, H, W) so the short side is `min_size` unless the long side would pass
    `max_size`, exactly as torchvision's GeneralizedRCNNTransform does (bilinear, no
    antialiasing, output side floor(side * scale)). Returns a float tensor in the input's value
    range (uint8 becomes float32 0..255) and the op."""
    height, width = image.shape[-2:]
    scale = min(min_size / min(height, width), max_size / max(height, width))
    float_image = image if image.is_floating_point() else image.float()
    resized = F.interpolate(float_image[None], scale_factor=scale, mode="bilinear",
                            recompute_scale_factor=True, align_corners=False)[0]
    new_height, new_width = resized.shape[-2:]
    return resized, ResizeOp(scale_x=new_width / width, scale_y=new_height / height,
                             new_height=new_height, new_width=new_width)


def hflip(image: torch.Tensor) -> tuple[torch.Tensor, HFlipOp]:
    """Mirror (..., H, W) left to right."""
    return image.flip(-1), HFlipOp(width=image.shape[-1])


def transform_boxes(boxes: torch.Tensor, ops: Ops) -> torch.Tensor:
    """Boxes (N, 4) XYXY through one op or a sequence of ops, in order."""
    for op in _as_list(ops):
        if isinstance(op, ResizeOp):
            scale = boxes.new_tensor([op.scale_x, op.scale_y, op.scale_x, op.scale_y])
            boxes = boxes * scale
        else:
            x1, y1, x2, y2 = boxes.unbind(-1)
            boxes = torch.stack([op.width - x2, y1, op.width - x1, y2], dim=-1)
    return boxes


def transform_points(points: torch.Tensor, ops: Ops) -> torch.Tensor:
    """Points (..., D >= 2): the first two columns are x, y; any further ones (e.g. keypoint
    visibility) pass unchanged. Left/right keypoint names are NOT swapped here."""
    for op in _as_list(ops):
        x, y = points[..., 0], points[..., 1]
        if isinstance(op, ResizeOp):
            x, y = x * op.scale_x, y * op.scale_y
        else:
            x = op.width - x
        points = torch.cat([x[..., None], y[..., None], points[..., 2:]], dim=-1)
    return points


def transform_polygons(polygons: list[list[float]], ops: Ops) -> list[list[float]]:
    """COCO polygons (each [x0, y0, x1, y1, ...]) through the ops; returns new lists."""
    moved = []
    for polygon in polygons:
        # (2P,) -> (P, 2)
        points = torch.tensor(polygon, dtype=torch.float64).reshape(-1, 2)
        moved.append(transform_points(points, ops).reshape(-1).tolist())
    return moved


def transform_masks(masks: torch.Tensor, ops: Ops) -> torch.Tensor:
    """Binary masks (N, H, W) through the ops (resize: nearest, like torchvision's target
    masks); keeps the dtype."""
    for op in _as_list(ops):
        if isinstance(op, ResizeOp):
            # (N, H, W) -> (N, 1, H, W) for interpolate, and back
            resized = F.interpolate(masks[:, None].float(), size=(op.new_height, op.new_width),
                                    mode="nearest")
            masks = resized[:, 0].to(masks.dtype)
        else:
            masks = masks.flip(-1)
    return masks


def transform_rle(rle: dict[str, Any], ops: Ops) -> dict[str, Any]:
    """A COCO RLE (compressed or uncompressed counts) through the ops; returns a compressed
    RLE whose counts are a str. Decodes to a bitmap: fine for one annotation at a time."""
    height, width = rle["size"]
    if isinstance(rle["counts"], list):
        rle = mask_utils.frPyObjects(rle, height, width)
    elif isinstance(rle["counts"], str):
        rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    with warnings.catch_warnings():
        # pycocotools' decode trips numpy 2's DeprecationWarning about __array__(copy=...)
        warnings.simplefilter("ignore", DeprecationWarning)
        bitmap = torch.from_numpy(mask_utils.decode(rle))  # (H, W) uint8
    moved = transform_masks(bitmap[None], ops)[0].numpy()
    encoded = mask_utils.encode(np.asfortranarray(moved))
    return {"size": list(encoded["size"]), "counts": encoded["counts"].decode("ascii")}


@dataclass(frozen=True)
class TrainAugmentation:
    """Training-time image transform: shortest-edge resize to a size drawn from `min_sizes`
    (multi-scale training), then a horizontal flip with probability `flip_prob`.

    Call with the image and a random source (random.Random or torch.Generator, so the caller
    owns the random state and a resumed run replays it); returns the image and the ops applied,
    in order, for the heads to move their targets.
    """

    min_sizes: tuple[int, ...]
    max_size: int
    flip_prob: float = 0.5

    def __call__(
        self, image: torch.Tensor, rng: random.Random | torch.Generator
    ) -> tuple[torch.Tensor, list[GeometricOp]]:
        if isinstance(rng, torch.Generator):
            index = int(torch.randint(len(self.min_sizes), (1,), generator=rng))
            flip_draw = float(torch.rand((), generator=rng))
        else:
            index, flip_draw = rng.randrange(len(self.min_sizes)), rng.random()
        image, resize = resize_shortest_edge(image, self.min_sizes[index], self.max_size)
        ops: list[GeometricOp] = [resize]
        if flip_draw < self.flip_prob:
            image, flip = hflip(image)
            ops.append(flip)
        return image, ops
