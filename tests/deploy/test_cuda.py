"""CUDA paths (GPU machines only; tools/gpu_check.sh runs them): fp16 + CUDA graphs in the torch
backend, onnxruntime's CUDA provider, the GPU video path (events, pinned upload, GPU drawing)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from deploy_fixtures import HEIGHT, WIDTH, Deployed, count_frames, make_images, write_video
from plugrcnn.cli import main
from plugrcnn.inference.tensor_draw import draw_boxes_on_tensor, draw_keypoints_on_tensor
from plugrcnn_deploy.export import verify_export
from plugrcnn_deploy.runtimes import load_runtime
from plugrcnn_deploy.video.stats import StageTimer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; none here")
CUDA = torch.device("cuda")  # index-less on purpose


def _ort_has_cuda() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.mark.parametrize("fp16", [False, True])
def test_torch_backend_on_cuda_with_cuda_graph(deployed: Deployed, fp16: bool) -> None:
    model = deployed.model.to(CUDA)
    runtime = load_runtime("torch", model, model_path=None, device=CUDA, size=(HEIGHT, WIDTH), max_detections=40,
                           fp16=fp16, cuda_graph=True)
    report = verify_export(model, runtime, make_images(2, seed=1), fp16=fp16)
    assert report.comparison.reference_count > 5 and report.ok, report.problems


@pytest.mark.skipif(not _ort_has_cuda(), reason="onnxruntime without CUDAExecutionProvider (onnxruntime-gpu)")
def test_onnxruntime_cuda_provider_matches_pytorch(deployed: Deployed) -> None:
    model = deployed.model.to(CUDA)
    runtime = load_runtime("onnxruntime", model, model_path=deployed.onnx, device=CUDA, ort_provider="cuda")
    report = verify_export(model, runtime, make_images(2, seed=1), fp16=False)
    assert report.ok, report.problems


def test_event_timer_measures_gpu_work_without_syncs() -> None:
    timer = StageTimer(CUDA, events=True)
    a = torch.randn(2048, 2048, device=CUDA)
    for _ in range(3):
        with timer.stage("matmul"):
            a @ a
    assert len(timer.samples["matmul"]) == 3 and min(timer.samples["matmul"]) > 0


def test_tensor_drawing_on_gpu_equals_cpu() -> None:
    image = torch.randint(0, 255, (3, 64, 80), dtype=torch.uint8)
    boxes = torch.tensor([[5.0, 6.0, 40.0, 50.0], [30.0, 2.0, 79.0, 63.0]])
    points = torch.tensor([[[10.0, 10.0], [60.0, 40.0]]])
    cpu = draw_keypoints_on_tensor(draw_boxes_on_tensor(image, boxes, [(1, 2, 3), (4, 5, 6)]), points, [(0, 1)],
                                   (255, 64, 64))
    gpu = draw_keypoints_on_tensor(draw_boxes_on_tensor(image.to(CUDA), boxes.to(CUDA), [(1, 2, 3), (4, 5, 6)]),
                                   points.to(CUDA), [(0, 1)], (255, 64, 64))
    assert torch.equal(gpu.cpu(), cpu)


def test_video_on_cuda_uses_events_and_one_upload(deployed: Deployed, tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", frames=5, size=(HEIGHT, WIDTH))
    figures = tmp_path / "figures.json"
    assert main(["video", str(clip), "--config", str(deployed.config), "--weights", str(deployed.weights),
                 "--device", "cuda", "--backend", "torch", "--fp16", "--output", str(tmp_path / "out.mp4"),
                 "--no-progress", "--json", str(figures)]) == 0
    assert count_frames(tmp_path / "out.mp4") == 5
    notes = json.loads(figures.read_text())
    assert notes["timing"] == "CUDA events" and notes["upload"].startswith("pinned")
    assert notes["stages"]["infer"]["n"] == 5


def test_amp_training_step_on_cuda(tmp_path: Path) -> None:
    """One mixed-precision step of a class + box model (autocast fp16 + GradScaler, as the Trainer):
    finite losses, and the scaler's step changes the weights."""
    from deploy_fixtures import make_model, write_config
    from plugrcnn.heads.targets import ImageTargets

    model = make_model(write_config(tmp_path, [])).to(CUDA).train()
    image = make_images(1)[0]
    targets = ImageTargets(torch.tensor([[20.0, 30.0, 120.0, 150.0], [150.0, 60.0, 300.0, 220.0]]),
                           torch.tensor([1, 3]), torch.zeros(2, dtype=torch.bool))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cuda")
    before = model.roi_stage.heads["box"].bbox_pred.weight.detach().clone()
    with torch.autocast(device_type="cuda", dtype=torch.float16):
        losses = model([{"image": image.to(CUDA), "targets": targets}])
        total = sum(losses.values())
    assert all(bool(torch.isfinite(v)) for v in losses.values()), losses
    scaler.scale(total).backward()
    scaler.step(optimizer)
    scaler.update()
    assert not torch.equal(model.roi_stage.heads["box"].bbox_pred.weight.detach(), before)
