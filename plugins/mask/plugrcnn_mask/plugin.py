"""Hook implementations of the mask head plugin."""
from __future__ import annotations

from typing import Iterator

import torch

from plugrcnn.heads import DatasetInfo, HeadContext, HeadSpec, hookimpl
from plugrcnn_mask.convert import convert_detectron2_mask, convert_torchvision_mask
from plugrcnn_mask.head import MaskHead, MaskHeadConfig
from plugrcnn_mask.targets import MaskCodec


def _build(cfg: MaskHeadConfig, ctx: HeadContext) -> MaskHead:
    return MaskHead(cfg, ctx)


def _codec(cfg: MaskHeadConfig, data: DatasetInfo) -> MaskCodec:
    return MaskCodec()


@hookimpl
def plugrcnn_register_heads() -> Iterator[HeadSpec]:
    yield HeadSpec(name="mask", config_class=MaskHeadConfig, build=_build,
                   requires=("class", "box"), target_codec=_codec,
                   description="instance masks: 28x28 class-specific logits, sigmoid BCE")


@hookimpl
def plugrcnn_convert_weights(source: str, arch: str, state_dict: dict[str, torch.Tensor],
                             head_names: tuple[str, ...]) -> dict[str, torch.Tensor] | None:
    if "mask" not in head_names:
        return None
    if source == "detectron2":
        return convert_detectron2_mask(state_dict)
    return (convert_torchvision_mask(state_dict, with_norm=arch.endswith("_v2"))
            if source == "torchvision" else None)
