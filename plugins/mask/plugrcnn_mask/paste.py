"""Paste M x M mask probabilities into the image at their boxes, all detections at once.

Two conventions, both on the masks' device:
- ``"aligned"`` (detectron2): pixel centre x + 0.5 sits at mask coordinate
  (x + 0.5 - x1) / (x2 - x1) * M - 0.5; outside the mask, zero (grid_sample, zero padding).
  Bilinear resampling is separable, so pasting mask d is two small matrix products:
  ``image_d = Wy_d @ mask_d @ Wx_d^T`` where row y of ``Wy_d`` holds the bilinear weights that
  pixel row y takes from the M mask rows (zero outside the box); one batched matmul pastes all.
- ``"torchvision"``: torchvision's paste_masks_in_image: the mask is zero-padded to M + 2, its
  box scaled by (M + 2) / M about the centre and truncated to integers, then resized with
  F.interpolate(bilinear, align_corners=False) to (x2 - x1 + 1) columns at x1. This mode is not
  a matrix product: it calls the same F.interpolate kernel on the same padded masks, one call
  per distinct pasted size (h, w) over all detections of that size (at most D calls), so every
  pasted value is bit-identical to torchvision's (a matrix product rounds differently, ~3e-6,
  enough to flip pixels at the threshold of a mask a few pixels big).

Shape shorthand:
    D   detections
    M   mask resolution (28)
    H, W  image height and width
    P   pixels along one axis (H or W)
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

PasteMode = Literal["aligned", "torchvision"]

# float32 elements of the (chunk, H, W) intermediate; bounds memory for big images / many masks
_CHUNK_ELEMENTS = 1 << 25


def _tent(coords: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear weights (D, P, size) of sampling coordinates (D, P) on `size` cells, zero
    outside: a coordinate between cells i and i + 1 weighs them 1 - f and f."""
    cells = torch.arange(size, device=coords.device, dtype=coords.dtype)
    return (1.0 - (coords[..., None] - cells).abs()).clamp(min=0.0)


def _aligned_weights(lo: torch.Tensor, hi: torch.Tensor, pixels: int, size: int) -> torch.Tensor:
    """(D, P, M) weights for boxes spanning [lo, hi] (D,) along one axis."""
    centres = torch.arange(pixels, device=lo.device, dtype=torch.float32) + 0.5
    extent = (hi - lo).clamp(min=1e-6)[:, None]
    coords = (centres - lo[:, None]) / extent * size - 0.5  # (D, P)
    return _tent(coords, size)


def _torchvision_boxes(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision's expand_boxes(boxes, (M + 2) / M), truncated to int64, same op order."""
    scale = float(size + 2) / size
    w_half = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale
    h_half = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    x_c = (boxes[:, 2] + boxes[:, 0]) * 0.5
    y_c = (boxes[:, 3] + boxes[:, 1]) * 0.5
    expanded = torch.stack([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half], dim=1)
    return expanded.to(torch.int64)


def _paste_torchvision(masks: torch.Tensor, boxes: torch.Tensor, image_size: tuple[int, int],
                       threshold: float | None = None) -> torch.Tensor:
    """torchvision's paste, value for value: masks (D, M, M) at boxes (D, 4) -> (D, H, W)
    probabilities, or bool (probability >= threshold) when `threshold` is given.

    One F.interpolate per distinct pasted size (h, w), over every detection of that size; each
    resized mask is then copied into its box's region of the image only (the rest stays zero).
    """
    height, width = image_size
    count, size = masks.shape[0], masks.shape[-1]
    if threshold is None:
        out = masks.new_zeros((count, height, width))
    else:  # pixels no mask covers have probability 0
        out = torch.full((count, height, width), 0.0 >= threshold, dtype=torch.bool, device=masks.device)
    if count == 0:
        return out
    padded = F.pad(masks, (1, 1, 1, 1))                                 # (D, M+2, M+2)
    ints = _torchvision_boxes(boxes, size)                              # (D, 4) int64
    lengths = (ints[:, 2:] - ints[:, :2] + 1).clamp(min=1)              # (D, 2) as (w, h)
    sizes, group = torch.unique(lengths.flip(1), dim=0, return_inverse=True)  # (G, 2) as (h, w)
    corners = ints[:, :2].tolist()                                      # (x1, y1) per detection
    for g, (h, w) in enumerate(sizes.tolist()):
        members = torch.where(group == g)[0]                            # (k,)
        resized = F.interpolate(padded[members, None], size=(h, w), mode="bilinear",
                                align_corners=False)[:, 0]              # (k, h, w)
        if threshold is not None:
            resized = resized >= threshold
        for row, d in enumerate(members.tolist()):
            x1, y1 = corners[d]
            # the part of the pasted (h, w) mask inside the image
            top, left = max(0, -y1), max(0, -x1)
            bottom, right = min(h, height - y1), min(w, width - x1)
            if bottom > top and right > left:
                out[d, y1 + top:y1 + bottom, x1 + left:x1 + right] = resized[row, top:bottom, left:right]
    return out


def paste_probabilities(masks: torch.Tensor, boxes: torch.Tensor, image_size: tuple[int, int],
                        mode: PasteMode = "aligned") -> torch.Tensor:
    """Masks (D, M, M) at boxes (D, 4) XYXY -> (D, H, W) float probabilities in the image."""
    height, width = image_size
    size = masks.shape[-1]
    masks, boxes = masks.to(torch.float32), boxes.to(torch.float32)
    if mode == "aligned":
        rows = _aligned_weights(boxes[:, 1], boxes[:, 3], height, size)  # (D, H, M)
        cols = _aligned_weights(boxes[:, 0], boxes[:, 2], width, size)   # (D, W, M)
    elif mode == "torchvision":
        return _paste_torchvision(masks, boxes, image_size)
    else:
        raise ValueError(f"paste mode must be 'aligned' or 'torchvision', got {mode!r}")
    # (D, H, M) @ (D, M, M) @ (D, M, W) -> (D, H, W)
    return rows @ masks @ cols.transpose(1, 2)


def paste_masks(masks: torch.Tensor, boxes: torch.Tensor, image_size: tuple[int, int],
                threshold: float = 0.5, mode: PasteMode = "aligned") -> torch.Tensor:
    """Masks (D, M, M) probabilities at boxes (D, 4) -> (D, H, W) bool (probability >= threshold),
    pasted in chunks of detections so the float intermediate stays bounded ("torchvision" mode
    thresholds each box's region and needs no full-image float intermediate)."""
    height, width = image_size
    if mode == "torchvision":
        return _paste_torchvision(masks.to(torch.float32), boxes.to(torch.float32), image_size, threshold)
    out = torch.zeros((masks.shape[0], height, width), dtype=torch.bool, device=masks.device)
    chunk = max(1, _CHUNK_ELEMENTS // max(height * width, 1))
    for start in range(0, masks.shape[0], chunk):
        part = slice(start, start + chunk)
        out[part] = paste_probabilities(masks[part], boxes[part], image_size, mode) >= threshold
    return out
