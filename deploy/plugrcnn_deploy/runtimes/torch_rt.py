"""PyTorch eager backend: the deploy graph itself, with the fast paths CUDA offers.

On CUDA: fp16 weights and activations in the backbone and heads (``fp16``), channels-last
convolutions (``channels_last``), and the dense part of the graph (normalise, backbone, RPN head:
no data-dependent shapes) replayed from a CUDA graph (``cuda_graph``), which removes the
per-kernel launch cost that dominates a ResNet-FPN at batch 1. Proposal selection, NMS and the
heads run eagerly after it. On CPU the graph simply runs eagerly in float32.
"""
from __future__ import annotations

import warnings
from dataclasses import replace
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from plugrcnn.heads.base import Head
from plugrcnn.modeling.detector import TwoStageDetector
from plugrcnn_deploy.formats.spec import DeploySpec
from plugrcnn_deploy.graph.deploy_graph import DeployGraph
from plugrcnn_deploy.runtimes.base import Runtime


class _DenseCudaGraph:
    """The dense part of a DeployGraph captured once, replayed per batch (static input buffer)."""

    def __init__(self, graph: DeployGraph, example: Tensor, channels_last: bool) -> None:
        self.graph = graph
        self.channels_last = channels_last
        self.static_input = example.clone()
        side = torch.cuda.Stream(device=example.device)
        side.wait_stream(torch.cuda.current_stream(example.device))
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(3):  # warm up cuDNN autotuning and the allocator outside the capture
                self._dense()
        torch.cuda.current_stream(example.device).wait_stream(side)
        self.cuda_graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.cuda_graph), torch.no_grad():
            self.static_outputs = self._dense()

    def _dense(self) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        images = self.static_input
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.graph.dense(images)

    def __call__(self, images: Tensor) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        self.static_input.copy_(images)
        self.cuda_graph.replay()
        return self.static_outputs


class TorchRuntime(Runtime):
    backend = "torch"

    def __init__(self, graph: DeployGraph, heads: Mapping[str, Head], pixel_mean: Sequence[float],
                 device: torch.device, channels_last: bool, cuda_graph: bool) -> None:
        super().__init__(graph.spec, heads, pixel_mean, device)
        self.graph = graph
        self.channels_last = channels_last
        self.dense_graph: _DenseCudaGraph | None = None
        if cuda_graph and device.type == "cuda":
            example = torch.zeros(graph.spec.input_shape, dtype=getattr(torch, graph.spec.input_dtype),
                                  device=device)
            try:
                self.dense_graph = _DenseCudaGraph(graph, example, channels_last)
            except RuntimeError as exc:  # capture is an optimisation; eager still gives the answer
                warnings.warn(f"torch backend: CUDA graph capture failed ({exc}); running eagerly")

    @classmethod
    def load(cls, path: Any, heads: Mapping[str, Head], pixel_mean: Sequence[float], *,
             device: torch.device, model: TwoStageDetector | None = None, spec: DeploySpec | None = None,
             channels_last: bool | None = None, cuda_graph: bool | None = None, **options: Any) -> TorchRuntime:
        """`path` is unused (the model arrives built, with its weights); `spec` gives the size."""
        assert model is not None and spec is not None, "the torch backend needs the built model and a spec"
        on_cuda = device.type == "cuda"
        if spec.fp16 and not on_cuda:
            warnings.warn("torch backend: fp16 is for CUDA; running float32 on CPU")
            spec = replace(spec, fp16=False)
        model = model.to(device).eval()
        graph = DeployGraph(model, spec)
        channels_last = on_cuda if channels_last is None else channels_last
        if channels_last:
            graph.backbone.to(memory_format=torch.channels_last)
            graph.rpn_head.to(memory_format=torch.channels_last)
        return cls(graph, heads, pixel_mean, device, channels_last, on_cuda if cuda_graph is None else cuda_graph)

    @torch.no_grad()
    def run(self, images: Tensor) -> dict[str, Tensor]:
        if self.dense_graph is not None:
            dense = self.dense_graph(images)
        else:
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            dense = self.graph.dense(images)
        return self.graph.sparse(*dense)

    def close(self) -> None:
        self.dense_graph = None
