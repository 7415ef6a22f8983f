"""A backbone from a separate test distribution (tests/plugins/tiny_backbone: own pyproject.toml,
entry point in "plugrcnn.backbones") is listed, trains, predicts and exports with a verified ONNX
graph; nothing in core/ or deploy/ names it. The package is pip-installed into a temporary folder
put on sys.path (the shared environment is left as it was)."""
from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plugrcnn.backbones.registry import find_backbone
from plugrcnn.cli import main
from conftest import tiny_config

PACKAGE = Path(__file__).resolve().parents[1] / "plugins" / "tiny_backbone"
HEADS = "    class: {}\n    box: {}\n    mask: {num_conv: 1, conv_dim: 16}\n"


@pytest.fixture(scope="module")
def installed_tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target, source = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("src") / "tiny_backbone"
    # built from a copy: setuptools writes build/ and *.egg-info beside the sources it builds
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
           "--target", str(target), str(source)]
    run = subprocess.run(pip, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))
    for name in [m for m in sys.modules if m.startswith("plugrcnn_tiny_backbone")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def _config(tmp_path: Path, data: Path) -> Path:
    path = tiny_config(tmp_path, data, HEADS)
    text = path.read_text()
    text = text.replace("backbone: {name: resnet18, norm: bn, freeze_at: 0}",
                        "backbone: {name: tiny_convnet, width: 8, channels: 16}")
    text = text.replace("anchors: {sizes: [[16], [32], [64], [128], [256]]}", "anchors: {sizes: [[16], [32], [64]]}")
    assert "tiny_convnet" in text and "[[16], [32], [64]]" in text
    path.write_text(text)
    return path


def test_it_is_found_by_entry_point_and_listed(installed_tiny_backbone: Path, capsys) -> None:
    assert find_backbone("tiny_convnet").distribution == "plugrcnn-test-tiny-backbone"
    capsys.readouterr()
    assert main(["backbones"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("tiny_convnet"))
    assert row.split()[1:7] == ["plugrcnn-test-tiny-backbone", "0.0.1", "c3,c4,c5", "8,16,32", "c3,c4,c5", "c3,c4"]


def test_its_options_are_checked_when_the_config_loads(installed_tiny_backbone: Path, tmp_path: Path,
                                                      tiny_synthetic: Path, capsys) -> None:
    cfg = _config(tmp_path, tiny_synthetic)
    assert main(["train", "--config", str(cfg), "model.backbone.widht=4"]) == 2
    assert "unknown key model.backbone.widht; did you mean width? (known: channels, width)" in capsys.readouterr().err


def test_it_trains_predicts_and_exports_a_verified_onnx_graph(installed_tiny_backbone: Path, tmp_path: Path,
                                                              tiny_synthetic: Path, capsys) -> None:
    import torch

    assert main(["train", "--config", str(_config(tmp_path, tiny_synthetic))]) == 0
    out = tmp_path / "out"
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["iteration"] == 2
    state = torch.load(out / "model_final.pth", map_location="cpu", weights_only=True)["model"]
    assert "backbone.outputs.2.weight" in state  # the plugin's own module, saved under backbone.
    config, weights = str(out / "config.yaml"), str(out / "model_final.pth")
    image = next((tiny_synthetic / "val").iterdir())
    assert main(["predict", "--config", config, "--weights", weights, "--input", str(image),
                 "--output", str(tmp_path / "pred"), "--no-draw"]) == 0
    records = json.loads((tmp_path / "pred" / "predictions.json").read_text())[image.name]
    assert records and all("segmentation" in r for r in records)  # score_thresh 0: detections
    capsys.readouterr()
    assert main(["export", "--config", config, "--weights", weights, "--format", "onnx",
                 "--output", str(tmp_path / "tiny.onnx"), "--height", "96", "--width", "128",
                 "--max-detections", "10", "--verify"]) == 0
    assert "verify: OK" in capsys.readouterr().out
