"""One entry point for every export format, and the verification that makes an export good.

``export_model(model, spec, fmt, output)`` builds the DeployGraph from the model's own modules and
writes it in a format of the registry (`plugrcnn_deploy.formats.registry`: ONNX, a TensorRT engine,
an AOTInductor package). ``verify_export`` then runs the
written file through its runtime and the PyTorch model on the same images and compares them.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from plugrcnn.progress import progress
from plugrcnn.modeling.detector import TwoStageDetector
from plugrcnn_deploy.video.frames import letterbox, mean_fill
from plugrcnn_deploy.formats.registry import export_format
from plugrcnn_deploy.formats.spec import DeploySpec
from plugrcnn_deploy.verify import FP16_LIMITS, FP32_LIMITS, Comparison, compare_image, field_checks, judge

@dataclass
class VerifyReport:
    comparison: Comparison
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def export_model(model: TwoStageDetector, spec: DeploySpec, fmt: str, output: Path, *,
                 config: Any = None, pm: Any = None, opset: int = 17,
                 engine_cache: Path | None = None) -> DeploySpec:
    """Write `model` as `fmt` (a name in `EXPORT_FORMATS`) to `output`; returns the spec stored
    in the file."""
    writer = export_format(fmt).load("writer")
    return writer(model, spec, output, config=config, pm=pm, opset=opset, engine_cache=engine_cache)


def synthetic_images(size: tuple[int, int], count: int = 2, seed: int = 0) -> list[Tensor]:
    """uint8 RGB images with smooth structure (blobs and edges), deterministic."""
    gen = torch.Generator().manual_seed(seed)
    height, width = size
    images = []
    for _ in range(count):
        coarse = torch.rand(1, 3, max(height // 16, 2), max(width // 16, 2), generator=gen)
        smooth = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)[0]
        noise = torch.rand(3, height, width, generator=gen) * 0.15
        images.append(((smooth * 0.85 + noise).clamp(0, 1) * 255).to(torch.uint8))
    return images


@contextlib.contextmanager
def tf32_disabled() -> Iterator[None]:
    """PyTorch in true float32 (no TF32 in matmuls or cuDNN convolutions), restored afterwards.

    torch lets cuDNN use TF32 by default; on Ampere and newer that moves a float32 reference by
    more than the 0.05 px box limit, so a float32 engine would be judged against a TF32 reference.
    """
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn


def verify_export(model: TwoStageDetector, runtime: Any, images: Sequence[Tensor], *, fp16: bool) -> VerifyReport:
    """Run `runtime` (an exported model) and `model` on `images` letterboxed to the model's input.
    The PyTorch reference runs with TF32 off (`tf32_disabled`)."""
    spec = runtime.spec
    fill = mean_fill(model.cfg.input.pixel_mean)
    canvases = [letterbox(image, (spec.height, spec.width), fill)[0] for image in images]
    result = Comparison()
    checks = field_checks(model.heads)
    stage_cfg = model.roi_stage.cfg
    # the reference keeps as many detections as the export has slots: the stage reads a copy of
    # its config with that one value changed (the model's config itself is never written)
    model.roi_stage.cfg = replace(stage_cfg, detection=replace(stage_cfg.detection,
                                                               detections_per_image=spec.max_detections))
    try:
        with torch.no_grad(), tf32_disabled():
            for canvas in progress(canvases, desc="verify", unit="img", enabled=len(canvases) > 1):
                reference = model.predict([canvas.to(model.device)], resize=False)[0]
                candidate = runtime.infer([canvas])[0]
                compare_image(reference, candidate, result, strict=not fp16, checks=checks)
    finally:
        model.roi_stage.cfg = stage_cfg
    return VerifyReport(result, judge(result, FP16_LIMITS if fp16 else FP32_LIMITS))
