"""Hook implementations of the MaskIoU head plugin."""
from __future__ import annotations

from typing import Iterator

from plugrcnn.heads import HeadContext, HeadSpec, hookimpl
from plugrcnn_maskiou.head import CONSUMED, MaskIoUHead, MaskIoUHeadConfig


def _build(cfg: MaskIoUHeadConfig, ctx: HeadContext) -> MaskIoUHead:
    return MaskIoUHead(cfg, ctx)


@hookimpl
def plugrcnn_register_heads() -> Iterator[HeadSpec]:
    yield HeadSpec(name="maskiou", config_class=MaskIoUHeadConfig, build=_build,
                   requires=("class", "box", "mask"), consumes=(CONSUMED,),
                   description="Mask Scoring R-CNN: predicted mask IoU, mask score = score x IoU")
