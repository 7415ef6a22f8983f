"""One interface for every backend: ``load(...)`` a model file, ``infer(frames) -> detections``.

A runtime owns the fixed-size graph (a PyTorch module, an ONNX Runtime session, a TensorRT
engine, an AOTInductor package) and runs it with ``run(images) -> {output name: tensor}``;
``infer`` adds what is shared: letterboxing frames to the model's input size and decoding the
fixed-size outputs into per-frame detections through the heads.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from plugrcnn.heads.base import Head
from plugrcnn_deploy.formats.spec import DeploySpec
from plugrcnn_deploy.runtimes.decode import DetectionDecoder
from plugrcnn_deploy.video.frames import Letterbox, frames_to_batch, mean_fill


class Runtime(ABC):
    """Subclasses implement ``load`` and ``run``."""

    backend: ClassVar[str]

    def __init__(self, spec: DeploySpec, heads: Mapping[str, Head], pixel_mean: Sequence[float],
                 device: torch.device) -> None:
        self.spec = spec
        self.device = device
        self.decoder = DetectionDecoder(heads, spec)
        self.fill = mean_fill(pixel_mean)

    @classmethod
    @abstractmethod
    def load(cls, path: Any, heads: Mapping[str, Head], pixel_mean: Sequence[float], *,
             device: torch.device, **options: Any) -> Runtime:
        """Open a model file for this backend (errors name the file and what was expected)."""

    @abstractmethod
    def run(self, images: Tensor) -> dict[str, Tensor]:
        """images (N, 3, H, W) of the spec's dtype on ``self.device`` -> the graph's outputs."""

    def prepare(self, frames: Sequence[Tensor]) -> tuple[Tensor, list[Letterbox]]:
        return frames_to_batch(frames, (self.spec.height, self.spec.width), self.spec.batch, self.fill,
                               self.device, self.spec.input_dtype)

    def infer(self, frames: Sequence[Tensor]) -> list[dict[str, Tensor]]:
        """uint8 (3, h, w) RGB frames of any size -> detections in frame coordinates, one per frame."""
        detections: list[dict[str, Tensor]] = []
        for start in range(0, len(frames), self.spec.batch):
            images, boxes = self.prepare(frames[start:start + self.spec.batch])
            detections += self.decoder.decode(self.run(images), boxes)
        return detections

    def close(self) -> None:
        """Release what the backend holds (sessions, CUDA graphs)."""
