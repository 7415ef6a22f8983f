"""torchvision's Mask R-CNN weights, converted, give torchvision's detections and masks through
`plugrcnn predict` (needs the plugrcnn-mask distribution)."""
from __future__ import annotations

from pathlib import Path

import pycocotools.mask as mask_utils
import pytest
import torch

from tv_fixtures import assert_same_detections, make_images, make_torchvision_model, predict_converted

IMAGES = ("tall.png", "square.png")  # two images keep the test near a minute on 2 cores


def _decode(rle: dict) -> torch.Tensor:
    return torch.from_numpy(mask_utils.decode({"size": rle["size"],
                                               "counts": rle["counts"].encode("ascii")})).bool()


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row IoU of (D, H, W) bool masks; two empty masks agree (IoU 1)."""
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


@pytest.mark.slow
def test_predict_with_converted_maskrcnn_weights_matches_torchvision(tmp_path: Path) -> None:
    pytest.importorskip("plugrcnn_mask")
    tv = make_torchvision_model("maskrcnn_resnet50_fpn", seed=0, delta_std=1e-4)
    images = {name: image for name, image in make_images(seed=0).items() if name in IMAGES}
    ours = predict_converted(tmp_path, "maskrcnn_resnet50_fpn", tv, images)
    for name, image in images.items():
        with torch.no_grad():
            ref = tv([image.float() / 255])[0]
        records = ours[name]
        assert_same_detections(records, ref)
        ref_masks = ref["masks"][:, 0] >= 0.5                       # (D, H, W)
        our_masks = torch.stack([_decode(r["segmentation"]) for r in records])
        assert our_masks.shape == ref_masks.shape
        areas = ref_masks.flatten(1).sum(1)
        assert (areas > 50).sum() > 10, "the fixture should give masks of some size"
        iou = _iou(our_masks, ref_masks)
        assert iou.min() >= 0.99, f"{name}: worst mask IoU {iou.min():.4f} (detection {iou.argmin()})"
