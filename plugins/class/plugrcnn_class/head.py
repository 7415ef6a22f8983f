"""Class logits on the shared box trunk; cross-entropy over sampled RoIs; softmax scores.

Shape shorthand: R RoIs, D trunk width, C foreground classes (C+1 logits, 0 = background).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from plugrcnn.heads import Head, HeadContext, ImageTargets, RoIInput, RoIRows, in_float32


@dataclass
class ClassHeadConfig:
    pass  # the class head has no settings of its own (it reads the core's box trunk)


class ClassHead(Head):
    stage = "roi"
    train_rois = "all"

    def __init__(self, cfg: ClassHeadConfig, ctx: HeadContext, name: str = "class") -> None:
        super().__init__(name, RoIInput(trunk="box_fc"))
        self.cfg = cfg
        self.cls_score = nn.Linear(ctx.trunk_channels["box_fc"], ctx.num_classes + 1)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.zeros_(self.cls_score.bias)

    def forward(self, x: torch.Tensor, rows: RoIRows) -> dict[str, torch.Tensor]:
        return {"class_logits": in_float32(self.cls_score, x)}  # (R, D) -> (R, C+1)

    def loss(self, outputs: dict[str, torch.Tensor], rois: list[Any],
             targets: list[ImageTargets]) -> dict[str, torch.Tensor]:
        logits = outputs["class_logits"]
        labels = torch.cat([r.labels for r in rois]) if rois else logits.new_zeros(0, dtype=torch.long)
        if labels.numel() == 0:  # keep the graph connected (DDP) with a zero loss
            return {f"loss_{self.name}": logits.sum() * 0.0}
        return {f"loss_{self.name}": F.cross_entropy(logits, labels)}

    def candidates(self, outputs: dict[str, torch.Tensor], proposals: list[torch.Tensor],
                   image_sizes: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
        return {"scores": F.softmax(outputs["class_logits"], dim=-1)}
