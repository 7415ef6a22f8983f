"""Hook implementations of the box head plugin."""
from __future__ import annotations

from typing import Iterator

import torch

from plugrcnn.heads import HeadContext, HeadSpec, hookimpl
from plugrcnn_box.convert import convert_detectron2_box
from plugrcnn_box.head import BoxHead, BoxHeadConfig


def _build(cfg: BoxHeadConfig, ctx: HeadContext) -> BoxHead:
    return BoxHead(cfg, ctx)


@hookimpl
def plugrcnn_register_heads() -> Iterator[HeadSpec]:
    yield HeadSpec(name="box", config_class=BoxHeadConfig, build=_build, requires=("class",),
                   description="class-specific box regression of RoIs (smooth-L1)")


@hookimpl
def plugrcnn_convert_weights(source: str, arch: str, state_dict: dict[str, torch.Tensor],
                             head_names: tuple[str, ...]) -> dict[str, torch.Tensor] | None:
    if "box" not in head_names:
        return None
    if source == "detectron2":
        return convert_detectron2_box(state_dict)
    if source != "torchvision":
        return None
    prefix = "roi_heads.box_predictor.bbox_pred."
    return {f"roi_stage.heads.box.bbox_pred.{k[len(prefix):]}": v
            for k, v in state_dict.items() if k.startswith(prefix)}
