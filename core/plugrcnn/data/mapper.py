"""Dataset item -> model input: the image after augmentation and every head's targets moved with it.

The mapper knows boxes, labels and crowd flags; each enabled head reads and moves its own targets
through its `TargetCodec`, so the core never learns what a mask or a keypoint is.
"""
from __future__ import annotations

import random
from typing import Any

import torch

from plugrcnn.data.transforms import TrainAugmentation, transform_boxes
from plugrcnn.heads.targets import ImageTargets, TargetCodec


class DatasetMapper:
    """Callable on a CocoDataset item; picklable, so it runs in data-loader workers."""

    def __init__(self, codecs: dict[str, TargetCodec], augmentation: TrainAugmentation | None) -> None:
        self.codecs = codecs
        self.augmentation = augmentation

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        image = item["image"]
        annotations = item["annotations"]
        height, width = int(image.shape[-2]), int(image.shape[-1])
        ops: list[Any] = []
        if self.augmentation is not None:
            # the global RNG: seeded per worker by the DataLoader, restored by the trainer on resume
            image, ops = self.augmentation(image, random)  # type: ignore[arg-type]
        image = image.float() / 255.0 if image.dtype == torch.uint8 else image / 255.0
        boxes = torch.tensor([a["box"] for a in annotations], dtype=torch.float32).reshape(-1, 4)
        if ops:
            boxes = transform_boxes(boxes, ops)
        heads: dict[str, Any] = {}
        for name, codec in self.codecs.items():
            target = codec.read(annotations, height, width)
            for op in ops:
                target = codec.transform(target, op)
            heads[name] = target
        targets = ImageTargets(
            gt_boxes=boxes,
            gt_labels=torch.tensor([a["label"] for a in annotations], dtype=torch.int64),
            gt_crowd=torch.tensor([bool(a.get("iscrowd", 0)) for a in annotations], dtype=torch.bool),
            heads=heads)
        return {"image": image, "targets": targets, "image_id": item["image_id"],
                "file_name": item.get("file_name"), "height": height, "width": width}


def trivial_batch_collator(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the list of per-image dicts: the model pads them into one batch itself."""
    return batch
