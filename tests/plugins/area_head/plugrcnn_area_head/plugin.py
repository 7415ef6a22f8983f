"""Hook implementations of the test area head."""
from __future__ import annotations

from typing import Iterator

from plugrcnn.heads import HeadContext, HeadSpec, hookimpl
from plugrcnn_area_head.head import AreaHead, AreaHeadConfig


def _build(cfg: AreaHeadConfig, ctx: HeadContext) -> AreaHead:
    return AreaHead(cfg, ctx)


@hookimpl
def plugrcnn_register_heads() -> Iterator[HeadSpec]:
    yield HeadSpec(name="area", config_class=AreaHeadConfig, build=_build, requires=("class", "box"),
                   description="test head: log(area) regression")
