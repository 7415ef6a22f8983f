"""Small seeded detectors for the deploy tests: ResNet-18 FPN, 256x320 inputs, detections guaranteed.

A freshly initialised detector scores every RoI almost the same; here the batch-norm statistics,
the RPN objectness and the classifier are widened (as tests/parity/tv_fixtures.py does for
torchvision) so that proposals, classes and boxes vary and there are detections to compare.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from plugrcnn.config import load_config
from plugrcnn.modeling.build import build_model
from plugrcnn.modeling.detector import TwoStageDetector
from plugrcnn.plugins.manager import installed_head_entry_points
from plugrcnn_deploy.formats.spec import DeploySpec
from tv_fixtures import randomize_norm_statistics  # tests/parity, on sys.path via tests/conftest.py

HEIGHT, WIDTH = 256, 320
NUM_CLASSES = 4


@dataclass
class Deployed:
    folder: Path
    config: Path
    weights: Path
    onnx: Path
    model: TwoStageDetector
    heads: list[str]
    spec: DeploySpec


def installed(head: str) -> bool:
    return head in installed_head_entry_points()


def head_options(names: list[str]) -> dict[str, Any]:
    """Config entries for `names`; instance heads slimmed so the tests stay fast."""
    options: dict[str, Any] = {"class": {}, "box": {}}
    keypoints = ["nose", "left_eye", "right_eye", "left_hand", "right_hand"]
    slim = {"mask": {"conv_dim": 32, "num_conv": 2},
            "keypoint": {"conv_dim": 32, "num_conv": 2, "keypoints": keypoints,
                         "flip_pairs": [["left_eye", "right_eye"], ["left_hand", "right_hand"]],
                         "oks_sigmas": [0.05] * len(keypoints),
                         "export_max_roi_size": max(HEIGHT, WIDTH)},  # RoIs fit the 256x320 input
            "area": {"hidden": 8}}
    for name in names:
        options[name] = slim.get(name, {})
    return options


def write_config(folder: Path, extra_heads: list[str], name: str = "model.yaml") -> Path:
    tree = {"model": {
        "num_classes": NUM_CLASSES, "device": "cpu",
        "backbone": {"name": "resnet18", "norm": "frozen_bn", "freeze_at": 0},
        "fpn": {"out_channels": 64},
        "input": {"min_size_test": HEIGHT, "max_size_test": WIDTH},
        "anchors": {"sizes": [[16], [32], [64], [128], [256]]},
        "rpn": {"pre_nms_topk_test": 300, "post_nms_topk_test": 150},
        "box_trunk": {"fc_dim": 128},
        "detection": {"detections_per_image": 40},
        "heads": head_options(extra_heads),
    }}
    path = folder / name
    path.write_text(yaml.safe_dump(tree))
    return path


def randomize(model: TwoStageDetector, seed: int = 0) -> TwoStageDetector:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        randomize_norm_statistics(model, gen)
        model.rpn.head.objectness_logits.weight.normal_(0, 0.1, generator=gen)
        model.rpn.head.anchor_deltas.weight.normal_(0, 0.01, generator=gen)
        for head in model.heads.values():
            cls_score = getattr(head, "cls_score", None)
            if cls_score is not None:
                cls_score.weight.normal_(0, 0.05, generator=gen)
                cls_score.bias.normal_(0, 1.0, generator=gen)
            bbox_pred = getattr(head, "bbox_pred", None)
            if bbox_pred is not None:
                bbox_pred.weight.normal_(0, 0.01, generator=gen)
            if head.stage == "instance":  # outputs that vary from box to box
                for module in head.modules():
                    if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
                        module.weight.normal_(0, 0.05, generator=gen)
                        module.bias.normal_(0, 0.1, generator=gen)
    return model.eval()


def make_model(config: Path, seed: int = 0) -> TwoStageDetector:
    torch.manual_seed(seed)
    return randomize(build_model(load_config(config)).model, seed)


def write_weights(model: TwoStageDetector, path: Path) -> Path:
    torch.save(model.state_dict(), path)
    return path


def make_images(count: int = 2, size: tuple[int, int] = (HEIGHT, WIDTH), seed: int = 0) -> list[torch.Tensor]:
    """uint8 RGB images with smooth structure and some noise."""
    gen = torch.Generator().manual_seed(seed)
    height, width = size
    images = []
    for _ in range(count):
        base = torch.rand(3, height // 8 + 1, width // 8 + 1, generator=gen)
        smooth = torch.nn.functional.interpolate(base[None], size=(height, width), mode="bilinear")[0]
        noise = torch.rand(3, height, width, generator=gen) * 0.2
        images.append(((smooth * 0.8 + noise).clamp(0, 1) * 255).to(torch.uint8))
    return images


def write_video(path: Path, frames: int, size: tuple[int, int], fps: float = 10.0, seed: int = 0) -> Path:
    """An mp4v video of moving smooth noise, written with OpenCV."""
    import cv2

    height, width = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    base = make_images(1, (height, width + 8 * frames), seed)[0].permute(1, 2, 0).numpy()
    for i in range(frames):
        writer.write(np.ascontiguousarray(base[:, 8 * i:8 * i + width, ::-1]))
    writer.release()
    return path


def count_frames(path: Path) -> int:
    import cv2

    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"{path} does not open"
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count
