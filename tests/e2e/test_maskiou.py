"""Mask Scoring R-CNN as a plugin: it trains on the mask head's outputs, rescored masks change segm
AP but not bbox AP, predictions carry the mask score, and its IoU is an output of the graph."""
from __future__ import annotations

import json
from pathlib import Path

import onnx
import torch

from plugrcnn.cli import main
from plugrcnn.config import load_config
from plugrcnn.engine.training import prepare_training
from conftest import tiny_config

HEADS = ("    class: {}\n    box: {}\n    mask: {num_conv: 1, conv_dim: 16}\n"
         "    maskiou: {num_conv: 2, conv_dim: 16, fc_dim: 64}\n")


def test_maskiou_loss_falls_while_it_reads_the_mask_heads_logits(tmp_path: Path, tiny_synthetic: Path) -> None:
    torch.manual_seed(0)
    built, dataset, _ = prepare_training(load_config(tiny_config(tmp_path, tiny_synthetic, HEADS)))
    model = built.model.train()
    batch = [dataset[0], dataset[1]]
    for p in [*model.backbone.parameters(), *model.rpn.parameters()]:
        p.requires_grad_(False)  # fixed RoIs: a falling loss means the head learned
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    history = []
    for _ in range(25):
        torch.manual_seed(1)
        outputs = model(batch)
        run = outputs.heads["maskiou"]
        # the same rows as the mask head, and its class channel as input
        assert run.outputs["mask_iou"].shape[0] == outputs.heads["mask"].outputs["mask_logits"].shape[0]
        losses = built.criterion(outputs)
        history.append(float(losses["loss_maskiou"].detach()))
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    first, last = sum(history[:3]) / 3, sum(history[-3:]) / 3
    assert last < 0.9 * first, f"loss_maskiou {first:.4f} -> {last:.4f}"


def test_rescoring_changes_segm_not_bbox_and_records_carry_the_mask_score(
        tmp_path: Path, tiny_synthetic: Path, capsys) -> None:
    assert main(["train", "--config", str(tiny_config(tmp_path, tiny_synthetic, HEADS))]) == 0
    out = tmp_path / "out"
    config, weights = str(out / "config.yaml"), str(out / "model_final.pth")
    capsys.readouterr()
    assert main(["eval", "--config", config, "--weights", weights, "--output-dir", str(tmp_path / "on")]) == 0
    printed = capsys.readouterr().out
    assert "segm (det. score)" in printed  # side by side in one table
    assert main(["eval", "--config", config, "--weights", weights, "--output-dir", str(tmp_path / "off"),
                 "model.heads.maskiou.rescore=false"]) == 0
    on = json.loads((tmp_path / "on" / "metrics.json").read_text())
    off = json.loads((tmp_path / "off" / "metrics.json").read_text())
    assert on["bbox"] == off["bbox"]
    assert on["segm (det. score)"] == off["segm"] and "segm (det. score)" not in off
    records = json.loads((tmp_path / "on" / "coco_results.json").read_text())
    assert records and all(0 <= r["mask_iou"] <= 1 for r in records)
    for r in records:  # mask score = detection score x predicted IoU; bbox keeps the score
        assert abs(r["scores"]["segm"] - r["score"] * r["mask_iou"]) < 1e-5

    image = next((tiny_synthetic / "val").iterdir())
    assert main(["predict", "--config", config, "--weights", weights, "--input", str(image),
                 "--output", str(tmp_path / "pred"), "--no-draw"]) == 0
    predicted = json.loads((tmp_path / "pred" / "predictions.json").read_text())[image.name]
    assert predicted and all("segm" in r["scores"] and "mask_iou" in r for r in predicted)


def test_the_mask_iou_is_computed_inside_the_exported_graph_and_verified(tmp_path: Path, tiny_synthetic: Path,
                                                                          capsys) -> None:
    config = tiny_config(tmp_path, tiny_synthetic, HEADS)
    assert main(["train", "--config", str(config)]) == 0
    out = tmp_path / "out"
    onnx_path = tmp_path / "maskiou.onnx"
    capsys.readouterr()
    assert main(["export", "--config", str(out / "config.yaml"), "--weights", str(out / "model_final.pth"),
                 "--format", "onnx", "--output", str(onnx_path), "--height", "96", "--width", "128",
                 "--max-detections", "10", "--verify"]) == 0
    printed = capsys.readouterr().out
    assert "verify: OK" in printed and "pred_mask_iou: largest relative difference" in printed
    graph = onnx.load(str(onnx_path)).graph
    shapes = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in graph.output}
    assert shapes["maskiou.mask_iou"] == [1, 10] and shapes["maskiou.mask_score"] == [1, 10]
    assert shapes["mask.masks"] == [1, 10, 28, 28]
    # computed in the graph: the output is produced by a node (the clamp of the IoU), not passed in
    producers = {name for node in graph.node for name in node.output}
    assert "maskiou.mask_iou" in producers
