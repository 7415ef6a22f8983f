"""ResNet / ResNeXt bottom-up (torchvision.models) + FPN top-down, giving P2..P6: the built-in
backbones ``resnet18`` ... ``resnext101_32x8d`` (registered in plugrcnn.backbones.builtin).

Shape shorthand: N images, C channels; level l has stride 2**l (P2: 4 ... P6: 64).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from plugrcnn.backbones.spec import Backbone, Pyramid
from plugrcnn.config.ranges import ranged
from plugrcnn.config.schema import FPNConfig
from plugrcnn.errors import PlugrcnnError

STAGES = ("layer1", "layer2", "layer3", "layer4")  # res2 .. res5
RESNET_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnext101_32x8d")


@dataclass
class ResNetOptions:
    """model.backbone options of the ResNet / ResNeXt FPN backbones (detectron2's defaults)."""
    norm: Literal["frozen_bn", "bn", "gn"] = "frozen_bn"
    freeze_at: int = ranged(2, ge=0, le=5)                  # 0: train all; 1: freeze stem; k: freeze stem + res2..res(k)
    weights: str | None = None       # local torchvision-format ImageNet state_dict; never downloaded
    frozen_bn_eps: float = ranged(1e-5, gt=0, le=1)
    # MSRA ResNet (detectron2's R50/R101): the first block of a stage strides in its 1x1 conv,
    # not in its 3x3 (torchvision's ResNet v1.5); the parameters have the same shapes
    stride_in_1x1: bool = False


def norm_layer(norm: str, frozen_bn_eps: float = 1e-5) -> Callable[[int], nn.Module]:
    """channels -> the norm module named by a backbone's `norm` option."""
    if norm == "frozen_bn":
        return lambda c: FrozenBatchNorm2d(c, eps=frozen_bn_eps)
    if norm == "gn":
        return lambda c: nn.GroupNorm(32, c)
    return nn.BatchNorm2d


class FrozenStages(nn.Module):
    """A network whose `frozen` modules (set by `freeze`) keep their norm layers in eval mode:
    no running-statistics updates while the rest trains."""

    frozen: list[nn.Module]

    def train(self, mode: bool = True) -> FrozenStages:
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self


class ResNetBody(FrozenStages):
    """torchvision's ResNet without avgpool/fc; returns res2..res5."""

    def __init__(self, arch: str, cfg: ResNetOptions) -> None:
        super().__init__()
        factory = getattr(torchvision.models, arch)
        net = factory(weights=None, norm_layer=norm_layer(cfg.norm, cfg.frozen_bn_eps))
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.out_channels = [_stage_channels(getattr(self, s)) for s in STAGES]
        if cfg.stride_in_1x1:
            move_stride_to_1x1(self)
        if cfg.weights:
            load_imagenet_weights(self, Path(cfg.weights))
        self.frozen = frozen_modules(self, cfg.freeze_at)
        freeze(self.frozen)

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


def freeze(modules: list[nn.Module]) -> None:
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(False)



def load_imagenet_weights(body: nn.Module, path: Path, classifier: tuple[str, ...] = ("fc.",)) -> None:
    """Load a torchvision-format ImageNet checkpoint (the classifier's keys ignored) from a local file."""
    from plugrcnn.modeling.weights import read_state_dict

    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith(classifier)}
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


def fpn_pyramid(first_level: int, num_inputs: int, fpn: FPNConfig) -> Pyramid:
    """P<first>..P<first+num_inputs-1> (+ P6-style max-pool level); RoIAlign reads all but the
    max-pool level, the RPN reads all (as in detectron2 and torchvision)."""
    levels = list(range(first_level, first_level + num_inputs))
    pooled = tuple(f"p{lvl}" for lvl in levels)
    if fpn.top_block == "maxpool":
        levels.append(levels[-1] + 1)
    return Pyramid(names=tuple(f"p{lvl}" for lvl in levels), strides=tuple(2 ** lvl for lvl in levels),
                   channels=fpn.out_channels, pooler_levels=pooled)


class ResNetFPN(Backbone):
    """images (N, 3, H, W) -> [P2, P3, P4, P5, (P6)], each (N, C, H/s, W/s)."""

    def __init__(self, arch: str, options: ResNetOptions, fpn: FPNConfig) -> None:
        super().__init__()
        self.body = ResNetBody(arch, options)
        self.fpn = FPN(self.body.out_channels, fpn)
        self.pyramid = fpn_pyramid(2, len(STAGES), fpn)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.fpn(self.body(x))
