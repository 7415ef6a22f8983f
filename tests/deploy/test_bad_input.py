"""Bad input ends in one clear line (exit 2) and leaves no output file that looks complete."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from deploy_fixtures import HEIGHT, WIDTH, Deployed, write_config, write_video
from plugrcnn.cli import main


def _video(deployed: Deployed, source: Path, output: Path, *extra: str) -> int:
    return main(["video", str(source), "--config", str(deployed.config), "--weights", str(deployed.weights),
                 "--output", str(output), "--no-progress", *extra])


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_a_file_that_is_not_a_video(deployed: Deployed, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "notes.mp4"
    source.write_text("this is not a video\n")
    assert _video(deployed, source, tmp_path / "out.mp4") == 2
    assert "notes.mp4: OpenCV cannot open this video" in _error(capsys)
    assert not (tmp_path / "out.mp4").exists()


def test_a_missing_video(deployed: Deployed, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _video(deployed, tmp_path / "nowhere.mp4", tmp_path / "out.mp4") == 2
    assert "nowhere.mp4: video file not found" in _error(capsys)


def test_a_video_without_frames(deployed: Deployed, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    source = write_video(tmp_path / "empty.mp4", frames=0, size=(HEIGHT, WIDTH))
    assert _video(deployed, source, tmp_path / "out.mp4") == 2
    message = _error(capsys)
    assert "empty.mp4" in message and ("no frames" in message or "cannot open" in message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.mp4"]


def test_a_model_file_of_another_backend(deployed: Deployed, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    clip = write_video(tmp_path / "clip.mp4", frames=2, size=(HEIGHT, WIDTH))
    assert _video(deployed, clip, tmp_path / "a.mp4", "--backend", "aoti", "--model", str(deployed.onnx)) == 2
    assert "model.onnx: not an AOTInductor package" in _error(capsys)
    assert _video(deployed, clip, tmp_path / "b.mp4", "--backend", "onnxruntime",
                  "--model", str(deployed.weights)) == 2
    assert "weights.pth: not an ONNX model" in _error(capsys)
    # checked before TensorRT is imported, so this runs where TensorRT is not installed
    assert _video(deployed, clip, tmp_path / "c.mp4", "--backend", "tensorrt", "--model", str(deployed.onnx)) == 2
    assert "model.onnx: no sidecar model.onnx.json next to the engine" in _error(capsys)
    assert _video(deployed, clip, tmp_path / "d.mp4", "--backend", "onnxruntime") == 2
    assert "give --model PATH" in _error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_a_model_built_for_another_input_size(deployed: Deployed, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    clip = write_video(tmp_path / "clip.mp4", frames=2, size=(HEIGHT, WIDTH))
    assert _video(deployed, clip, tmp_path / "out.mp4", "--backend", "onnxruntime", "--model", str(deployed.onnx),
                  "--height", "512", "--width", "640") == 2
    message = _error(capsys)
    assert f"built for input {HEIGHT}x{WIDTH} but 512x640 was asked for" in message
    assert not (tmp_path / "out.mp4").exists()


def test_a_model_exported_with_other_heads(deployed: Deployed, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    if not deployed.heads:
        pytest.skip("the deployed model has only the class and box heads")
    dropped = deployed.heads[-1]
    config = write_config(tmp_path, deployed.heads[:-1], name="fewer.yaml")
    state = {k: v for k, v in torch.load(deployed.weights).items() if f"heads.{dropped}." not in k}
    torch.save(state, tmp_path / "fewer.pth")
    clip = write_video(tmp_path / "clip.mp4", frames=2, size=(HEIGHT, WIDTH))
    assert main(["video", str(clip), "--config", str(config), "--weights", str(tmp_path / "fewer.pth"),
                 "--backend", "onnxruntime", "--model", str(deployed.onnx), "--output", str(tmp_path / "out.mp4"),
                 "--no-progress"]) == 2
    assert "exported with heads" in _error(capsys) and not (tmp_path / "out.mp4").exists()


def test_export_refuses_a_topk_tensorrt_cannot_build(deployed: Deployed, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--config", str(deployed.config), "--weights", str(deployed.weights),
                 "--format", "onnx", "--output", str(tmp_path / "m.onnx"), "--max-detections", "5000"]) == 2
    assert "max-detections must be in 1..3839" in _error(capsys)
    assert not (tmp_path / "m.onnx").exists()


def test_video_output_must_be_mp4(deployed: Deployed, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    clip = write_video(tmp_path / "clip.mp4", frames=1, size=(HEIGHT, WIDTH))
    assert _video(deployed, clip, tmp_path / "out.avi") == 2
    assert "must be an .mp4 file" in _error(capsys)


class _FakeCapture:
    """Opens, but yields `frames` frames and then fails to decode."""

    def __init__(self, frames: int) -> None:
        import numpy as np

        self.frames = [np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(frames)]

    def read(self):
        return (True, self.frames.pop()) if self.frames else (False, None)

    def release(self) -> None:
        pass


def test_a_video_that_opens_but_decodes_no_frame(deployed: Deployed, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from plugrcnn.errors import PlugrcnnError
    from plugrcnn.inference.draw_detections import DetectionDrawer
    from plugrcnn_deploy.runtimes import load_runtime
    from plugrcnn_deploy.video import pipeline as video_module

    monkeypatch.setattr(video_module, "open_video", lambda path: (_FakeCapture(0), 10.0, 0))
    runtime = load_runtime("onnxruntime", deployed.model, model_path=deployed.onnx, device=torch.device("cpu"))
    pipeline = video_module.VideoPipeline(runtime, DetectionDrawer(deployed.model.heads))
    with pytest.raises(PlugrcnnError, match="clip.mp4: the video has no frames that can be decoded"):
        pipeline.process(tmp_path / "clip.mp4", tmp_path / "out.mp4", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_failure_mid_video_leaves_no_output(deployed: Deployed, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from plugrcnn.inference.draw_detections import DetectionDrawer
    from plugrcnn_deploy.runtimes import load_runtime
    from plugrcnn_deploy.video import pipeline as video_module

    monkeypatch.setattr(video_module, "open_video", lambda path: (_FakeCapture(5), 10.0, 5))
    runtime = load_runtime("onnxruntime", deployed.model, model_path=deployed.onnx, device=torch.device("cpu"))
    calls = []
    run = runtime.run

    def failing_run(images):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("device lost")
        return run(images)

    monkeypatch.setattr(runtime, "run", failing_run)
    pipeline = video_module.VideoPipeline(runtime, DetectionDrawer(deployed.model.heads))
    with pytest.raises(RuntimeError, match="device lost"):
        pipeline.process(tmp_path / "clip.mp4", tmp_path / "out.mp4", progress=False)
    assert list(tmp_path.iterdir()) == []  # the frames written so far went with the temp file


def test_tensorrt_export_without_tensorrt_says_how_to_install(deployed: Deployed, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnx")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    assert main(["export", "--config", str(deployed.config), "--weights", str(deployed.weights), "--format",
                 "tensorrt", "--output", str(tmp_path / "m.engine")]) == 2
    assert "TensorRT is not installed" in _error(capsys) and list(tmp_path.iterdir()) == []
