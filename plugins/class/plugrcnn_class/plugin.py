"""Hook implementations of the class head plugin."""
from __future__ import annotations

from typing import Iterator

import torch

from plugrcnn.heads import HeadContext, HeadSpec, hookimpl
from plugrcnn_class.convert import convert_detectron2_class
from plugrcnn_class.head import ClassHead, ClassHeadConfig


def _build(cfg: ClassHeadConfig, ctx: HeadContext) -> ClassHead:
    return ClassHead(cfg, ctx)


@hookimpl
def plugrcnn_register_heads() -> Iterator[HeadSpec]:
    yield HeadSpec(name="class", config_class=ClassHeadConfig, build=_build,
                   description="softmax classification of RoIs (cross-entropy)")


@hookimpl
def plugrcnn_convert_weights(source: str, arch: str, state_dict: dict[str, torch.Tensor],
                             head_names: tuple[str, ...]) -> dict[str, torch.Tensor] | None:
    if "class" not in head_names:
        return None
    if source == "detectron2":
        return convert_detectron2_class(state_dict)
    if source != "torchvision":
        return None
    prefix = "roi_heads.box_predictor.cls_score."
    return {f"roi_stage.heads.class.cls_score.{k[len(prefix):]}": v
            for k, v in state_dict.items() if k.startswith(prefix)}
