"""Batching for a DataLoader: images stay a list (sizes differ; the model pads them)."""
from __future__ import annotations

from typing import Any

import torch


def collate_samples(
    samples: list[dict[str, Any]],
) -> tuple[list[torch.Tensor], list[dict[str, Any]]]:
    """[{"image": (3, H, W), ...rest}] -> ([image, ...], [rest, ...]), same order, no padding."""
    images = [sample["image"] for sample in samples]
    targets = [{key: value for key, value in sample.items() if key != "image"}
               for sample in samples]
    return images, targets
