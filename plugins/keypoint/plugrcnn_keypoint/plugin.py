"""Hook implementations of the keypoint head plugin."""
from __future__ import annotations

from typing import Iterator

import torch

from plugrcnn.heads import HeadContext, HeadSpec, hookimpl
from plugrcnn_keypoint.config import KeypointHeadConfig
from plugrcnn_keypoint.convert import (convert_detectron2_keypoint_head,
                                       convert_torchvision_keypoint_head)
from plugrcnn_keypoint.head import KeypointHead
from plugrcnn_keypoint.targets import keypoint_codec


def _build(cfg: KeypointHeadConfig, ctx: HeadContext) -> KeypointHead:
    return KeypointHead(cfg, ctx)


@hookimpl
def plugrcnn_register_heads() -> Iterator[HeadSpec]:
    yield HeadSpec(name="keypoint", config_class=KeypointHeadConfig, build=_build,
                   requires=("class", "box"), target_codec=keypoint_codec,
                   description="keypoint heatmaps of detections (softmax over positions)")


@hookimpl
def plugrcnn_convert_weights(source: str, arch: str, state_dict: dict[str, torch.Tensor],
                             head_names: tuple[str, ...]) -> dict[str, torch.Tensor] | None:
    if "keypoint" not in head_names:
        return None
    if source == "detectron2":
        return convert_detectron2_keypoint_head(state_dict)
    return convert_torchvision_keypoint_head(state_dict) if source == "torchvision" else None
