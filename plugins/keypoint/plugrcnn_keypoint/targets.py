"""Keypoint targets: read from COCO annotations, moved under resize/flip, turned into heatmap
indices for the RoIs a step trains on.

Shape shorthand: G GT instances of an image, K keypoints, R RoIs, S heatmap side (56).
A GT's target is (K, 3) [x, y, v] in continuous image coordinates; v > 0 marks a labelled
keypoint (COCO: 1 labelled but hidden, 2 visible), v = 0 one that is not there.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from plugrcnn.heads import DatasetInfo, HFlipOp, PlugrcnnError, transform_points
from plugrcnn_keypoint.config import KeypointHeadConfig, resolve_layout


@dataclass(frozen=True)
class KeypointCodec:
    """The keypoint head's TargetCodec (picklable: it runs in data-loader workers)."""
    num_keypoints: int
    flip_index: tuple[int, ...]
    categories: tuple[int, ...] = ()    # labels with keypoints; () = every label
    pixel_offset: float = 0.5           # added to annotated x, y (see the config)
    key: str = "model.heads.keypoint"   # for messages

    def read(self, annotations: list[dict[str, Any]], height: int, width: int) -> torch.Tensor:
        """(G, K, 3) targets; an annotation without keypoints, or of a category without
        keypoints, gets all v = 0 (no target)."""
        targets = torch.zeros((len(annotations), self.num_keypoints, 3), dtype=torch.float32)
        for g, annotation in enumerate(annotations):
            values = annotation.get("keypoints")
            if values is None or (self.categories and annotation["label"] not in self.categories):
                continue
            if len(values) != 3 * self.num_keypoints:
                raise PlugrcnnError(
                    f"annotation {annotation.get('id')} (image {annotation.get('image_id')}): "
                    f"{len(values)} keypoint values, but {self.key}.keypoints names "
                    f"{self.num_keypoints} keypoints (3 values each); fix the config or the data")
            # (3K,) -> (K, 3)
            targets[g] = torch.tensor(values, dtype=torch.float32).view(-1, 3)
        labelled = targets[..., 2] > 0
        targets[..., :2] += self.pixel_offset * labelled[..., None]
        return targets

    def transform(self, target: torch.Tensor, op: Any) -> torch.Tensor:
        moved = transform_points(target, op)
        if isinstance(op, HFlipOp):  # the mirrored left wrist is the new right wrist
            moved = moved[:, list(self.flip_index)]
        return moved

    def valid(self, target: torch.Tensor) -> torch.Tensor:
        """(G,) bool: instances with at least one labelled keypoint."""
        return (target[..., 2] > 0).any(dim=-1)


def keypoint_codec(cfg: KeypointHeadConfig, data: DatasetInfo, name: str = "keypoint") -> KeypointCodec:
    """The codec of `cfg` (HeadSpec.target_codec), checked against the data's categories: a
    category that lists keypoints must list as many as the config, or every one of its
    annotations would fail in a data-loader worker."""
    key = f"model.heads.{name}"
    layout = resolve_layout(cfg, data.num_classes, key)
    for label, category in enumerate(data.categories, start=1):
        names = category.get("keypoints")
        if names and len(names) != layout.num_keypoints and \
                (not layout.categories or label in layout.categories):
            raise PlugrcnnError(
                f"{data.source}: category {category.get('id')} ('{category.get('name')}') has "
                f"{len(names)} keypoints but {key}.keypoints names {layout.num_keypoints}; "
                f"fix the config or the data")
    return KeypointCodec(layout.num_keypoints, layout.flip_index, layout.categories,
                         cfg.annotation_pixel_offset, key=key)


def heatmap_targets(keypoints: torch.Tensor, rois: torch.Tensor,
                    heatmap_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """keypoints (R, K, 3) of each RoI's GT, rois (R, 4) -> flat target index (R, K) into the
    S x S heatmap (row * S + col) and whether it is a target (R, K) bool.

    torchvision's keypoints_to_heatmap arithmetic (detectron2's is the same): the RoI is cut into
    S x S bins and a keypoint belongs to bin floor((x - x1) * S / w); one exactly on the right or
    bottom edge goes to the last bin. Unlabelled keypoints and those outside the RoI are not
    targets.
    """
    x1, y1, x2, y2 = rois[:, 0, None], rois[:, 1, None], rois[:, 2, None], rois[:, 3, None]
    x, y = keypoints[..., 0], keypoints[..., 1]
    col = ((x - x1) * (heatmap_size / (x2 - x1))).floor().long()
    row = ((y - y1) * (heatmap_size / (y2 - y1))).floor().long()
    col = torch.where(x == x2, heatmap_size - 1, col)
    row = torch.where(y == y2, heatmap_size - 1, row)
    inside = (col >= 0) & (row >= 0) & (col < heatmap_size) & (row < heatmap_size)
    valid = inside & (keypoints[..., 2] > 0)
    return (row * heatmap_size + col) * valid, valid
