"""Hook implementations of the test area head."""
from __future__ import annotations

from typing import Iterator

from plugrcnn.heads import DatasetInfo, HeadContext, HeadSpec, hookimpl
from plugrcnn_area_head.head import AreaCodec, AreaHead, AreaHeadConfig


def _build(cfg: AreaHeadConfig, ctx: HeadContext) -> AreaHead:
    return AreaHead(cfg, ctx)


def _codec(cfg: AreaHeadConfig, data: DatasetInfo) -> AreaCodec:
    return AreaCodec()


@hookimpl
def plugrcnn_register_heads() -> Iterator[HeadSpec]:
    yield HeadSpec(name="area", config_class=AreaHeadConfig, build=_build, requires=("class", "box"),
                   target_codec=_codec,
                   description="test head: log(area) regression")
