"""AreaHead: RoIAlign 7x7 -> 1 conv -> global pool -> linear -> log(area) of the object.

Targets come from the COCO annotation's `area` field, scaled under resize (a flip keeps it).
Its evaluation kind, "area", is one COCOeval does not know: `evaluate` reports the mean absolute
(and relative) error of the predicted area of detections matched to a GT object.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import box_iou

from plugrcnn.heads import Head, HeadContext, ImageTargets, PredictContext, RoIInput, RoIRows


@dataclass
class AreaHeadConfig:
    pooler_resolution: int = 7
    hidden: int = 32
    match_iou: float = 0.5  # evaluation: a detection of the GT's category overlapping it this much


class AreaCodec:
    def read(self, annotations: list[dict[str, Any]], height: int, width: int) -> torch.Tensor:
        return torch.tensor([float(a.get("area", 0.0)) for a in annotations], dtype=torch.float32)

    def transform(self, target: torch.Tensor, op: Any) -> torch.Tensor:
        if hasattr(op, "scale_x"):
            return target * op.scale_x * op.scale_y
        return target

    def valid(self, target: torch.Tensor) -> torch.Tensor:
        return target > 0


class AreaHead(Head):
    stage = "instance"
    train_rois = "foreground_with_targets"
    eval_kind = "area"

    def __init__(self, cfg: AreaHeadConfig, ctx: HeadContext) -> None:
        super().__init__("area", RoIInput(resolution=cfg.pooler_resolution))
        self.cfg = cfg
        self.conv = nn.Conv2d(ctx.in_channels, cfg.hidden, 3, padding=1)
        self.fc = nn.Linear(cfg.hidden, 1)

    def forward(self, x: torch.Tensor, rows: RoIRows) -> dict[str, torch.Tensor]:
        h = F.relu(self.conv(x)).mean(dim=(2, 3))  # (R, C, S, S) -> (R, hidden)
        return {"log_area": self.fc(h)[:, 0]}

    def loss(self, outputs: dict[str, torch.Tensor], rois: list[Any],
             targets: list[ImageTargets]) -> dict[str, torch.Tensor]:
        pred = outputs["log_area"]
        if pred.numel() == 0:
            return {"loss_area": pred.sum() * 0.0}
        area = torch.cat([t.heads["area"][r.matched_gt] for r, t in zip(rois, targets)]).to(pred.device)
        return {"loss_area": F.smooth_l1_loss(pred, area.clamp(min=1.0).log())}

    def predict(self, outputs: dict[str, torch.Tensor], rows: RoIRows,
                ctx: PredictContext) -> dict[str, torch.Tensor]:
        return {"area": outputs["log_area"].float().exp()}  # (D,) in network-input pixels^2

    def finalize(self, detection: dict[str, torch.Tensor], scale_xy: tuple[float, float],
                 original_size: tuple[int, int]) -> None:
        detection["pred_area"] = detection["pred_area"] * scale_xy[0] * scale_xy[1]

    def coco_results(self, detection: dict[str, torch.Tensor], records: list[dict[str, Any]]) -> None:
        for record, area in zip(records, detection["pred_area"].tolist()):
            record["area_pred"] = area if math.isfinite(area) else None

    def evaluate(self, ground_truth: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, float]:
        """Each non-crowd GT object against the best-scoring detection of its category that
        overlaps it by `match_iou`: mean absolute error of the area, and mean relative error."""
        by_image: dict[Any, list[dict[str, Any]]] = {}
        for record in records:
            by_image.setdefault(record["image_id"], []).append(record)
        errors, relative, total = [], [], 0
        for ann in ground_truth["annotations"]:
            if ann.get("iscrowd", 0) or ann.get("area", 0) <= 0:
                continue
            total += 1
            candidates = [r for r in by_image.get(ann["image_id"], [])
                          if r["category_id"] == ann["category_id"] and r.get("area_pred") is not None]
            if not candidates:
                continue
            iou = box_iou(_xyxy([ann["bbox"]]), _xyxy([r["bbox"] for r in candidates]))[0]
            matched = [(r["score"], r) for r, v in zip(candidates, iou.tolist()) if v >= self.cfg.match_iou]
            if matched:
                best = max(matched, key=lambda pair: pair[0])[1]
                errors.append(abs(best["area_pred"] - ann["area"]))
                relative.append(errors[-1] / ann["area"])
        if not errors:
            return {"MAE": float("nan"), "rel_error": float("nan"), "matched": 0.0}
        return {"MAE": sum(errors) / len(errors), "rel_error": sum(relative) / len(relative),
                "matched": len(errors) / max(total, 1)}


def _xyxy(boxes: list[list[float]]) -> torch.Tensor:
    b = torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4)
    return torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], dim=1)
