"""Shared RoI representations ("trunks") that several heads read.

``box_fc``: RoIAlign 7x7 -> optional 3x3 convs (+ BatchNorm) -> flatten -> fc + ReLU (x num_fc). The class and
box heads both consume its output, so it exists once, not once per plugin.
"""
from __future__ import annotations

import torch
from torch import nn

from plugrcnn.config.schema import BoxTrunkConfig


class FCTrunk(nn.Module):
    """(R, C, S, S) -> (R, fc_dim)."""

    def __init__(self, in_channels: int, cfg: BoxTrunkConfig) -> None:
        super().__init__()
        self.resolution = cfg.pooler_resolution
        self.convs = nn.ModuleList()
        c = in_channels
        for _ in range(cfg.num_conv):
            conv = nn.Conv2d(c, cfg.conv_dim, 3, padding=1, bias=not cfg.norm)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
            # norm "bn": conv (no bias) + BatchNorm, as torchvision's v2 box head
            self.convs.append(nn.Sequential(conv, nn.BatchNorm2d(cfg.conv_dim)) if cfg.norm else conv)
            c = cfg.conv_dim
        dim = c * cfg.pooler_resolution ** 2
        self.fcs = nn.ModuleList()
        for _ in range(cfg.num_fc):
            fc = nn.Linear(dim, cfg.fc_dim)
            nn.init.kaiming_uniform_(fc.weight, a=1)
            nn.init.zeros_(fc.bias)
            self.fcs.append(fc)
            dim = cfg.fc_dim

    @staticmethod
    def output_dim(in_channels: int, cfg: BoxTrunkConfig) -> int:
        if cfg.num_fc:
            return cfg.fc_dim
        channels = cfg.conv_dim if cfg.num_conv else in_channels
        return channels * cfg.pooler_resolution ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = torch.relu_(conv(x))
        x = x.flatten(1)  # (R, C, S, S) -> (R, C*S*S)
        for fc in self.fcs:
            x = torch.relu_(fc(x))
        return x


TRUNKS = {"box_fc": FCTrunk}
