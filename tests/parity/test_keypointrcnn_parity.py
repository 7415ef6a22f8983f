"""torchvision's keypoint R-CNN weights, converted, give torchvision's detections and keypoints
through `plugrcnn predict` (needs the plugrcnn-keypoint distribution)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tv_fixtures import assert_same_detections, make_images, make_torchvision_model, predict_converted

IMAGES = ("wide.png", "tall.png")
# Both models run with a smaller test size and fewer detections than the config's 800 / 100:
# the keypoint head (8 conv3x3 of 512 channels per detection) would otherwise take minutes on
# 2 cores. The numerics compared are the same.
MIN_SIZE, MAX_SIZE, DETECTIONS = 480, 800, 40


@pytest.mark.slow
def test_predict_with_converted_keypointrcnn_weights_matches_torchvision(tmp_path: Path) -> None:
    pytest.importorskip("plugrcnn_keypoint")
    tv = make_torchvision_model("keypointrcnn_resnet50_fpn", seed=0, delta_std=1e-4)
    tv.transform.min_size, tv.transform.max_size = (MIN_SIZE,), MAX_SIZE
    tv.roi_heads.detections_per_img = DETECTIONS
    images = {name: image for name, image in make_images(seed=0).items() if name in IMAGES}
    ours = predict_converted(tmp_path, "keypointrcnn_resnet50_fpn", tv, images, (
        f"model.input.min_size_test={MIN_SIZE}", f"model.input.max_size_test={MAX_SIZE}",
        f"model.detection.detections_per_image={DETECTIONS}"))
    for name, image in images.items():
        with torch.no_grad():
            ref = tv([image.float() / 255])[0]
        records = ours[name]
        assert_same_detections(records, ref)
        keypoints = torch.tensor([r["keypoints"] for r in records]).view(len(records), -1, 3)
        assert keypoints.shape == ref["keypoints"].shape  # (D, 17, 3)
        assert (keypoints[..., 2] == 2).all()
        # RoI widths in network-input pixels: heatmaps (56) resized both up and down
        widths = (ref["boxes"][:, 2] - ref["boxes"][:, 0]) * MIN_SIZE / min(image.shape[-2:])
        assert (widths > 56).any() and (widths < 56).any(), "the fixture should give RoIs of both kinds"
        error = (keypoints[..., :2] - ref["keypoints"][..., :2]).abs().amax(-1)
        assert error.max() <= 0.5, f"{name}: keypoint off by {error.max():.3f} px at {error.argmax()}"
        assert (tmp_path / "out" / f"{Path(name).name}.png").is_file()
