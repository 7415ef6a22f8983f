"""A head from a separate test distribution is found, trained and predicted with; core/ untouched."""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from plugrcnn.cli import main
from plugrcnn.plugins.manager import list_installed_heads, load_heads
from conftest import tiny_config

HEADS = "    class: {}\n    box: {}\n    area: {hidden: 16}\n"


def test_test_distribution_is_installed_and_found_by_entry_point() -> None:
    rows = {name: dist for name, dist, _, _ in list_installed_heads()}
    assert rows.get("area") == "plugrcnn-test-area-head"
    registry = load_heads(["class", "box", "area"])
    assert registry.heads["area"].distribution == "plugrcnn-test-area-head"


def test_third_party_head_trains_and_predicts(tmp_path: Path, tiny_synthetic: Path) -> None:
    cfg = tiny_config(tmp_path, tiny_synthetic, HEADS)
    assert main(["train", "--config", str(cfg)]) == 0
    out = tmp_path / "out"
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["iteration"] == 2
    assert "loss_area" in metrics[-1] and metrics[-1]["loss_area"] > 0
    state = torch.load(out / "model_final.pth", map_location="cpu", weights_only=True)["model"]
    assert any(k.startswith("roi_stage.heads.area.") for k in state)

    image = next((tiny_synthetic / "val").iterdir())
    assert main(["predict", "--config", str(out / "config.yaml"), "--weights", str(out / "model_final.pth"),
                 "--input", str(image), "--output", str(tmp_path / "pred")]) == 0
    records = json.loads((tmp_path / "pred" / "predictions.json").read_text())[image.name]
    assert records, "score_thresh 0 gives detections"
    assert all(r["area_pred"] > 0 for r in records)  # the plugin's own result field


def test_eval_prints_the_third_party_heads_own_metric_beside_ap(tmp_path: Path, tiny_synthetic: Path,
                                                                capsys) -> None:
    cfg = tiny_config(tmp_path, tiny_synthetic, HEADS)
    assert main(["train", "--config", str(cfg)]) == 0
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["eval", "--config", str(out / "config.yaml"), "--weights", str(out / "model_final.pth")]) == 0
    printed = capsys.readouterr().out
    assert "bbox" in printed and "area" in printed and "MAE" in printed, printed
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert set(metrics["area"]) == {"MAE", "rel_error", "matched"}
    assert 0 <= metrics["area"]["matched"] <= 1
    # two iterations may match no object yet: then there is no error to average (NaN), else >= 0
    if metrics["area"]["matched"] == 0:
        assert math.isnan(metrics["area"]["MAE"])
    else:
        assert metrics["area"]["MAE"] >= 0
    assert 0 <= metrics["bbox"]["AP"] <= 1
