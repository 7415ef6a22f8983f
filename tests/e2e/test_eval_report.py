"""`plugrcnn eval` writes the per-category table and chart, PR curves and worst images."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugrcnn.cli import main
from conftest import tiny_config


@pytest.mark.slow
def test_eval_writes_tables_plots_and_worst_images(tmp_path: Path, tiny_synthetic: Path) -> None:
    heads = "    class: {}\n    box: {}\n    mask: {num_conv: 1, conv_dim: 16}\n"
    config = tiny_config(tmp_path, tiny_synthetic, heads)
    assert main(["train", "--config", str(config), "solver.max_iter=1"]) == 0
    out = tmp_path / "eval"
    assert main(["eval", "--config", str(tmp_path / "out" / "config.yaml"), "--weights",
                 str(tmp_path / "out" / "model_final.pth"), "--output-dir", str(out)]) == 0
    table = (out / "per_category_ap.md").read_text()
    assert "| category | bbox | segm |" in table
    names = [c["name"] for c in json.loads((tiny_synthetic / "annotations" / "instances_val.json")
                                           .read_text())["categories"]]
    assert all(f"| {name} |" in table for name in names)
    for png in ("per_category_ap.png", "pr_curves.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    worst = json.loads((out / "worst_images.json").read_text())
    assert worst and all((out / w["picture"]).exists() and w["box_errors"] > 0 for w in worst)
