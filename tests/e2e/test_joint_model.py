"""Box + mask + keypoints in one model: joint training, predict outputs, and heads switched off."""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from plugrcnn.cli import main
from plugrcnn.config import load_config
from plugrcnn.engine.training import prepare_training
from conftest import tiny_config

ROOT = Path(__file__).resolve().parents[2]
KEYPOINTS = ROOT / "configs" / "demo" / "synthetic_keypoints.yaml"
ALL_HEADS = ("    class: {}\n    box: {}\n    mask: {num_conv: 1, conv_dim: 16}\n"
             "    keypoint: {num_conv: 2, conv_dim: 16}\n")


def joint_config(tmp_path: Path, data: Path, heads: str = ALL_HEADS) -> Path:
    return tiny_config(tmp_path, data, heads, extra=f"_base_: {KEYPOINTS}\n")


def test_core_imports_no_head_plugin() -> None:
    pattern = re.compile(r"\b(import|from)\s+plugrcnn_(class|box|mask|keypoint)\b")
    offenders = [str(p) for folder in ("core", "deploy") for p in (ROOT / folder).rglob("*.py")
                 if pattern.search(p.read_text())]
    assert offenders == []


def test_joint_training_lowers_box_mask_and_keypoint_losses(tmp_path: Path, tiny_synthetic: Path) -> None:
    torch.manual_seed(0)
    cfg = load_config(joint_config(tmp_path, tiny_synthetic))
    built, dataset, _ = prepare_training(cfg)
    model = built.model.train()
    # a batch with a stick figure (keypoints) and shapes (masks), trained on repeatedly
    items = [dataset[i] for i in range(len(dataset))]
    batch = [it for it in items if (it["targets"].gt_labels == 4).any()][:1]
    batch += [it for it in items if not (it["targets"].gt_labels == 4).any()][:1]
    assert len(batch) == 2
    # The backbone and RPN are held fixed and the RoI sampling re-seeded, so every step sees the
    # same RoIs and a falling loss means the heads learned (not that the RoI mix changed).
    for p in [*model.backbone.parameters(), *model.rpn.parameters()]:
        p.requires_grad_(False)
    # Adam: the three heads' gradients differ in scale by orders of magnitude at initialisation
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    history = []
    for _ in range(30):
        torch.manual_seed(1)
        losses = built.criterion(model(batch))
        history.append({k: float(v.detach()) for k, v in losses.items()})
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    for name in ("loss_box", "loss_mask", "loss_keypoint"):
        first = sum(h[name] for h in history[:3]) / 3
        last = sum(h[name] for h in history[-3:]) / 3
        assert last < 0.9 * first, f"{name}: {first:.4f} -> {last:.4f}"


def test_predict_writes_boxes_masks_and_keypoints(tmp_path: Path, tiny_synthetic: Path) -> None:
    cfg = joint_config(tmp_path, tiny_synthetic)
    assert main(["train", "--config", str(cfg)]) == 0
    out = tmp_path / "out"
    image = sorted((tiny_synthetic / "val").iterdir())[0]
    assert main(["predict", "--config", str(out / "config.yaml"), "--weights", str(out / "model_final.pth"),
                 "--input", str(image), "--output", str(tmp_path / "pred"),
                 "model.heads.keypoint.categories=[]"]) == 0  # keypoints for every detection
    records = json.loads((tmp_path / "pred" / "predictions.json").read_text())[image.name]
    assert records
    for r in records:
        assert len(r["bbox"]) == 4
        assert set(r["segmentation"]) == {"size", "counts"} and r["segmentation"]["size"] == [96, 96]
        assert len(r["keypoints"]) == 3 * 11
    assert (tmp_path / "pred" / f"{image.name}.png").is_file()


def test_disabling_a_head_removes_it_from_training_inference_and_outputs(tmp_path: Path,
                                                                         tiny_synthetic: Path) -> None:
    heads = "    class: {}\n    box: {}\n    keypoint: {num_conv: 2, conv_dim: 16}\n"  # no mask
    cfg = joint_config(tmp_path, tiny_synthetic, heads)
    assert main(["train", "--config", str(cfg)]) == 0
    out = tmp_path / "out"
    metrics = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert "loss_keypoint" in metrics and not any(k.startswith("loss_mask") for k in metrics)
    state = torch.load(out / "model_final.pth", map_location="cpu", weights_only=True)["model"]
    assert not any(".heads.mask." in k for k in state)
    image = sorted((tiny_synthetic / "val").iterdir())[0]
    assert main(["predict", "--config", str(out / "config.yaml"), "--weights", str(out / "model_final.pth"),
                 "--input", str(image), "--output", str(tmp_path / "pred")]) == 0
    records = json.loads((tmp_path / "pred" / "predictions.json").read_text())[image.name]
    assert records and not any("segmentation" in r for r in records)
