"""Latency of one backend, per stage and end to end, on a synthetic frame.

Measured on every backend: ``preprocess`` (letterbox + upload), ``graph`` (the runtime's run),
``postprocess`` (decoding through the heads: mask pasting, ...), ``end-to-end``.

Inside the graph: the torch backend times ``backbone`` (normalise + backbone + FPN), ``rpn``
(RPN head + proposal selection) and ``heads`` (RoI heads, detection selection, instance heads)
by running the graph's modules one by one with a synchronisation between them; onnxruntime and
TensorRT report their profilers' per-node time summed by the graph's top-level module (node
names keep the module path), one mean value per stage; AOTInductor fuses everything (n/a).
"""
from __future__ import annotations

import torch
from torch import Tensor

from plugrcnn_deploy.export import synthetic_images
from plugrcnn_deploy.runtimes.base import Runtime
from plugrcnn_deploy.video.stats import StageTimer

BENCH_STAGES = ["preprocess", "backbone", "rpn", "heads", "graph", "postprocess", "end-to-end"]
# graph module (first component of a node name) -> reported stage
MODULE_STAGE = {"normalize": "backbone", "backbone": "backbone", "rpn_head": "rpn", "proposals": "rpn",
                "roi_heads": "heads"}


def benchmark(runtime: Runtime, frame_size: tuple[int, int], *, iterations: int, warmup: int) -> StageTimer:
    frame = synthetic_images(frame_size, count=1, seed=0)[0]
    timer = StageTimer(runtime.device)
    scratch = StageTimer(runtime.device)
    images = None
    for i in range(warmup + iterations):
        current = timer if i >= warmup else scratch
        with current.stage("end-to-end"):
            with current.stage("preprocess"):
                images, boxes = runtime.prepare([frame])
            with current.stage("graph"):
                raw = runtime.run(images)
            with current.stage("postprocess"):
                runtime.decoder.decode(raw, boxes)
    assert images is not None
    for stage, values in _graph_stages(runtime, images, iterations).items():
        for value in values:
            timer.add(stage, value)
    return timer


def _graph_stages(runtime: Runtime, images: Tensor, iterations: int) -> dict[str, list[float]]:
    profile = getattr(runtime, "profile_stages", None)
    if runtime.backend == "torch":
        return _torch_stages(runtime, images, iterations)
    if profile is None:
        return {}
    totals: dict[str, float] = {}
    for module, ms in profile(images, iterations).items():
        stage = MODULE_STAGE.get(module, "heads")  # unscoped glue sits between the heads
        totals[stage] = totals.get(stage, 0.0) + ms
    return {stage: [ms] for stage, ms in totals.items()}


@torch.no_grad()
def _torch_stages(runtime: Runtime, images: Tensor, iterations: int) -> dict[str, list[float]]:
    graph = runtime.graph  # type: ignore[attr-defined]
    timer = StageTimer(runtime.device)
    if getattr(runtime, "channels_last", False):
        images = images.contiguous(memory_format=torch.channels_last)
    for _ in range(iterations):
        with timer.stage("backbone"):
            x = graph.normalize(images)
            features = graph.backbone(x.half() if graph.fp16 else x)
        with timer.stage("rpn"):
            proposals, valid = graph.proposals(*graph.rpn_head(graph.pyramid.rpn_features(features)))
        with timer.stage("heads"):
            graph.roi_heads([f.float() for f in graph.pyramid.pooler_features(features)], proposals, valid)
    return timer.samples
