"""Frames of any size -> the model's fixed input size, and back.

Letterbox: a frame of another size is resized (bilinear) by s = min(H / h, W / w), keeping its
aspect ratio, and placed in the top-left corner of an H x W canvas; the rest of the canvas is the
pixel mean, which normalises to zero like the core's own padding. Because the image starts at
(0, 0), network coordinates are frame coordinates times (new_w / w, new_h / h), so the heads'
``finalize(det, scale_xy, original_size)`` maps every output back to the frame, exactly as the
core does after its own resize. A frame of exactly H x W is passed through untouched.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from plugrcnn.errors import PlugrcnnError


@dataclass(frozen=True)
class Letterbox:
    original_size: tuple[int, int]   # (h, w) of the frame
    resized_size: tuple[int, int]    # (h', w') of the frame inside the canvas


def letterbox_size(original: tuple[int, int], canvas: tuple[int, int]) -> tuple[int, int]:
    (h, w), (ch, cw) = original, canvas
    scale = min(ch / h, cw / w)
    return min(ch, max(1, round(h * scale))), min(cw, max(1, round(w * scale)))


def letterbox(frame: Tensor, canvas: tuple[int, int], fill: Sequence[int]) -> tuple[Tensor, Letterbox]:
    """uint8 (3, h, w) -> uint8 (3, H, W) on the frame's device, and where the frame went."""
    if frame.dim() != 3 or frame.shape[0] != 3 or frame.dtype != torch.uint8:
        raise PlugrcnnError(f"frame must be uint8 (3, H, W) RGB, got {frame.dtype} {tuple(frame.shape)}")
    original = (int(frame.shape[1]), int(frame.shape[2]))
    if original == tuple(canvas):
        return frame, Letterbox(original, original)
    new_h, new_w = letterbox_size(original, canvas)
    resized = F.interpolate(frame[None].float(), size=(new_h, new_w), mode="bilinear", align_corners=False)
    out = torch.tensor(list(fill), dtype=torch.uint8, device=frame.device).view(3, 1, 1).repeat(1, *canvas)
    out[:, :new_h, :new_w] = resized[0].round_().clamp_(0, 255).to(torch.uint8)
    return out, Letterbox(original, (new_h, new_w))


def mean_fill(pixel_mean: Sequence[float]) -> tuple[int, int, int]:
    """The uint8 colour that normalises to (about) zero."""
    r, g, b = (int(round(min(max(m, 0.0), 1.0) * 255)) for m in pixel_mean)
    return r, g, b


def frames_to_batch(frames: Sequence[Tensor], canvas: tuple[int, int], batch: int, fill: Sequence[int],
                    device: torch.device, dtype: str) -> tuple[Tensor, list[Letterbox]]:
    """Up to `batch` frames -> (batch, 3, H, W) on `device` (short batches repeat the last frame)."""
    if not 0 < len(frames) <= batch:
        raise PlugrcnnError(f"got {len(frames)} frames for a model of batch {batch}")
    canvases, boxes = [], []
    for frame in frames:
        image, box = letterbox(frame.to(device, non_blocking=True), canvas, fill)
        canvases.append(image)
        boxes.append(box)
    canvases += [canvases[-1]] * (batch - len(canvases))
    images = torch.stack(canvases)
    if dtype == "float32":
        images = images.float() / 255.0
    return images, boxes
