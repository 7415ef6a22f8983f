"""ONNX -> serialized TensorRT engine (TensorRT 10 and 11 Python API), its sidecar, and an engine cache.

Engine file: the raw plan from ``IBuilder.build_serialized_network``, so ``trtexec --loadEngine``,
Triton and DeepStream load it as it is. Next to it, ``<engine>.json`` (the sidecar) says what the
plan is: input size, K, heads, every output's name, shape, dtype and meaning, the TensorRT version
and GPU it was built with, and the DeploySpec the plugrcnn runtime checks before TensorRT sees it.

Plugins: the ONNX parser imports RoiAlign as TensorRT's ``ROIAlign_TRT`` plugin, which exists only
after ``trt.init_libnvinfer_plugins(logger, "")``; it is called before parsing and before
deserializing (``tensorrt_logger``).

Precision: the network is always created strongly typed (``NetworkDefinitionCreationFlag.
STRONGLY_TYPED``): the types in the ONNX file decide, TensorRT never lowers a layer on its own.
``--fp16`` exports the graph with fp16 backbone and heads (pooling, box decoding and NMS stay
float32); the weakly typed ``BuilderFlag.FP16`` (deprecated in 10.12, gone in 11) is never set, so
box decoding and NMS cannot end up in fp16. float32 builds clear ``BuilderFlag.TF32``.

A timing cache (``<engine>.timing``) is read before and written after each build; one TensorRT
rejects (another version or GPU) is replaced by an empty one, with a message. The engine cache
(``engine_cache``) keeps built plans under a key of the ONNX graph's SHA-256, the build settings,
the TensorRT version and the GPU: exporting the same graph again on the same machine copies the plan.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import onnx

from plugrcnn.errors import PlugrcnnError
from plugrcnn_deploy.formats.files import atomic_output
from plugrcnn_deploy.formats.io_description import describe_io
from plugrcnn_deploy.formats.spec import DeploySpec

SIDECAR_FORMAT = "plugrcnn-tensorrt-plan"
SIDECAR_VERSION = 1
WORKSPACE_BYTES = 4 << 30


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise PlugrcnnError(f"TensorRT is not installed ({exc}); on a machine with an NVIDIA GPU run "
                            f"`pip install tensorrt` (wheels come from NVIDIA's index, pypi.nvidia.com)") from None
    return trt


def tensorrt_logger(trt: Any) -> Any:
    """A logger, with TensorRT's plugin library registered (ROIAlign_TRT for the parser's RoiAlign).
    Call before creating a parser and before deserializing an engine."""
    logger = trt.Logger(trt.Logger.WARNING)
    if not trt.init_libnvinfer_plugins(logger, ""):
        raise PlugrcnnError("TensorRT: init_libnvinfer_plugins failed; the RoiAlign plugin (ROIAlign_TRT) "
                            "is unavailable")
    return logger


def sidecar_path(engine: Path) -> Path:
    return engine.with_name(engine.name + ".json")


def gpu_identity() -> dict[str, Any]:
    """Name and compute capability of the current CUDA device (what an engine is tied to)."""
    import torch

    index = torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return {"name": torch.cuda.get_device_name(index), "compute_capability": f"{major}.{minor}"}


def cache_key(onnx_bytes: bytes, *, fp16: bool, workspace_bytes: int, tensorrt_version: str,
              gpu: dict[str, Any]) -> str:
    """Engine cache key: graph bytes, build settings, TensorRT version, GPU."""
    digest = hashlib.sha256(onnx_bytes)
    settings = {"fp16": fp16, "workspace": workspace_bytes, "tensorrt": tensorrt_version, "gpu": gpu,
                "sidecar": SIDECAR_VERSION}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:32]


def _network_flags(trt: Any) -> int:
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if flag is None:
        raise PlugrcnnError(f"TensorRT {trt.__version__} has no strongly typed networks; plugrcnn needs "
                            f"TensorRT 10 or newer")
    return 1 << int(flag)


def _set_timing_cache(builder_config: Any, cache_path: Path) -> None:
    data = cache_path.read_bytes() if cache_path.is_file() else b""
    cache = builder_config.create_timing_cache(data)
    if builder_config.set_timing_cache(cache, ignore_mismatch=False):
        return
    print(f"tensorrt: the timing cache {cache_path} is from another TensorRT or GPU; starting an empty one",
          file=sys.stderr)
    if not builder_config.set_timing_cache(builder_config.create_timing_cache(b""), ignore_mismatch=False):
        raise PlugrcnnError(f"{cache_path}: TensorRT refuses even an empty timing cache")


def build_plan(trt: Any, onnx_path: Path, *, fp16: bool, cache_path: Path, config: Any = None, pm: Any = None,
               workspace_bytes: int = WORKSPACE_BYTES) -> bytes:
    """Parse `onnx_path` into a strongly typed network and build the serialized plan."""
    logger = tensorrt_logger(trt)  # registers ROIAlign_TRT before the parser looks it up
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i).desc()) for i in range(parser.num_errors)]
        raise PlugrcnnError(f"{onnx_path}: the TensorRT ONNX parser rejects it: "
                            f"{errors[0] if errors else 'unknown error'}")
    builder_config = builder.create_builder_config()
    builder_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if not fp16 and hasattr(trt.BuilderFlag, "TF32"):  # float32 means float32, as in the verification
        builder_config.clear_flag(trt.BuilderFlag.TF32)
    _set_timing_cache(builder_config, cache_path)
    if pm is not None:
        pm.hook.plugrcnn_configure_tensorrt_builder(builder_config=builder_config, network=network, config=config)
    serialized = builder.build_serialized_network(network, builder_config)
    if serialized is None:
        raise PlugrcnnError(f"{onnx_path}: TensorRT could not build an engine (see its log above)")
    with atomic_output(cache_path) as tmp:
        tmp.write_bytes(bytes(builder_config.get_timing_cache().serialize()))
    return bytes(serialized)


def build_engine(onnx_path: Path, output: Path, spec: DeploySpec, *, fp16: bool, config: Any = None,
                 pm: Any = None, workspace_bytes: int = WORKSPACE_BYTES,
                 engine_cache: Path | None = None) -> DeploySpec:
    """Build (or take from `engine_cache`) the plan of `onnx_path`; write `output` and its sidecar."""
    trt = import_tensorrt()
    onnx_bytes = onnx_path.read_bytes()
    gpu = gpu_identity()
    key = cache_key(onnx_bytes, fp16=fp16, workspace_bytes=workspace_bytes, tensorrt_version=trt.__version__,
                    gpu=gpu)
    cached = engine_cache / f"{key}.plan" if engine_cache is not None else None
    if cached is not None and cached.is_file():
        print(f"tensorrt: engine cache hit {cached}", file=sys.stderr)
        plan = cached.read_bytes()
    else:
        plan = build_plan(trt, onnx_path, fp16=fp16, cache_path=output.with_name(output.name + ".timing"),
                          config=config, pm=pm, workspace_bytes=workspace_bytes)
        if cached is not None:
            with atomic_output(cached) as tmp:
                tmp.write_bytes(plan)
    spec = spec.with_extra(tensorrt=trt.__version__, fp16=fp16, gpu=gpu["name"], graph_sha256=key)
    io = describe_io(onnx.load_from_string(onnx_bytes), spec)
    write_engine_file(output, spec, plan, io=io, gpu=gpu)
    return spec


def write_engine_file(path: Path, spec: DeploySpec, engine: bytes, *, io: dict[str, Any] | None = None,
                      gpu: dict[str, Any] | None = None) -> None:
    """The raw plan at `path` and the sidecar JSON next to it (both complete or both absent)."""
    sidecar = {
        "format": SIDECAR_FORMAT, "format_version": SIDECAR_VERSION, "plan": path.name,
        "input_size": [spec.height, spec.width], "batch": spec.batch, "max_detections": spec.max_detections,
        "heads": list(spec.heads), "fp16": spec.fp16,
        "tensorrt_version": spec.extra.get("tensorrt"), "gpu": gpu or {"name": spec.extra.get("gpu")},
        **(io or {}),
        "spec": json.loads(spec.to_json()),
    }
    with atomic_output(sidecar_path(path)) as tmp_sidecar, atomic_output(path) as tmp_plan:
        tmp_sidecar.write_text(json.dumps(sidecar, indent=2) + "\n")
        tmp_plan.write_bytes(engine)


def read_sidecar(path: Path) -> dict[str, Any]:
    side = sidecar_path(path)
    if not side.is_file():
        raise PlugrcnnError(f"{path}: no sidecar {side.name} next to the engine; the tensorrt backend needs "
                            f"an engine from `plugrcnn export --format tensorrt` (plan + .json)")
    try:
        data = json.loads(side.read_text())
    except (UnicodeDecodeError, ValueError):
        raise PlugrcnnError(f"{side}: not JSON; export the engine again") from None
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT or "spec" not in data:
        raise PlugrcnnError(f"{side}: not a plugrcnn TensorRT sidecar; export the engine again")
    if data.get("format_version") != SIDECAR_VERSION:
        raise PlugrcnnError(f"{side}: sidecar format {data.get('format_version')}, this plugrcnn reads "
                            f"{SIDECAR_VERSION}; export the engine again")
    return data


def read_engine_file(path: Path) -> tuple[DeploySpec, bytes]:
    """The spec from the sidecar and the plan bytes."""
    if not path.is_file():
        raise PlugrcnnError(f"{path}: model file not found")
    data = read_sidecar(path)
    spec = DeploySpec.from_json(json.dumps(data["spec"]), str(sidecar_path(path)))
    return spec, path.read_bytes()


def deserialize_engine(trt: Any, plan: bytes, path: Path) -> tuple[Any, Any, Any]:
    """Plan bytes -> (ICudaEngine, IRuntime, logger), the plugins registered first (an engine holding
    ROIAlign_TRT cannot be deserialized without them). Keep the runtime and logger alive with it."""
    logger = tensorrt_logger(trt)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise PlugrcnnError(f"{path}: TensorRT {trt.__version__} cannot load this engine (built with another "
                            f"TensorRT or GPU?); export it again here")
    return engine, runtime, logger

