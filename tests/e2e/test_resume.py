"""SIGKILL a real detector's training, resume it: it continues from the last checkpoint and ends
with exactly the weights of an uninterrupted run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from conftest import tiny_config

HEADS = "    class: {}\n    box: {}\n    mask: {num_conv: 1, conv_dim: 16}\n"
OPTS = ["solver.max_iter=24", "solver.checkpoint_period=4", "solver.clip_grad_norm=1.0",
        "solver.log_period=100"]


def train(config: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "plugrcnn.cli", "train", "--config", str(config),
                             "--output-dir", str(out), *extra, *OPTS],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_sigkilled_detector_training_resumes_exactly(tmp_path: Path, tiny_synthetic: Path) -> None:
    config = tiny_config(tmp_path, tiny_synthetic, HEADS)
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    run = train(config, killed)
    deadline = time.time() + 120
    pointer = killed / "last_checkpoint"
    while not (pointer.exists() and pointer.read_text().strip() >= "model_0000008.pth"):
        assert run.poll() is None and time.time() < deadline, run.stdout.read() if run.stdout else ""
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    last = pointer.read_text().strip()  # the kill may land after a newer checkpoint file
    assert not (killed / "model_final.pth").exists()
    weights(killed / last)  # the checkpoint on disk loads: never half-written

    resumed = train(config, killed, "--resume")
    log = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, log
    start = int(last.split("_")[1].split(".")[0])
    assert f"at iteration {start}" in log and start >= 8

    assert train(config, whole).wait(timeout=300) == 0
    a, b = weights(killed / "model_final.pth"), weights(whole / "model_final.pth")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
