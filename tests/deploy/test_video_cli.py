"""`plugrcnn video` end to end on a generated video, and `plugrcnn bench`, on CPU."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from deploy_fixtures import HEIGHT, WIDTH, Deployed, count_frames, write_video
from plugrcnn.cli import main


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames=6, size=(HEIGHT, WIDTH))


def _check_report(out: str, frames: int) -> None:
    assert re.search(rf"{frames} frames in [0-9.]+ s: [0-9.]+ FPS end to end", out)
    header = next(line for line in out.splitlines() if line.startswith("stage"))
    assert header.split()[1:7] == ["p50", "ms", "p95", "ms", "p99", "ms"]
    for stage in ("decode", "preprocess", "infer", "postprocess", "draw", "encode", "latency"):
        row = next(line for line in out.splitlines() if line.startswith(stage + " "))
        p50, p95, p99, n = row.split()[1:]
        assert float(p50) <= float(p95) <= float(p99) and int(n) == frames


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_video_writes_a_playable_mp4_with_every_frame(deployed: Deployed, video: Path, tmp_path: Path,
                                                      backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "drawn.mp4"
    args = [str(video), "--config", str(deployed.config), "--weights", str(deployed.weights),
            "--backend", backend, "--output", str(output), "--no-progress", "--min-score", "0.3",
            "--json", str(tmp_path / "figures.json")]
    if backend != "torch":
        args += ["--model", str(deployed.onnx)]
    assert main(["video", *args]) == 0
    assert count_frames(output) == 6
    # no temp file left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drawn.mp4", "figures.json"]
    _check_report(capsys.readouterr().out, 6)
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["frames"] == 6 and figures["fps"] > 0 and figures["backend"] == backend
    assert figures["stages"]["decode"]["n"] == 6 and figures["stages"]["infer"]["p50_ms"] > 0
    assert figures["timing"] == "host clock" and figures["decode"] == "OpenCV (CPU)"  # the CPU paths


def test_video_of_another_size_is_letterboxed(deployed: Deployed, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    clip = write_video(tmp_path / "wide.mp4", frames=3, size=(120, 240))
    output = tmp_path / "drawn.mp4"
    assert main(["video", str(clip), "--config", str(deployed.config), "--weights", str(deployed.weights),
                 "--backend", "onnxruntime", "--model", str(deployed.onnx), "--output", str(output),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "frames of 120x240 are letterboxed" in out
    import cv2

    capture = cv2.VideoCapture(str(output))
    assert (capture.get(cv2.CAP_PROP_FRAME_HEIGHT), capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == (120, 240)
    capture.release()
    assert count_frames(output) == 3


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_bench_prints_every_stage(deployed: Deployed, backend: str, capsys: pytest.CaptureFixture[str],
                                  tmp_path: Path) -> None:
    args = ["bench", "--config", str(deployed.config), "--weights", str(deployed.weights), "--backend", backend,
            "--height", str(HEIGHT), "--width", str(WIDTH), "--iterations", "2", "--warmup", "1",
            "--json", str(tmp_path / "bench.json")]
    if backend != "torch":
        args += ["--model", str(deployed.onnx)]
    assert main(args) == 0
    out = capsys.readouterr().out
    for stage in ("preprocess", "backbone", "rpn", "heads", "graph", "postprocess", "end-to-end"):
        row = next(line for line in out.splitlines() if line.startswith(stage + " "))
        assert float(row.split()[1]) > 0, row
    assert "frames per second" in out
    figures = json.loads((tmp_path / "bench.json").read_text())
    assert figures["input"] == [HEIGHT, WIDTH] and figures["stages"]["end-to-end"]["n"] == 2
    assert figures["fps_p50"] == pytest.approx(1000.0 / figures["stages"]["end-to-end"]["p50_ms"], rel=0.01)


def test_export_cli_with_verify(deployed: Deployed, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "small.onnx"
    assert main(["export", "--config", str(deployed.config), "--weights", str(deployed.weights),
                 "--format", "onnx", "--output", str(output), "--height", "192", "--width", "224",
                 "--max-detections", "25", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "input 1x3x192x224 uint8, K=25" in out
    assert re.search(r"verify: largest box difference: 0\.0[0-4]\d* px", out)
    assert "verify: OK" in out and output.is_file()
