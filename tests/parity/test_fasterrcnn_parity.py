"""torchvision's Faster R-CNN weights, converted, give torchvision's detections through `plugrcnn predict`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torchvision.io import write_png

from plugrcnn.cli import main
from tv_fixtures import make_images, make_torchvision_model

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "torchvision" / "fasterrcnn_resnet50_fpn.yaml"


@pytest.mark.slow
def test_predict_with_converted_torchvision_weights_matches_torchvision(tmp_path: Path) -> None:
    tv = make_torchvision_model("fasterrcnn_resnet50_fpn", seed=0)
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    images = make_images(seed=0)
    (tmp_path / "images").mkdir()
    for name, image in images.items():
        write_png(image, str(tmp_path / "images" / name))

    assert main(["convert", "torchvision", "--arch", "fasterrcnn_resnet50_fpn",
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
        boxes = torch.tensor([r["bbox"] for r in records])
        boxes[:, 2:] += boxes[:, :2]  # XYWH -> XYXY
        assert [r["category_id"] for r in records] == ref["labels"].tolist()
        torch.testing.assert_close(boxes, ref["boxes"], atol=0.01, rtol=0)
        torch.testing.assert_close(torch.tensor([r["score"] for r in records]), ref["scores"],
                                   atol=1e-4, rtol=0)
        assert (tmp_path / "out" / f"{Path(name).stem}.png").is_file()
