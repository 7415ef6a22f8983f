"""ONNX Runtime backend: CPU, or CUDA / TensorRT execution providers with I/O bound to torch tensors.

Session options, chosen by measurement (deploy/README.md, "onnxruntime session options"): graph
optimisation ORT_ENABLE_ALL, intra-op threads 0 (onnxruntime's default: one per physical core) and
no spin-waiting between ops (``session.intra_op.allow_spinning=0``): spinning threads cost more
than they save wherever cores are shared, and ``--ort-threads`` / ``--ort-spin`` override them.

Providers on CUDA: ``auto`` takes TensorRT's execution provider when this onnxruntime has it (engine
cache next to the model), else CUDA, and says on stderr which one it did not find.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from plugrcnn.errors import PlugrcnnError
from plugrcnn.heads.base import Head
from plugrcnn_deploy.formats.onnx_export import read_onnx_spec
from plugrcnn_deploy.formats.spec import INPUT_NAME, DeploySpec
from plugrcnn_deploy.runtimes.base import Runtime

_NUMPY_TO_TORCH = {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16,
                   np.dtype(np.int32): torch.int32, np.dtype(np.int64): torch.int64,
                   np.dtype(np.uint8): torch.uint8, np.dtype(np.bool_): torch.bool}
_ORT_TO_NUMPY = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int32)": np.int32,
                 "tensor(int64)": np.int64, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


PROVIDERS = ("auto", "tensorrt", "cuda", "cpu")
DEFAULT_THREADS = 0      # onnxruntime's default: one intra-op thread per physical core
DEFAULT_SPINNING = False


def _providers(device: torch.device, provider: str = "auto", model_path: Path | None = None) -> list[Any]:
    """The execution providers for `device`, best first; says on stderr what is missing."""
    import onnxruntime as ort

    if provider not in PROVIDERS:
        raise PlugrcnnError(f"onnxruntime: unknown provider '{provider}'; use one of {', '.join(PROVIDERS)}")
    if device.type != "cuda" or provider == "cpu":
        if provider in ("tensorrt", "cuda"):
            raise PlugrcnnError(f"onnxruntime: --ort-provider {provider} needs --device cuda")
        return ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    index = device.index if device.index is not None else torch.cuda.current_device()
    chosen: list[Any] = []
    if provider in ("auto", "tensorrt"):
        if "TensorrtExecutionProvider" in available:
            cache = str(model_path.parent / ".ort-trt-cache") if model_path is not None else "."
            chosen.append(("TensorrtExecutionProvider", {"device_id": index, "trt_engine_cache_enable": True,
                                                         "trt_engine_cache_path": cache}))
        elif provider == "tensorrt":
            raise PlugrcnnError(f"onnxruntime: no TensorRT execution provider in this onnxruntime "
                                f"({', '.join(available)}); install onnxruntime-gpu with TensorRT, or use "
                                f"--ort-provider cuda")
        else:
            print("onnxruntime: TensorRT execution provider not available; using CUDA", file=sys.stderr)
    if "CUDAExecutionProvider" not in available:
        raise PlugrcnnError("onnxruntime: device is CUDA but this onnxruntime has no CUDA provider "
                            f"({', '.join(available)}); install onnxruntime-gpu or use --device cpu")
    return [*chosen, ("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]


def session_options(threads: int = DEFAULT_THREADS, spinning: bool = DEFAULT_SPINNING,
                    profile_prefix: str | None = None) -> Any:
    import onnxruntime as ort

    if threads < 0:
        raise PlugrcnnError(f"onnxruntime: --ort-threads must be >= 0 (0: one per core), got {threads}")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return options


def _session(path: Path, device: torch.device, profile_prefix: str | None = None, *, provider: str = "auto",
             threads: int = DEFAULT_THREADS, spinning: bool = DEFAULT_SPINNING) -> Any:
    import onnxruntime as ort

    options = session_options(threads, spinning, profile_prefix)
    try:
        return ort.InferenceSession(str(path), options, providers=_providers(device, provider, path))
    except PlugrcnnError:
        raise
    except Exception as exc:
        raise PlugrcnnError(f"{path}: onnxruntime cannot load it ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:160]})") from None


class OnnxRuntime(Runtime):
    backend = "onnxruntime"

    def __init__(self, path: Path, session: Any, spec: DeploySpec, heads: Mapping[str, Head],
                 pixel_mean: Sequence[float], device: torch.device, session_kwargs: dict[str, Any]) -> None:
        super().__init__(spec, heads, pixel_mean, device)
        self.path = path
        self.session = session
        self.session_kwargs = session_kwargs
        self.output_types = {o.name: _ORT_TO_NUMPY[o.type] for o in session.get_outputs()}
        self.output_shapes = {o.name: tuple(o.shape) for o in session.get_outputs()}

    @classmethod
    def load(cls, path: Any, heads: Mapping[str, Head], pixel_mean: Sequence[float], *,
             device: torch.device, ort_provider: str = "auto", ort_threads: int = DEFAULT_THREADS,
             ort_spin: bool = DEFAULT_SPINNING, **options: Any) -> OnnxRuntime:
        path = Path(path)
        if not path.is_file():
            raise PlugrcnnError(f"{path}: model file not found")
        spec = read_onnx_spec(path)
        session_kwargs = {"provider": ort_provider, "threads": ort_threads, "spinning": ort_spin}
        session = _session(path, device, **session_kwargs)
        shapes = {i.name: tuple(i.shape) for i in session.get_inputs()}
        if shapes.get(INPUT_NAME) != spec.input_shape:
            raise PlugrcnnError(f"{path}: input '{INPUT_NAME}' is {shapes.get(INPUT_NAME)}, its metadata says "
                                f"{spec.input_shape}; re-export the model")
        return cls(path, session, spec, heads, pixel_mean, device, session_kwargs)

    def run(self, images: Tensor) -> dict[str, Tensor]:
        if self.device.type == "cuda":
            return self._run_bound(images)
        outputs = self.session.run(list(self.spec.outputs), {INPUT_NAME: images.cpu().numpy()})
        return {name: torch.from_numpy(value) for name, value in zip(self.spec.outputs, outputs)}

    def _run_bound(self, images: Tensor) -> dict[str, Tensor]:
        """CUDA: the session reads and writes torch tensors in place."""
        images = images.contiguous()
        binding = self.session.io_binding()
        index = images.device.index if images.device.index is not None else torch.cuda.current_device()
        input_dtype = next(k for k, v in _NUMPY_TO_TORCH.items() if v == images.dtype)
        binding.bind_input(INPUT_NAME, "cuda", index, input_dtype, tuple(images.shape), images.data_ptr())
        outputs = {}
        for name in self.spec.outputs:
            dtype = np.dtype(self.output_types[name])
            out = torch.empty(self.output_shapes[name], dtype=_NUMPY_TO_TORCH[dtype], device=images.device)
            binding.bind_output(name, "cuda", index, dtype, tuple(out.shape), out.data_ptr())
            outputs[name] = out
        torch.cuda.current_stream(images.device).synchronize()  # the session runs on its own stream
        self.session.run_with_iobinding(binding)
        return outputs

    def profile_stages(self, images: Tensor, iterations: int) -> dict[str, float]:
        """Milliseconds per run spent in each top-level module of the graph (from ORT's profiler)."""
        prefix = os.path.join(tempfile.gettempdir(), f"plugrcnn-ort-profile-{os.getpid()}")
        session = _session(self.path, self.device, profile_prefix=prefix, **self.session_kwargs)
        feed = {INPUT_NAME: images.cpu().numpy()}
        for _ in range(iterations):
            session.run(None, feed)
        trace = Path(session.end_profiling())
        try:
            events = json.loads(trace.read_text())
        finally:
            os.unlink(trace)
        totals: dict[str, float] = {}
        for event in events:
            if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
                continue
            name = event["name"]
            stage = name.split("/")[1] if name.startswith("/") and name.count("/") > 1 else "other"
            totals[stage] = totals.get(stage, 0.0) + event.get("dur", 0) / 1000.0 / iterations
        return totals
