"""The MaskIoU head of Mask Scoring R-CNN: regresses the IoU of each predicted mask with its GT.

It builds on the mask head through the head contract alone: its spec consumes
``mask.mask_class_logits`` (the mask head's logits of each row's class: the GT class in training,
the predicted class at inference and in the deploy graph) and it trains on the mask head's rows
(``train_rois = "consumed"``).

Layers (the paper's): the RoI features (C, S, S) concatenated with the max-pooled predicted mask
(1, S, S) -> num_conv x conv3x3 + ReLU (the last with stride 2) -> fc + ReLU x 2 -> one IoU per
class; the row's class is read out.

Training target: the IoU of the binarised predicted mask (probability >= 0.5) with the GT mask,
both on the RoI's M x M grid; L2 loss. (The paper measures the GT area over the whole object;
the RoI grid is what the mask head itself is trained on.) Inference: ``mask_iou`` (D,) and
``mask_score`` = detection score x mask_iou, the score the segm evaluation and the COCO records
use when ``rescore`` is on; bbox keeps the detection score.

Shape shorthand: R rows, C channels, S pooler resolution (14), M = 2S mask resolution, K classes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from plugrcnn.heads import (
    Check,
    Head,
    HeadContext,
    ImageTargets,
    PlugrcnnError,
    PredictContext,
    RoIInput,
    RoIRows,
    in_float32,
    ranged,
)
from plugrcnn_mask import build_roi_mask_targets

CONSUMED = "mask.mask_class_logits"


@dataclass
class MaskIoUHeadConfig:
    pooler_resolution: int = ranged(14, ge=2, le=64)  # must equal model.heads.mask.pooler_resolution
    num_conv: int = ranged(4, ge=1, le=16)            # the last one has stride 2: S -> S/2
    conv_dim: int = ranged(256, ge=1, le=4096)
    fc_dim: int = ranged(1024, ge=1, le=16384)
    rescore: bool = True          # mask score = detection score x predicted IoU (segm AP, records)


class MaskIoUHead(Head):
    stage = "instance"
    train_rois = "consumed"  # the rows the mask head trains on: foreground RoIs with a GT mask

    def __init__(self, cfg: MaskIoUHeadConfig, ctx: HeadContext, name: str = "maskiou") -> None:
        super().__init__(name, RoIInput(resolution=cfg.pooler_resolution))
        mask_cfg = ctx.required.get("mask")
        if mask_cfg is not None and mask_cfg.pooler_resolution != cfg.pooler_resolution:
            raise PlugrcnnError(
                f"model.heads.{name}.pooler_resolution ({cfg.pooler_resolution}) must equal "
                f"model.heads.mask.pooler_resolution ({mask_cfg.pooler_resolution}): the max-pooled "
                f"mask is concatenated with the RoI features")
        if cfg.num_conv < 1 or cfg.pooler_resolution % 2:
            raise PlugrcnnError(f"model.heads.{name}: num_conv must be >= 1 and pooler_resolution even "
                                f"(got {cfg.num_conv}, {cfg.pooler_resolution})")
        self.cfg = cfg
        channels = ctx.in_channels + 1
        self.convs = nn.ModuleList()
        for i in range(cfg.num_conv):
            stride = 2 if i == cfg.num_conv - 1 else 1
            self.convs.append(nn.Conv2d(channels, cfg.conv_dim, 3, stride=stride, padding=1))
            channels = cfg.conv_dim
        side = cfg.pooler_resolution // 2
        self.fc1 = nn.Linear(cfg.conv_dim * side * side, cfg.fc_dim)
        self.fc2 = nn.Linear(cfg.fc_dim, cfg.fc_dim)
        self.iou = nn.Linear(cfg.fc_dim, ctx.num_classes + 1)
        for layer in [*self.convs, self.fc1, self.fc2]:
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layer.bias)
        nn.init.normal_(self.iou.weight, std=0.01)
        nn.init.zeros_(self.iou.bias)

    def forward(self, x: torch.Tensor, rows: RoIRows) -> dict[str, torch.Tensor]:
        # the mask is an input, not something this head trains: no gradient into the mask head
        mask = rows.consumed[CONSUMED].detach().sigmoid()            # (R, M, M)
        pooled = F.max_pool2d(mask[:, None], kernel_size=2, stride=2)  # (R, 1, S, S)
        h = torch.cat([x, pooled.to(x.dtype)], dim=1)                  # (R, C+1, S, S)
        for conv in self.convs:
            h = F.relu(conv(h))                                         # (R, D, S/2, S/2) at the end
        h = F.relu(self.fc2(F.relu(self.fc1(h.flatten(1)))))
        per_class = in_float32(self.iou, h)                             # (R, K+1)
        classes = rows.classes if rows.classes is not None else torch.zeros_like(per_class[:, 0], dtype=torch.int64)
        iou = per_class.gather(1, classes.to(torch.int64)[:, None])[:, 0]  # (R,)
        return {"mask_iou": iou, "mask_probs": mask}

    # -- training -------------------------------------------------------------------------------
    def loss(self, outputs: dict[str, torch.Tensor], rois: list[Any],
             targets: list[ImageTargets]) -> dict[str, torch.Tensor]:
        pred = outputs["mask_iou"]
        target, keep = mask_iou_targets(outputs["mask_probs"], rois, targets)
        if target.numel() == 0:  # keeps the graph connected to every parameter (DDP)
            return {f"loss_{self.name}": pred.sum() * 0.0}
        return {f"loss_{self.name}": F.mse_loss(pred[keep], target)}

    # -- inference ------------------------------------------------------------------------------
    def predict(self, outputs: dict[str, torch.Tensor], rows: RoIRows,
                ctx: PredictContext) -> dict[str, torch.Tensor]:
        iou = outputs["mask_iou"].float().clamp(0.0, 1.0)
        scores = rows.scores if rows.scores is not None else torch.ones_like(iou)
        return {"mask_iou": iou, "mask_score": scores.float() * iou}

    def kind_scores(self) -> dict[str, str]:
        return {"segm": "mask_score"} if self.cfg.rescore else {}

    def coco_results(self, detection: dict[str, torch.Tensor], records: list[dict[str, Any]]) -> None:
        for record, iou in zip(records, detection["pred_mask_iou"].tolist()):
            record["mask_iou"] = float(iou)

    def output_checks(self) -> dict[str, Check]:
        return {"mask_iou": "value", "mask_score": "value"}


def mask_iou_targets(mask_probs: torch.Tensor, rois: list[Any],
                     targets: list[ImageTargets]) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU (R',) of each row's binarised predicted mask (R, M, M) with its GT mask cut to the RoI,
    and which rows (R,) bool have a GT mask."""
    resolution = mask_probs.shape[-1]
    keep, _, gt = build_roi_mask_targets(rois, [t.heads["mask"] for t in targets], resolution)
    keep = keep.to(mask_probs.device)
    predicted = (mask_probs[keep] >= 0.5).float()          # (R', M, M)
    gt = gt.to(predicted.device)
    intersection = (predicted * gt).flatten(1).sum(1)
    union = ((predicted + gt) > 0).float().flatten(1).sum(1)
    return intersection / union.clamp(min=1.0), keep
