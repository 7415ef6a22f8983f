"""The AOTInductor package gives PyTorch's detections.

Compiling the ResNet-18 test model with AOTInductor takes about 100 s on 2 CPU cores (C++ build of
the generated kernels), so this test is marked slow.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deploy_fixtures import HEIGHT, WIDTH, Deployed, make_images
from plugrcnn_deploy.export import export_model
from plugrcnn_deploy.formats.spec import DeploySpec
from plugrcnn_deploy.runtimes import load_runtime
from plugrcnn_deploy.verify import FP32_LIMITS, Comparison, compare_image, field_checks, judge


@pytest.mark.slow
def test_aoti_package_matches_pytorch(deployed: Deployed, tmp_path: Path) -> None:
    package = tmp_path / "model.pt2"
    spec = DeploySpec(height=HEIGHT, width=WIDTH, max_detections=40)
    written = export_model(deployed.model, spec, "aoti", package)
    assert written.outputs == deployed.spec.outputs and written.extra["device"] == "cpu"
    runtime = load_runtime("aoti", deployed.model, model_path=package, device=torch.device("cpu"))
    result = Comparison()
    for image in make_images(2, seed=1):
        reference = deployed.model.predict([image], resize=False)[0]
        candidate = runtime.infer([image])[0]
        assert len(reference["pred_boxes"]) > 5
        assert torch.equal(candidate["pred_classes"], reference["pred_classes"])
        compare_image(reference, candidate, result, strict=True, checks=field_checks(deployed.model.heads))
    assert judge(result, FP32_LIMITS) == []
    if "mask" in deployed.heads:
        assert result.mask_iou is not None and result.mask_iou >= 0.98
    if "keypoint" in deployed.heads:
        assert result.max_keypoint_distance is not None and result.max_keypoint_distance <= 1.0
