"""AreaHead: RoIAlign 7x7 -> 1 conv -> global pool -> linear -> log(area) of the object.

Targets come from the COCO annotation's `area` field, scaled under resize (a flip keeps it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from plugrcnn.heads import Head, HeadContext, ImageTargets
from plugrcnn.plugins import RoIInput


@dataclass
class AreaHeadConfig:
    pooler_resolution: int = 7
    hidden: int = 32
    loss_weight: float = 1.0


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

    def __init__(self, cfg: AreaHeadConfig, ctx: HeadContext) -> None:
        super().__init__("area", RoIInput(resolution=cfg.pooler_resolution))
        self.cfg = cfg
        self.conv = nn.Conv2d(ctx.in_channels, cfg.hidden, 3, padding=1)
        self.fc = nn.Linear(cfg.hidden, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = F.relu(self.conv(x)).mean(dim=(2, 3))  # (R, C, S, S) -> (R, hidden)
        return {"log_area": self.fc(h)[:, 0]}

    def target_codec(self) -> AreaCodec:
        return AreaCodec()

    def loss(self, outputs: dict[str, torch.Tensor], rois: list[Any],
             targets: list[ImageTargets]) -> dict[str, torch.Tensor]:
        pred = outputs["log_area"]
        if pred.numel() == 0:
            return {"loss_area": pred.sum() * 0.0}
        area = torch.cat([t.heads["area"][r.matched_gt] for r, t in zip(rois, targets)]).to(pred.device)
        return {"loss_area": F.smooth_l1_loss(pred, area.clamp(min=1.0).log()) * self.cfg.loss_weight}

    def postprocess(self, outputs: dict[str, torch.Tensor], detections: list[dict[str, torch.Tensor]]) -> None:
        for det, log_area in zip(detections, outputs["log_area"].split([len(d["pred_boxes"]) for d in detections])):
            det["pred_area"] = log_area.exp()

    def finalize(self, detection: dict[str, torch.Tensor], scale_xy: tuple[float, float],
                 original_size: tuple[int, int]) -> None:
        detection["pred_area"] = detection["pred_area"] * scale_xy[0] * scale_xy[1]

    def coco_results(self, detection: dict[str, torch.Tensor], records: list[dict[str, Any]]) -> None:
        for record, area in zip(records, detection["pred_area"].tolist()):
            record["area_pred"] = area if math.isfinite(area) else None

    def export_outputs(self, outputs: dict[str, torch.Tensor],
                       detections: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        n, k = detections["scores"].shape
        return {"area": outputs["log_area"].exp().view(n, k)}
