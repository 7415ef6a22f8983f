"""Every config shipped in configs/ loads, and its heads build (with a small backbone)."""
from __future__ import annotations

from pathlib import Path

import pytest

from plugrcnn.config import load_config
from plugrcnn.modeling.build import build_model

CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[2] / "configs").rglob("*.yaml")
                 if "heads" in p.read_text() or p.name.startswith(("faster", "mask", "keypoint")))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_builds(path: Path) -> None:
    small = ["model.fpn.out_channels=32", "model.box_trunk.fc_dim=32"]
    if load_config(path).model.backbone.name.startswith("res"):  # the other backbones are small already
        small.append("model.backbone.name=resnet18")
    cfg = load_config(path, small)
    if "class" not in cfg.model.heads:
        pytest.skip("a fragment to _base_ (it enables no complete model)")
    model = build_model(cfg).model
    assert set(model.heads) == set(cfg.model.heads)
    assert "class" in model.heads
