"""MobileNetV3-Large (torchvision.models) + FPN: the built-in ``mobilenet_v3_large_fpn``, for
real-time detection on a CPU.

Unlike ResNet it has no stride-4 stage worth pooling from: the FPN reads the ends of the
stride-8 stage (40 channels, block 6), the stride-16 stage (112 channels, block 12) and the final
1x1 conv (960 channels, stride 32), giving P3..P5 (+ P6 by max-pool). ``first_level: 4`` drops P3
(as torchvision's fasterrcnn_mobilenet_v3_large_fpn, which starts at stride 16 or coarser).
Shape shorthand: N images; level l has stride 2**l.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torchvision
from torch import nn

from plugrcnn.backbones.spec import Backbone, BackboneContext
from plugrcnn.config.ranges import ranged
from plugrcnn.modeling.backbone import FPN, FrozenStages, fpn_pyramid, freeze, load_imagenet_weights, norm_layer

# index in torchvision's mobilenet_v3_large().features of the last block at stride 8, 16, 32
STAGE_ENDS = {3: 6, 4: 12, 5: 16}
# freeze_at k -> features[:k] frozen: the blocks whose output stride is at most 2**k
FREEZE_END = {0: 0, 1: 2, 2: 4, 3: 7, 4: 13, 5: 17}


@dataclass
class MobileNetV3Options:
    """model.backbone options of ``mobilenet_v3_large_fpn``."""
    norm: Literal["frozen_bn", "bn"] = "frozen_bn"
    first_level: Literal[3, 4] = 3    # finest FPN level: P3 (stride 8) or P4 (stride 16, faster)
    freeze_at: int = ranged(0, ge=0, le=5)   # as ResNet's, by stride: k freezes the blocks of stride <= 2**k
    weights: str | None = None        # local torchvision mobilenet_v3_large ImageNet state_dict


def last_conv_channels(module: nn.Module) -> int:
    """Output channels of the last convolution in `module` (a block's or a stage's width)."""
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)][-1].out_channels


class MobileNetV3FPN(FrozenStages, Backbone):
    """images (N, 3, H, W) -> [P3, P4, P5, (P6)] (or from P4), each (N, C, H/s, W/s)."""

    def __init__(self, options: MobileNetV3Options, ctx: BackboneContext) -> None:
        super().__init__()
        net = torchvision.models.mobilenet_v3_large(weights=None, norm_layer=norm_layer(options.norm, 1e-3))
        self.features = net.features[: STAGE_ENDS[5] + 1]
        if options.weights:
            load_imagenet_weights(self, Path(options.weights), classifier=("classifier.",))
        self.returned = [STAGE_ENDS[lvl] for lvl in range(options.first_level, 6)]
        self.frozen = list(self.features[: FREEZE_END[options.freeze_at]])
        freeze(self.frozen)
        self.fpn = FPN([last_conv_channels(self.features[i]) for i in self.returned], ctx.fpn)
        self.pyramid = fpn_pyramid(options.first_level, len(self.returned), ctx.fpn)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, block in enumerate(self.features):
            x = block(x)
            if i in self.returned:
                outs.append(x)
        return self.fpn(outs)


def build(options: MobileNetV3Options, ctx: BackboneContext) -> MobileNetV3FPN:
    return MobileNetV3FPN(options, ctx)
