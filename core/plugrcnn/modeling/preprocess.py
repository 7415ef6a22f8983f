"""Images in, a padded normalised batch out (and boxes back to the original image at the end).

Inference resizes inside the model (shortest edge to `min_size_test`), so predictions come back in
original-image coordinates; training images arrive already resized by the data pipeline, which
moves every head's targets with them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from plugrcnn.config.schema import InputConfig
from plugrcnn.data.transforms import resize_shortest_edge


@dataclass
class ImageBatch:
    tensor: torch.Tensor                    # (N, 3, Hp, Wp) normalised, zero-padded
    image_sizes: list[tuple[int, int]]      # (h, w) of each image inside the padding
    original_sizes: list[tuple[int, int]]   # (h, w) before the resize


class Preprocessor(nn.Module):
    def __init__(self, cfg: InputConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("pixel_mean", torch.tensor(cfg.pixel_mean).view(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.pixel_std).view(3, 1, 1), persistent=False)

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 [0, 255] or float [0, 1] RGB (3, H, W) -> normalised float."""
        image = image.to(self.pixel_mean.device)
        if image.dtype == torch.uint8:
            image = image.float() / 255.0
        return (image - self.pixel_mean) / self.pixel_std

    def forward(self, images: list[torch.Tensor], resize: bool) -> ImageBatch:
        original = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
        normed = [self.normalize(im) for im in images]
        if resize:
            # after normalising, as torchvision does, so converted weights see the same pixels
            normed = [resize_shortest_edge(im, self.cfg.min_size_test, self.cfg.max_size_test)[0]
                      for im in normed]
        sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in normed]
        return ImageBatch(pad_batch(normed, self.cfg.size_divisibility), sizes, original)


def pad_batch(images: list[torch.Tensor], divisibility: int) -> torch.Tensor:
    """Zero-pad to the largest h and w, rounded up to a multiple of `divisibility`."""
    max_h = max(im.shape[-2] for im in images)
    max_w = max(im.shape[-1] for im in images)
    if divisibility > 1:
        max_h = int(math.ceil(max_h / divisibility) * divisibility)
        max_w = int(math.ceil(max_w / divisibility) * divisibility)
    batch = images[0].new_zeros((len(images), images[0].shape[0], max_h, max_w))
    for i, im in enumerate(images):
        batch[i, :, : im.shape[-2], : im.shape[-1]].copy_(im)
    return batch


def rescale_boxes(boxes: torch.Tensor, from_size: tuple[int, int], to_size: tuple[int, int]) -> tuple[torch.Tensor, tuple[float, float]]:
    """Boxes in an image of `from_size` (h, w) -> the same boxes in an image of `to_size`."""
    ratio_h = torch.tensor(to_size[0], dtype=torch.float32) / torch.tensor(from_size[0], dtype=torch.float32)
    ratio_w = torch.tensor(to_size[1], dtype=torch.float32) / torch.tensor(from_size[1], dtype=torch.float32)
    ratio_h, ratio_w = ratio_h.to(boxes.device), ratio_w.to(boxes.device)
    x1, y1, x2, y2 = boxes.unbind(1)
    scaled = torch.stack((x1 * ratio_w, y1 * ratio_h, x2 * ratio_w, y2 * ratio_h), dim=1)
    return scaled, (float(ratio_w), float(ratio_h))
