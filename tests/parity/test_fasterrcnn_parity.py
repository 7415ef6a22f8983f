"""torchvision's Faster R-CNN weights, converted, give torchvision's detections through `plugrcnn predict`."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tv_fixtures import assert_same_detections, make_images, make_torchvision_model, predict_converted


@pytest.mark.slow
def test_predict_with_converted_torchvision_weights_matches_torchvision(tmp_path: Path) -> None:
    tv = make_torchvision_model("fasterrcnn_resnet50_fpn", seed=0)
    images = make_images(seed=0)  # three sizes and aspect ratios (P6's odd stride included)
    ours = predict_converted(tmp_path, "fasterrcnn_resnet50_fpn", tv, images)
    for name, image in images.items():
        with torch.no_grad():
            ref = tv([image.float() / 255])[0]
        assert_same_detections(ours[name], ref)
        torch.testing.assert_close(torch.tensor([r["score"] for r in ours[name]]), ref["scores"],
                                   atol=1e-4, rtol=0)
