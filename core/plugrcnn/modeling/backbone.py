"""ResNet / ResNeXt bottom-up (torchvision.models) + FPN top-down, giving P2..P6.

Shape shorthand: N images, C channels; level l has stride 2**l (P2: 4 ... P6: 64).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from plugrcnn.config.schema import BackboneConfig, FPNConfig
from plugrcnn.errors import PlugrcnnError

STAGES = ("layer1", "layer2", "layer3", "layer4")  # res2 .. res5


def _norm_layer(cfg: BackboneConfig) -> Callable[[int], nn.Module]:
    if cfg.norm == "frozen_bn":
        return lambda c: FrozenBatchNorm2d(c, eps=cfg.frozen_bn_eps)
    if cfg.norm == "gn":
        return lambda c: nn.GroupNorm(32, c)
    return nn.BatchNorm2d


class ResNetBody(nn.Module):
    """torchvision's ResNet without avgpool/fc; returns res2..res5."""

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        factory = getattr(torchvision.models, cfg.name)
        net = factory(weights=None, norm_layer=_norm_layer(cfg))
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.out_channels = [_stage_channels(getattr(self, s)) for s in STAGES]
        if cfg.stride_in_1x1:
            move_stride_to_1x1(self)
        if cfg.weights:
            load_imagenet_weights(self, Path(cfg.weights))
        self.frozen = frozen_modules(self, cfg.freeze_at)
        for module in self.frozen:
            for p in module.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> ResNetBody:
        """Frozen stages keep their norm layers in eval mode (no running-statistics updates)."""
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        outs = []
        for stage in STAGES:
            x = getattr(self, stage)(x)
            outs.append(x)
        return outs


def _stage_channels(stage: nn.Sequential) -> int:
    block = stage[-1]
    last = getattr(block, "conv3", None) or block.conv2
    return last.out_channels


def move_stride_to_1x1(body: nn.Module) -> None:
    """MSRA ResNet: each stage's downsampling block strides in conv1 (1x1), not conv2 (3x3).
    Basic blocks (resnet18/34) have no 1x1 conv: nothing to move (as in detectron2)."""
    for stage in STAGES:
        block = getattr(body, stage)[0]
        if not hasattr(block, "conv3"):
            continue
        stride = block.conv2.stride
        block.conv1.stride, block.conv2.stride = stride, (1, 1)


def frozen_modules(body: ResNetBody, freeze_at: int) -> list[nn.Module]:
    """freeze_at=1 freezes the stem, k freezes the stem and res2..res(k) (detectron2's meaning)."""
    modules: list[nn.Module] = []
    if freeze_at >= 1:
        modules += [body.conv1, body.bn1]
    modules += [getattr(body, s) for s in STAGES[: max(freeze_at - 1, 0)]]
    return modules


def load_imagenet_weights(body: nn.Module, path: Path) -> None:
    """Load a torchvision-format ImageNet checkpoint (fc.* ignored) from a local file."""
    from plugrcnn.modeling.weights import read_state_dict

    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith("fc.")}
    result = body.load_state_dict(state, strict=False)
    bad = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if bad or result.unexpected_keys:
        raise PlugrcnnError(f"{path}: does not fit the backbone (model.backbone.weights): missing "
                            f"{bad[:3]}, unexpected {result.unexpected_keys[:3]}")


def _fpn_conv(in_channels: int, out_channels: int, kernel: int, norm: str) -> nn.Module:
    """A conv with bias, or with norm "bn" Sequential(conv without bias, BatchNorm2d)."""
    conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=not norm)
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels)) if norm == "bn" else conv


class FPN(nn.Module):
    """Lateral 1x1 + top-down nearest upsampling + 3x3 output convs; P6 by max-pool of P5."""

    def __init__(self, in_channels: list[int], cfg: FPNConfig) -> None:
        super().__init__()
        c = cfg.out_channels
        self.lateral = nn.ModuleList(_fpn_conv(ci, c, 1, cfg.norm) for ci in in_channels)
        self.output = nn.ModuleList(_fpn_conv(c, c, 3, cfg.norm) for _ in in_channels)
        self.top_block = cfg.top_block
        self.out_channels = c
        for block in [*self.lateral, *self.output]:
            conv = block[0] if isinstance(block, nn.Sequential) else block
            nn.init.kaiming_uniform_(conv.weight, a=1)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        top = self.lateral[-1](feats[-1])
        results = [self.output[-1](top)]
        for i in range(len(feats) - 2, -1, -1):
            lateral = self.lateral[i](feats[i])
            top = lateral + F.interpolate(top, size=lateral.shape[-2:], mode="nearest")
            results.insert(0, self.output[i](top))
        if self.top_block == "maxpool":
            results.append(F.max_pool2d(results[-1], kernel_size=1, stride=2, padding=0))
        return results


class ResNetFPN(nn.Module):
    """images (N, 3, H, W) -> [P2, P3, P4, P5, (P6)], each (N, C, H/s, W/s)."""

    def __init__(self, backbone: BackboneConfig, fpn: FPNConfig) -> None:
        super().__init__()
        self.body = ResNetBody(backbone)
        self.fpn = FPN(self.body.out_channels, fpn)
        self.out_channels = fpn.out_channels
        self.strides = [4, 8, 16, 32] + ([64] if fpn.top_block == "maxpool" else [])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.fpn(self.body(x))
