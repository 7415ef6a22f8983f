"""Class-specific box deltas on the shared box trunk; smooth-L1 on foreground RoIs.

Shape shorthand: R RoIs, D trunk width, C foreground classes (C+1 delta sets, 0 = background).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import clip_boxes_to_image
from torchvision.utils import draw_bounding_boxes

from plugrcnn.heads import (
    BoxCoder,
    Head,
    HeadContext,
    ImageTargets,
    RoIInput,
    RoIRows,
    class_color,
    draw_boxes_on_tensor,
    in_float32,
    ranged,
)


@dataclass
class BoxHeadConfig:
    box_coder_weights: tuple[float, float, float, float] = ranged((10.0, 10.0, 5.0, 5.0), gt=0)
    smooth_l1_beta: float = ranged(0.0, ge=0)         # 0 is L1 (detectron2); torchvision uses 1/9
    scale_clamp: float = ranged(math.log(1000.0 / 16), gt=0, le=20)  # max |dw|, |dh| (exp overflow)


class BoxHead(Head):
    stage = "roi"
    train_rois = "all"  # the loss is on foreground RoIs, normalised by all sampled RoIs
    eval_kind = "bbox"
    draw_order = 80

    def __init__(self, cfg: BoxHeadConfig, ctx: HeadContext, name: str = "box") -> None:
        super().__init__(name, RoIInput(trunk="box_fc"))
        self.cfg = cfg
        self.num_classes = ctx.num_classes
        self.class_names = ctx.class_names
        self.box_coder = BoxCoder(cfg.box_coder_weights, scale_clamp=cfg.scale_clamp)
        self.bbox_pred = nn.Linear(ctx.trunk_channels["box_fc"], (ctx.num_classes + 1) * 4)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, x: torch.Tensor, rows: RoIRows) -> dict[str, torch.Tensor]:
        return {"box_deltas": in_float32(self.bbox_pred, x)}  # (R, D) -> (R, (C+1)*4)

    def loss(self, outputs: dict[str, torch.Tensor], rois: list[Any],
             targets: list[ImageTargets]) -> dict[str, torch.Tensor]:
        deltas = outputs["box_deltas"]
        labels = torch.cat([r.labels for r in rois])
        fg = torch.where(labels > 0)[0]
        if fg.numel() == 0:
            return {f"loss_{self.name}": deltas.sum() * 0.0}
        boxes = torch.cat([r.boxes for r in rois])
        matched = torch.cat([t.gt_boxes[r.matched_gt.clamp(min=0)] for r, t in zip(rois, targets)])
        target = self.box_coder.encode(matched[fg], boxes[fg])
        # (R, (C+1)*4) -> (R, C+1, 4), then the GT class's deltas of each foreground RoI
        pred = deltas.view(deltas.shape[0], -1, 4)[fg, labels[fg]]
        if self.cfg.smooth_l1_beta < 1e-5:
            total = (pred - target).abs().sum()
        else:
            total = F.smooth_l1_loss(pred, target, beta=self.cfg.smooth_l1_beta, reduction="sum")
        return {f"loss_{self.name}": total / max(labels.numel(), 1)}

    def candidates(self, outputs: dict[str, torch.Tensor], proposals: list[torch.Tensor],
                   image_sizes: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
        boxes = self.box_coder.decode(outputs["box_deltas"], torch.cat(proposals))  # (R, C+1, 4)
        clipped = [clip_boxes_to_image(b, size) for b, size in
                   zip(boxes.split([len(p) for p in proposals]), image_sizes)]
        return {"boxes": torch.cat(clipped)}

    def draw(self, image: torch.Tensor, detection: dict[str, torch.Tensor]) -> torch.Tensor:
        if len(detection["pred_boxes"]) == 0:
            return image
        if image.is_cuda:  # a GPU frame stays on the GPU (no labels: text needs PIL)
            return draw_boxes_on_tensor(image, detection["pred_boxes"],
                                        [class_color(c) for c in detection["pred_classes"].tolist()])
        names = self.class_names
        labels = [f"{names[c - 1] if 0 < c <= len(names) else c} {s:.2f}"
                  for c, s in zip(detection["pred_classes"].tolist(), detection["scores"].tolist())]
        return draw_bounding_boxes(image.cpu(), detection["pred_boxes"].cpu(), labels=labels,
                                   colors=[class_color(c) for c in detection["pred_classes"].tolist()],
                                   width=2)
