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


def _resized_images(seed: int) -> dict[str, torch.Tensor]:
    """Images torchvision resizes: one up (shortest edge 150 -> 800), one down (longest edge
    1400 -> 1333, so the scale is below 1)."""
    gen = torch.Generator().manual_seed(seed)
    images = {}
    for name, (h, w) in {"small.png": (150, 230), "long.png": (1400, 520)}.items():
        base = torch.rand(3, h // 8 + 1, w // 8 + 1, generator=gen)
        smooth = torch.nn.functional.interpolate(base[None], size=(h, w), mode="bilinear")[0]
        noise = torch.rand(3, h, w, generator=gen) * 0.2
        images[name] = ((smooth * 0.8 + noise).clamp(0, 1) * 255).to(torch.uint8)
    return images


@pytest.mark.slow
def test_masks_match_torchvision_on_resized_images_with_thin_and_border_boxes(tmp_path: Path) -> None:
    """Box deltas that squash the boxes of some classes give thin and sub-pixel boxes, many clipped
    to the image border; the images are resized up and down. torchvision's paste truncates the expanded box to integers,
    so a pasted column more or less is a different mask: each must match."""
    pytest.importorskip("plugrcnn_mask")
    tv = make_torchvision_model("maskrcnn_resnet50_fpn", seed=3, delta_std=1e-4)
    with torch.no_grad():  # (91 * 4,) biases as (class, (dx, dy, dw, dh)): squash some classes
        bias = tv.roi_heads.box_predictor.bbox_pred.bias.view(-1, 4)
        bias[1::3, 3] = -25.0  # height x exp(-5): boxes a fraction of a pixel to a few pixels high
        bias[2::3, 2] = -10.0  # width x exp(-2): boxes a few pixels to ~70 px wide
    images = _resized_images(seed=3)
    ours = predict_converted(tmp_path, "maskrcnn_resnet50_fpn", tv, images)
    thin = subpixel = border = 0
    for name, image in images.items():
        height, width = image.shape[-2:]
        with torch.no_grad():
            ref = tv([image.float() / 255])[0]
        records = ours[name]
        assert_same_detections(records, ref)
        boxes = ref["boxes"]
        sides = torch.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1).amin(1)
        thin += int((sides < 15).sum())
        subpixel += int((sides < 1).sum())
        border += int(((boxes[:, :2] <= 0).any(1) | (boxes[:, 2] >= width) | (boxes[:, 3] >= height)).sum())
        ref_masks = ref["masks"][:, 0] >= 0.5
        our_masks = torch.stack([_decode(r["segmentation"]) for r in records])
        iou = _iou(our_masks, ref_masks)
        assert iou.min() >= 0.99, f"{name}: worst mask IoU {iou.min():.4f} (detection {iou.argmin()})"
        assert ref_masks.flatten(1).any(1).sum() > 10, "the fixture should paste non-empty masks"
    assert thin >= 20 and subpixel >= 2 and border >= 10, (thin, subpixel, border)
