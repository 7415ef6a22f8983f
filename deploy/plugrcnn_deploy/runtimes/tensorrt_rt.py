"""TensorRT backend (10.x / 11.x): named I/O tensors bound to torch CUDA tensors, execute_async_v3.

Input and outputs live in fixed torch buffers whose addresses are set on the execution context
once, so an inference is: copy the batch into the input buffer, enqueue, read the output buffers.
With ``cuda_graph`` the enqueue is captured once and replayed (the graph is fully static, so the
engine is capturable); if a capture fails anyway, the engine runs uncaptured on a fresh execution
context (the one a failed capture touched is not reused).

The engine file is a raw plan with a sidecar JSON (formats/tensorrt_build.py); TensorRT's plugins are
registered before it is deserialized. ``--device cuda`` (no index) means the current CUDA device.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from plugrcnn.errors import PlugrcnnError
from plugrcnn.heads.base import Head
from plugrcnn_deploy.formats.spec import INPUT_NAME, DeploySpec
from plugrcnn_deploy.formats.tensorrt_build import deserialize_engine, import_tensorrt, read_engine_file
from plugrcnn_deploy.runtimes.base import Runtime


def cuda_device(device: torch.device) -> torch.device:
    """`device` with an index: torch.device("cuda") -> the current CUDA device (set_device and
    stream creation need the index)."""
    if device.type != "cuda":
        raise PlugrcnnError(f"tensorrt backend: needs a CUDA device (--device cuda), got {device}")
    return device if device.index is not None else torch.device("cuda", torch.cuda.current_device())


def _torch_dtype(trt: Any, dtype: Any) -> torch.dtype:
    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
             trt.int8: torch.int8, trt.bool: torch.bool, trt.uint8: torch.uint8}
    if hasattr(trt, "int64"):
        table[trt.int64] = torch.int64
    return table[dtype]


class TensorRTRuntime(Runtime):
    backend = "tensorrt"
    trt_runtime: Any = None  # the IRuntime and logger the engine came from: kept alive with it
    logger: Any = None

    def __init__(self, engine: Any, spec: DeploySpec, heads: Mapping[str, Head], pixel_mean: Sequence[float],
                 device: torch.device, cuda_graph: bool, trt: Any) -> None:
        super().__init__(spec, heads, pixel_mean, device)
        self.engine = engine
        self.stream = torch.cuda.Stream(device=device)
        self.buffers: dict[str, Tensor] = {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            shape = tuple(engine.get_tensor_shape(name))
            self.buffers[name] = torch.empty(shape, dtype=_torch_dtype(trt, engine.get_tensor_dtype(name)),
                                             device=device)
        self.context = self._fresh_context()
        self.cuda_graph: torch.cuda.CUDAGraph | None = None
        if cuda_graph:
            self._capture()

    @classmethod
    def load(cls, path: Any, heads: Mapping[str, Head], pixel_mean: Sequence[float], *,
             device: torch.device, cuda_graph: bool = False, **options: Any) -> TensorRTRuntime:
        path = Path(path)
        spec, engine_bytes = read_engine_file(path)  # before importing TensorRT: a clear error first
        trt = import_tensorrt()
        device = cuda_device(device)
        torch.cuda.set_device(device)
        engine, trt_runtime, logger = deserialize_engine(trt, engine_bytes, path)
        names = {engine.get_tensor_name(i) for i in range(engine.num_io_tensors)}
        expected = {INPUT_NAME, *spec.outputs}
        if names != expected:
            raise PlugrcnnError(f"{path}: engine tensors {sorted(names)} differ from its sidecar "
                                f"{sorted(expected)}; export it again")
        shape = tuple(engine.get_tensor_shape(INPUT_NAME))
        if shape != spec.input_shape:
            raise PlugrcnnError(f"{path}: engine input is {shape} but its sidecar says {spec.input_shape}; "
                                f"export it again")
        runtime = cls(engine, spec, heads, pixel_mean, device, cuda_graph, trt)
        runtime.trt_runtime, runtime.logger = trt_runtime, logger  # they must outlive the engine
        return runtime

    def _enqueue(self, stream: torch.cuda.Stream) -> None:
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise PlugrcnnError("tensorrt backend: execute_async_v3 failed (see the TensorRT log)")

    def _capture(self) -> None:
        with torch.cuda.stream(self.stream):
            self._enqueue(self.stream)  # the first enqueue finishes lazy initialisation
        self.stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self._enqueue(torch.cuda.current_stream(self.device))
            self.cuda_graph = graph
        except (RuntimeError, PlugrcnnError) as exc:
            warnings.warn(f"tensorrt backend: CUDA graph capture failed ({exc}); running uncaptured on a "
                          f"fresh execution context")
            torch.cuda.synchronize(self.device)
            self.context = self._fresh_context()

    def run(self, images: Tensor) -> dict[str, Tensor]:
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        with torch.cuda.stream(self.stream):
            self.buffers[INPUT_NAME].copy_(images, non_blocking=True)
            if self.cuda_graph is not None:
                self.cuda_graph.replay()
            else:
                self._enqueue(self.stream)
            outputs = {name: self.buffers[name].clone() for name in self.spec.outputs}
        current.wait_stream(self.stream)
        return outputs

    def profile_stages(self, images: Tensor, iterations: int) -> dict[str, float]:
        """Milliseconds per run in each top-level graph module, from TensorRT's layer profiler.

        Layer names keep the ONNX node names ("/backbone/body/...", fused ones joined by " + "),
        so a layer counts for the module its first node belongs to. Runs uncaptured.
        """
        trt = import_tensorrt()
        totals: dict[str, float] = {}

        class _Profiler(trt.IProfiler):  # type: ignore[misc, name-defined]
            def __init__(self) -> None:
                trt.IProfiler.__init__(self)

            def report_layer_time(self, layer_name: str, ms: float) -> None:
                found = re.search(r"/(\w+)/", layer_name)
                module = found.group(1) if found else "other"
                totals[module] = totals.get(module, 0.0) + ms / iterations

        self.buffers[INPUT_NAME].copy_(images)
        torch.cuda.synchronize(self.device)
        self.context.profiler = _Profiler()
        try:
            for _ in range(iterations):
                self._enqueue(self.stream)
                self.stream.synchronize()
        finally:
            try:
                self.context.profiler = None
            except TypeError:  # bindings that do not take None: profile a fresh context next time
                self.context = self._fresh_context()
        return totals

    def _fresh_context(self) -> Any:
        context = self.engine.create_execution_context()
        for name, buffer in self.buffers.items():
            context.set_tensor_address(name, buffer.data_ptr())
        return context

    def close(self) -> None:
        self.cuda_graph = None
        self.context = None
