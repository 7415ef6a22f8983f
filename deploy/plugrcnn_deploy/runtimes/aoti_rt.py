"""AOTInductor backend: a compiled .pt2 package of the deploy graph, called like a module."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from plugrcnn.heads.base import Head
from plugrcnn_deploy.formats.aoti import load_aoti
from plugrcnn_deploy.formats.spec import DeploySpec
from plugrcnn_deploy.runtimes.base import Runtime


class AOTIRuntime(Runtime):
    backend = "aoti"

    def __init__(self, compiled: Any, spec: DeploySpec, heads: Mapping[str, Head], pixel_mean: Sequence[float],
                 device: torch.device) -> None:
        super().__init__(spec, heads, pixel_mean, device)
        self.compiled = compiled

    @classmethod
    def load(cls, path: Any, heads: Mapping[str, Head], pixel_mean: Sequence[float], *,
             device: torch.device, **options: Any) -> AOTIRuntime:
        compiled, spec = load_aoti(Path(path), device)
        return cls(compiled, spec, heads, pixel_mean, device)

    @torch.no_grad()
    def run(self, images: Tensor) -> dict[str, Tensor]:
        outputs = self.compiled(images.contiguous())
        return dict(zip(self.spec.outputs, outputs))
