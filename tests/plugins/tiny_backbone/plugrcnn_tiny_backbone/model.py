"""Three stride-2 conv stages after a stride-4 stem: levels c3, c4, c5 (strides 8, 16, 32), each
projected to `channels` by a 1x1 conv. No FPN: the core needs only the declared pyramid."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from plugrcnn.backbones import Backbone, Pyramid, ranged


@dataclass
class TinyConvNetOptions:
    width: int = ranged(8, ge=1, le=256)      # channels of the first stage (doubling per stage)
    channels: int = ranged(16, ge=1, le=256)  # of every output level


def _conv(c_in: int, c_out: int, stride: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.BatchNorm2d(c_out), nn.ReLU())


class TinyConvNet(Backbone):
    def __init__(self, options: TinyConvNetOptions) -> None:
        super().__init__()
        w = options.width
        self.stem = nn.Sequential(_conv(3, w, 2), _conv(w, w, 2))        # stride 4
        self.stages = nn.ModuleList([_conv(w, w, 2), _conv(w, 2 * w, 2), _conv(2 * w, 4 * w, 2)])
        self.outputs = nn.ModuleList(nn.Conv2d(c, options.channels, 1) for c in (w, 2 * w, 4 * w))
        # the RPN reads every level; RoIAlign reads c3 and c4 only
        self.pyramid = Pyramid(names=("c3", "c4", "c5"), strides=(8, 16, 32), channels=options.channels,
                               pooler_levels=("c3", "c4"))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        levels = []
        for stage, output in zip(self.stages, self.outputs):
            x = stage(x)
            levels.append(output(x))
        return levels
