"""The two models of the side-by-side benchmark: torchvision's, with seeded random weights whose
detections are not empty (the parity tests' fixture), and plugrcnn's, converted from it.

Each model is walked stage by stage (preprocess, backbone+FPN, RPN, RoI heads, paste) with the
same calls its own forward makes, so the stage times add up to an end-to-end prediction.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "parity"))  # the parity tests' seeded torchvision models

from tv_fixtures import make_torchvision_model  # noqa: E402

from plugrcnn.config import load_config  # noqa: E402
from plugrcnn.convert.torchvision import convert_torchvision  # noqa: E402
from plugrcnn.inference.runtime import InferenceRuntime  # noqa: E402
from plugrcnn.modeling.build import build_model  # noqa: E402

ARCHS = {"mask": "maskrcnn_resnet50_fpn", "keypoint": "keypointrcnn_resnet50_fpn"}
STAGES = ("preprocess", "backbone+fpn", "rpn", "roi_heads", "paste")
Timings = dict[str, float]


def size_overrides(height: int, width: int) -> list[str]:
    """Test-time resize that leaves an image of (height, width) as it is (shortest edge kept)."""
    return [f"model.input.min_size_test={min(height, width)}",
            f"model.input.max_size_test={max(height, width)}"]


def build_pair(model: str, height: int, width: int, precision: str, seed: int = 0,
               fold: bool | None = None) -> tuple[torch.nn.Module, Any, InferenceRuntime]:
    """torchvision's model, plugrcnn's converted model and the runtime it predicts with (as
    `plugrcnn predict` does: Predictor)."""
    arch = ARCHS[model]
    tv = make_torchvision_model(arch, seed=seed, delta_std=1e-4)
    tv.transform.min_size, tv.transform.max_size = (min(height, width),), max(height, width)
    config = ROOT / "configs" / "torchvision" / f"{arch}.yaml"
    cfg = load_config(config, ["model.device=cpu", f"model.precision={precision}",
                               *size_overrides(height, width)])
    built = build_model(cfg)
    built.model.load_state_dict(convert_torchvision(tv.state_dict(), cfg, arch))
    model = built.model.eval()
    return tv, model, InferenceRuntime(model, cfg.model.precision, torch.device("cpu"), fold=fold)


def _timed(timings: Timings, stage: str, fn: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = fn()
    timings[stage] = time.perf_counter() - start
    return result


def torchvision_stages(tv: torch.nn.Module, image: torch.Tensor) -> tuple[dict, Timings]:
    """torchvision's GeneralizedRCNN.forward (eval), one stage at a time."""
    t: Timings = {}
    with torch.inference_mode():
        images, _ = _timed(t, "preprocess", lambda: tv.transform([image.float() / 255]))
        features = _timed(t, "backbone+fpn", lambda: tv.backbone(images.tensors))
        proposals, _ = _timed(t, "rpn", lambda: tv.rpn(images, features))
        detections, _ = _timed(t, "roi_heads", lambda: tv.roi_heads(features, proposals, images.image_sizes))
        detections = _timed(t, "paste", lambda: tv.transform.postprocess(
            detections, images.image_sizes, [tuple(image.shape[-2:])]))
    return detections[0], t


def plugrcnn_stages(model: Any, runtime: InferenceRuntime, image: torch.Tensor) -> tuple[dict, Timings]:
    """TwoStageDetector.predict, one stage at a time, under the precision's context."""
    from plugrcnn.modeling.preprocess import rescale_boxes

    t: Timings = {}
    with runtime.applied():
        batch = _timed(t, "preprocess", lambda: model.preprocess([image], resize=True))
        features = _timed(t, "backbone+fpn", lambda: model.backbone(batch.tensor))
        proposals, _ = _timed(t, "rpn", lambda: model.rpn(features, batch.image_sizes,
                                                          tuple(batch.tensor.shape[-2:])))
        detections = _timed(t, "roi_heads", lambda: model.roi_stage.forward_infer(
            features[:4], proposals, batch.image_sizes))

        def finalize() -> dict:
            det = detections[0]
            det["pred_boxes"], scale = rescale_boxes(det["pred_boxes"], batch.image_sizes[0],
                                                     batch.original_sizes[0])
            for head in model.heads.values():
                head.finalize(det, scale, batch.original_sizes[0])
            return det
        detection = _timed(t, "paste", finalize)
    return detection, t


def torchvision_end_to_end(tv: torch.nn.Module, image: torch.Tensor) -> dict:
    with torch.inference_mode():
        return tv([image.float() / 255])[0]


def plugrcnn_end_to_end(model: Any, runtime: InferenceRuntime, image: torch.Tensor) -> dict:
    with runtime.applied():
        return model.predict([image])[0]


def synthetic_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """(3, H, W) uint8: smooth colour blobs plus noise (structure at several scales)."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.rand(3, height // 16 + 1, width // 16 + 1, generator=gen)
    smooth = torch.nn.functional.interpolate(base[None], size=(height, width), mode="bilinear")[0]
    noise = torch.rand(3, height, width, generator=gen) * 0.2
    return ((smooth * 0.8 + noise).clamp(0, 1) * 255).to(torch.uint8)
