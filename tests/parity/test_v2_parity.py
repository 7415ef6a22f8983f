"""torchvision's v2 Faster / Mask R-CNN (BatchNorm in ResNet, FPN, box and mask heads; 2-conv
RPN head; conv box trunk), converted, give torchvision's detections and masks through
`plugrcnn predict` — the same limits as the v1 parity tests."""
from __future__ import annotations

from pathlib import Path

import pycocotools.mask as mask_utils
import pytest
import torch

from tv_fixtures import assert_same_detections, make_images, make_torchvision_model, predict_converted


def _scores_close(records: list[dict], ref: dict[str, torch.Tensor]) -> None:
    torch.testing.assert_close(torch.tensor([r["score"] for r in records]), ref["scores"],
                               atol=1e-4, rtol=0)


def _resized(seed: int) -> torch.Tensor:
    """An image torchvision enlarges (shortest edge 180 -> 800)."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.rand(3, 24, 34, generator=gen)
    image = torch.nn.functional.interpolate(base[None], size=(180, 260), mode="bilinear")[0]
    return ((image * 0.8 + torch.rand(3, 180, 260, generator=gen) * 0.2) * 255).to(torch.uint8)


@pytest.mark.slow
def test_converted_fasterrcnn_v2_matches_torchvision(tmp_path: Path) -> None:
    tv = make_torchvision_model("fasterrcnn_resnet50_fpn_v2", seed=1)
    images = {name: im for name, im in make_images(seed=1).items() if name != "tall.png"}
    ours = predict_converted(tmp_path, "fasterrcnn_resnet50_fpn_v2", tv, images)
    for name, image in images.items():
        with torch.no_grad():
            ref = tv([image.float() / 255])[0]
        assert_same_detections(ours[name], ref)
        _scores_close(ours[name], ref)


@pytest.mark.slow
def test_converted_maskrcnn_v2_matches_torchvision(tmp_path: Path) -> None:
    pytest.importorskip("plugrcnn_mask")
    tv = make_torchvision_model("maskrcnn_resnet50_fpn_v2", seed=2, delta_std=1e-4)
    images = {"wide.png": make_images(seed=2)["wide.png"], "small.png": _resized(seed=2)}
    ours = predict_converted(tmp_path, "maskrcnn_resnet50_fpn_v2", tv, images)
    for name, image in images.items():
        with torch.no_grad():
            ref = tv([image.float() / 255])[0]
        records = ours[name]
        assert_same_detections(records, ref)
        _scores_close(records, ref)
        ref_masks = ref["masks"][:, 0] >= 0.5
        our_masks = torch.stack([torch.from_numpy(mask_utils.decode(
            {"size": r["segmentation"]["size"], "counts": r["segmentation"]["counts"].encode("ascii")})).bool()
            for r in records])
        assert (ref_masks.flatten(1).sum(1) > 50).sum() > 10, "the fixture should give masks of some size"
        inter = (our_masks & ref_masks).flatten(1).sum(1).float()
        union = (our_masks | ref_masks).flatten(1).sum(1).float()
        iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
        assert iou.min() >= 0.99, f"{name}: worst mask IoU {iou.min():.4f} (detection {iou.argmin()})"
