"""Runtimes behind one interface: ``load_runtime(backend, ...)`` -> ``Runtime.infer(frames)``."""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch

from plugrcnn.errors import PlugrcnnError
from plugrcnn.modeling.detector import TwoStageDetector
from plugrcnn_deploy.formats.spec import DeploySpec, check_heads_match, check_input_size
from plugrcnn_deploy.runtimes.base import Runtime

# backend name -> "module:class"; imported on use, so a missing TensorRT only matters to its users
BACKENDS = {
    "torch": "plugrcnn_deploy.runtimes.torch_rt:TorchRuntime",
    "onnxruntime": "plugrcnn_deploy.runtimes.onnxruntime_rt:OnnxRuntime",
    "tensorrt": "plugrcnn_deploy.runtimes.tensorrt_rt:TensorRTRuntime",
    "aoti": "plugrcnn_deploy.runtimes.aoti_rt:AOTIRuntime",
}


def runtime_class(backend: str) -> type[Runtime]:
    if backend not in BACKENDS:
        raise PlugrcnnError(f"unknown backend '{backend}'; use one of {', '.join(BACKENDS)}")
    module_name, class_name = BACKENDS[backend].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def load_runtime(backend: str, model: TwoStageDetector, *, model_path: Path | None, device: torch.device,
                 size: tuple[int, int] | None = None, default_size: tuple[int, int] | None = None,
                 max_detections: int | None = None, fp16: bool = False, **options: Any) -> Runtime:
    """A ready runtime for `model`'s config.

    torch: runs `model` itself at `size` (else `default_size`); the other backends open
    `model_path`, whose input size must equal `size` when one is given, and whose heads must be the
    config's heads (they decode and draw the outputs).
    """
    cls = runtime_class(backend)
    heads = dict(model.heads.items())
    pixel_mean = model.cfg.input.pixel_mean
    if backend == "torch":
        height, width = size or default_size or (0, 0)
        spec = DeploySpec(height=height, width=width, fp16=fp16,
                          max_detections=max_detections or model.cfg.detection.detections_per_image)
        return cls.load(model_path, heads, pixel_mean, device=device, model=model, spec=spec, **options)
    if model_path is None:
        raise PlugrcnnError(f"backend '{backend}' runs an exported model: give --model PATH "
                            f"(from `plugrcnn export`)")
    runtime = cls.load(model_path, heads, pixel_mean, device=device, **options)
    check_input_size(runtime.spec, *(size or (None, None)), where=str(model_path))
    check_heads_match(runtime.spec, tuple(heads), where=str(model_path))
    return runtime


__all__ = ["BACKENDS", "Runtime", "load_runtime", "runtime_class"]
