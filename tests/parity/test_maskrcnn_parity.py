"""torchvision's Mask R-CNN weights, converted, give torchvision's detections and masks through
`plugrcnn predict` (needs the plugrcnn-mask distribution)."""
from __future__ import annotations

import json
from pathlib import Path

import pycocotools.mask as mask_utils
import pytest
import torch
from torchvision.io import write_png

from plugrcnn.cli import main
from tv_fixtures import make_images, make_torchvision_model

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "torchvision" / "maskrcnn_resnet50_fpn.yaml"
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
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    images = {name: image for name, image in make_images(seed=0).items() if name in IMAGES}
    (tmp_path / "images").mkdir()
    for name, image in images.items():
        write_png(image, str(tmp_path / "images" / name))

    assert main(["convert", "torchvision", "--arch", "maskrcnn_resnet50_fpn",
                 "--input", str(tmp_path / "tv.pth"), "--output", str(tmp_path / "ours.pth")]) == 0
    assert main(["predict", "--config", str(CONFIG), "--weights", str(tmp_path / "ours.pth"),
                 "--input", str(tmp_path / "images"), "--output", str(tmp_path / "out")]) == 0
    ours = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert sorted(ours) == sorted(images)
    for name, image in images.items():
        with torch.no_grad():
            ref = tv([image.float() / 255])[0]
        records = ours[name]
        assert len(ref["boxes"]) > 10, "the fixture should give detections to compare"
        assert len(records) == len(ref["boxes"])
        assert [r["category_id"] for r in records] == ref["labels"].tolist()
        boxes = torch.tensor([r["bbox"] for r in records])
        boxes[:, 2:] += boxes[:, :2]  # XYWH -> XYXY
        torch.testing.assert_close(boxes, ref["boxes"], atol=0.01, rtol=0)

        ref_masks = ref["masks"][:, 0] >= 0.5                       # (D, H, W)
        our_masks = torch.stack([_decode(r["segmentation"]) for r in records])
        assert our_masks.shape == ref_masks.shape
        areas = ref_masks.flatten(1).sum(1)
        assert (areas > 50).sum() > 10, "the fixture should give masks of some size"
        iou = _iou(our_masks, ref_masks)
        assert iou.min() >= 0.99, f"{name}: worst mask IoU {iou.min():.4f} (detection {iou.argmin()})"
        assert (tmp_path / "out" / f"{Path(name).stem}.png").is_file()
