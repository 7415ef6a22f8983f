"""Parameters, FLOPs per stage and peak memory of one inference (`plugrcnn analyze`).

FLOPs come from `torch.utils.flop_counter.FlopCounterMode`, which counts a multiply-add as 2
FLOPs (a conv or matmul of M*N*K multiply-adds is 2*M*N*K) and counts only convolutions and
matrix products (not RoIAlign, NMS, elementwise ops). fvcore / detectron2's analyze_model count
one per multiply-add, so their figures are about half of ours for the same work.

A stage is a module the detector calls: the backbone (ResNet + FPN), the RPN, each shared RoI
trunk and each head; forward hooks read the counter's running total before and after each call.
"""
from __future__ import annotations

import resource
import sys
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass
class StageCost:
    name: str
    params: int = 0
    flops: int = 0          # 2 per multiply-add
    calls: int = 0


@dataclass
class Analysis:
    stages: list[StageCost]
    total_params: int
    total_flops: int
    input_size: tuple[int, int]     # the network input (after resize and padding)
    detections: int                 # rows the instance heads ran on
    peak_memory: int                # bytes
    memory_kind: str                # what peak_memory measures
    not_counted: list[str] = field(default_factory=list)


def stage_modules(model: nn.Module) -> dict[str, nn.Module]:
    """name -> module for every stage: backbone, rpn, the RoI trunks, the heads."""
    stages: dict[str, nn.Module] = {"backbone": model.backbone, "rpn": model.rpn}
    trunks = getattr(model.roi_stage, "trunks", None)
    if isinstance(trunks, nn.ModuleDict):
        stages.update({f"trunk {name}": trunk for name, trunk in trunks.items()})
    stages.update({f"head {name}": head for name, head in model.heads.items()})
    return stages


def analyze_inference(model: nn.Module, image: torch.Tensor) -> Analysis:
    """Run `model.predict` once on `image` ((3, H, W), already on the model's device)."""
    stages = stage_modules(model)
    costs = {name: StageCost(name, sum(p.numel() for p in module.parameters()))
             for name, module in stages.items()}
    counter = FlopCounterMode(display=False)
    handles, started = [], {}

    def before(name: str):  # noqa: ANN202 - hook factories
        def hook(module: nn.Module, args: Any) -> None:
            started[name] = counter.get_total_flops()
        return hook

    def after(name: str):  # noqa: ANN202
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            costs[name].flops += counter.get_total_flops() - started.pop(name)
            costs[name].calls += 1
        return hook

    for name, module in stages.items():
        handles.append(module.register_forward_pre_hook(before(name)))
        handles.append(module.register_forward_hook(after(name)))
    sizes: list[tuple[int, int]] = []
    handles.append(model.backbone.register_forward_pre_hook(
        lambda m, args: sizes.append(tuple(args[0].shape[-2:]))))
    device = image.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    try:
        with torch.inference_mode(), counter:
            detections = model.predict([image])
    finally:
        for handle in handles:
            handle.remove()
    if device.type == "cuda":
        peak, kind = torch.cuda.max_memory_allocated(device) - base, "CUDA memory allocated by the inference"
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = rss * (1 if sys.platform == "darwin" else 1024)
        kind = "peak resident memory of the process (model and Python included)"
    total_params = sum(p.numel() for p in model.parameters())
    return Analysis(stages=list(costs.values()), total_params=total_params,
                    total_flops=counter.get_total_flops(), input_size=sizes[0] if sizes else (0, 0),
                    detections=int(detections[0]["scores"].shape[0]), peak_memory=peak,
                    memory_kind=kind, not_counted=["RoIAlign", "NMS", "elementwise ops"])


def format_analysis(result: Analysis) -> str:
    width = max(len(s.name) for s in result.stages) + 2
    lines = [f"{'stage':<{width}}{'params':>12}{'GFLOPs':>10}{'share':>8}{'calls':>7}"]
    lines.append("-" * len(lines[0]))
    for stage in result.stages:
        share = stage.flops / result.total_flops if result.total_flops else 0.0
        lines.append(f"{stage.name:<{width}}{stage.params:>12,}{stage.flops / 1e9:>10.2f}"
                     f"{share:>8.1%}{stage.calls:>7}")
    other = result.total_flops - sum(s.flops for s in result.stages)
    lines.append(f"{'other':<{width}}{'':>12}{other / 1e9:>10.2f}"
                 "  (outside the stages: the heads' finalize)")
    lines.append(f"{'total':<{width}}{result.total_params:>12,}{result.total_flops / 1e9:>10.2f}")
    lines.append("")
    lines.append(f"FLOPs count a multiply-add as 2 (torch.utils.flop_counter); fvcore / detectron2's "
                 f"analyze_model count multiply-adds: {result.total_flops / 2e9:.2f} G multiply-adds.")
    lines.append(f"network input {result.input_size[0]}x{result.input_size[1]} (after resize and "
                 f"padding); instance heads ran on {result.detections} detections; not counted: "
                 f"{', '.join(result.not_counted)}.")
    lines.append(f"peak memory: {result.peak_memory / 2**20:.0f} MiB ({result.memory_kind})")
    return "\n".join(lines)
