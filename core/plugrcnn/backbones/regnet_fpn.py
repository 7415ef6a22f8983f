"""RegNetY (torchvision.models, Radosavovic et al. 2020) + FPN: the built-in ``regnet_y_400mf_fpn``
and ``regnet_y_800mf_fpn``. Its four stages (block1..block4) have strides 4..32, as ResNet's
res2..res5, so the pyramid is P2..P5 (+ P6 by max-pool) and the ResNet configs' anchors fit.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torchvision

from plugrcnn.backbones.mobilenet_fpn import last_conv_channels
from plugrcnn.backbones.spec import Backbone, BackboneContext
from plugrcnn.config.ranges import ranged
from plugrcnn.modeling.backbone import FPN, FrozenStages, fpn_pyramid, freeze, load_imagenet_weights, norm_layer

REGNET_ARCHS = ("regnet_y_400mf", "regnet_y_800mf")
STAGES = ("block1", "block2", "block3", "block4")


@dataclass
class RegNetOptions:
    """model.backbone options of the RegNetY FPN backbones."""
    norm: Literal["frozen_bn", "bn"] = "frozen_bn"
    freeze_at: int = ranged(2, ge=0, le=5)   # as ResNet: 1 freezes the stem, k the stem + block1..block(k-1)
    weights: str | None = None               # local torchvision regnet_y_* ImageNet state_dict


class RegNetFPN(FrozenStages, Backbone):
    """images (N, 3, H, W) -> [P2, P3, P4, P5, (P6)], each (N, C, H/s, W/s)."""

    def __init__(self, arch: str, options: RegNetOptions, ctx: BackboneContext) -> None:
        super().__init__()
        net = getattr(torchvision.models, arch)(weights=None, norm_layer=norm_layer(options.norm))
        self.stem, self.trunk_output = net.stem, net.trunk_output
        if options.weights:
            load_imagenet_weights(self, Path(options.weights), classifier=("fc.",))
        stages = [getattr(self.trunk_output, s) for s in STAGES]
        self.frozen = ([self.stem] if options.freeze_at >= 1 else []) + stages[: max(options.freeze_at - 1, 0)]
        freeze(self.frozen)
        self.fpn = FPN([last_conv_channels(s) for s in stages], ctx.fpn)
        self.pyramid = fpn_pyramid(2, len(STAGES), ctx.fpn)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for stage in STAGES:
            x = getattr(self.trunk_output, stage)(x)
            outs.append(x)
        return self.fpn(outs)
