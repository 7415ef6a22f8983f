"""`plugrcnn analyze`: FLOPs per stage, counted as 2 per multiply-add, and what they mean."""
from __future__ import annotations

from pathlib import Path

import torch

from plugrcnn.analysis import analyze_inference
from plugrcnn.cli import main
from plugrcnn.config import load_config
from plugrcnn.inference.predictor import Predictor
from conftest import tiny_config

HEADS = "    class: {}\n    box: {}\n    mask: {num_conv: 1, conv_dim: 16}\n"


def test_rpn_flops_match_the_hand_count(tmp_path: Path, tiny_synthetic: Path) -> None:
    cfg = load_config(tiny_config(tmp_path, tiny_synthetic, HEADS), ["model.num_classes=3"])
    predictor = Predictor.from_config(cfg, None)
    result = analyze_inference(predictor.model, torch.rand(3, 96, 96))
    stages = {s.name: s for s in result.stages}
    assert list(stages) == ["backbone", "rpn", "trunk box_fc", "head class", "head box", "head mask"]
    # RPN on P2..P6 of a 96-px input: 24², 12², 6², 3², 2² positions; per position a 3x3 conv
    # 32 -> 32 and 1x1 convs to 3 objectness + 12 deltas (3 anchors): multiply-adds x 2
    positions = 24 ** 2 + 12 ** 2 + 6 ** 2 + 3 ** 2 + 2 ** 2
    assert stages["rpn"].flops == 2 * positions * (32 * 32 * 9 + 32 * 15)
    assert stages["rpn"].params == 32 * 32 * 9 + 32 + 32 * 15 + 15
    assert result.total_flops >= sum(s.flops for s in result.stages) > 0
    assert result.total_params == sum(p.numel() for p in predictor.model.parameters())


def test_cli_says_what_it_counts(tmp_path: Path, tiny_synthetic: Path, capsys) -> None:
    config = tiny_config(tmp_path, tiny_synthetic, HEADS)
    assert main(["analyze", "--config", str(config), "--height", "64", "--width", "80",
                 "model.num_classes=3"]) == 0
    out = capsys.readouterr().out
    assert "a multiply-add as 2" in out and "G multiply-adds" in out
    assert "network input 96x128" in out  # resized to min_size_test 96 (96x120), padded to x32
    assert "head mask" in out and "peak memory" in out
    assert main(["analyze", "--config", str(config), "--height", "64"]) == 2
