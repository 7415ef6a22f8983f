"""The hook implementation: one BackboneSpec (the real code is in model.py)."""
from __future__ import annotations

from typing import Iterator

from plugrcnn.backbones import BackboneSpec, hookimpl

from plugrcnn_tiny_backbone.model import TinyConvNet, TinyConvNetOptions


@hookimpl
def plugrcnn_register_backbones() -> Iterator[BackboneSpec]:
    yield BackboneSpec("tiny_convnet", TinyConvNetOptions, lambda options, ctx: TinyConvNet(options),
                       "test plugin: three strided conv stages, no FPN (C3-C5)")
