"""The backbones that ship with plugrcnn, registered in code through the same hook a plugin
implements (so they need no entry point and no reinstall)."""
from __future__ import annotations

from functools import partial
from typing import Any, Iterator

from plugrcnn.backbones.spec import BackboneContext, BackboneSpec
from plugrcnn.plugins.hookspecs import hookimpl


def _resnet(arch: str, options: Any, ctx: BackboneContext) -> Any:
    from plugrcnn.modeling.backbone import ResNetFPN

    return ResNetFPN(arch, options, ctx.fpn)


def _regnet(arch: str, options: Any, ctx: BackboneContext) -> Any:
    from plugrcnn.backbones.regnet_fpn import RegNetFPN

    return RegNetFPN(arch, options, ctx)


@hookimpl
def plugrcnn_register_backbones() -> Iterator[BackboneSpec]:
    from plugrcnn.backbones import mobilenet_fpn, regnet_fpn
    from plugrcnn.modeling.backbone import RESNET_ARCHS, ResNetOptions

    for arch in RESNET_ARCHS:
        yield BackboneSpec(arch, ResNetOptions, partial(_resnet, arch),
                           f"torchvision {arch} + FPN (P2-P6)")
    yield BackboneSpec("mobilenet_v3_large_fpn", mobilenet_fpn.MobileNetV3Options, mobilenet_fpn.build,
                       "torchvision MobileNetV3-Large + FPN (P3-P6): real-time on a CPU")
    for arch in regnet_fpn.REGNET_ARCHS:
        yield BackboneSpec(f"{arch}_fpn", regnet_fpn.RegNetOptions, partial(_regnet, arch),
                           f"torchvision {arch} + FPN (P2-P6)")
