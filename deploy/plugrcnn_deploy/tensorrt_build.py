"""ONNX -> serialized TensorRT engine (TensorRT 10 and 11 Python API), and the engine file format.

Engine file: ``MAGIC`` + 8-byte little-endian length + the DeploySpec as JSON + the engine bytes
from ``IBuilder.build_serialized_network``. The header lets a runtime refuse a file that is not a
plugrcnn engine, or one built for another input size, before TensorRT sees it.

Precision: TensorRT 10 builds the float32 ONNX graph and ``--fp16`` sets ``BuilderFlag.FP16``
(TensorRT picks fp16 kernels where they are faster). TensorRT 11 removed that flag and builds
strongly typed networks only, so there ``--fp16`` exports the graph with fp16 backbone and heads
(pooling, box decoding and NMS stay float32) and the types in the ONNX file decide.

A timing cache (``<engine>.timing``) is read before and written after each build, so rebuilding
for another size or after a small change skips most kernel timing.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from plugrcnn.errors import PlugrcnnError
from plugrcnn_deploy.files import atomic_output
from plugrcnn_deploy.spec import DeploySpec

MAGIC = b"PLUGRCNN-TRT\x01\n"
WORKSPACE_BYTES = 4 << 30


def import_tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise PlugrcnnError(f"TensorRT is not installed ({exc}); on a machine with an NVIDIA GPU run "
                            f"`pip install tensorrt` (wheels come from NVIDIA's index, pypi.nvidia.com)") from None
    return trt


def fp16_needs_typed_graph(trt: Any) -> bool:
    """True on TensorRT 11+, where fp16 must be in the ONNX types (no BuilderFlag.FP16)."""
    return not hasattr(trt.BuilderFlag, "FP16")


def build_engine(onnx_path: Path, output: Path, spec: DeploySpec, *, fp16: bool, config: Any = None,
                 pm: Any = None, workspace_bytes: int = WORKSPACE_BYTES) -> DeploySpec:
    """Parse `onnx_path`, build, and write the engine file `output`; returns the stored spec."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    typed = fp16_needs_typed_graph(trt)
    flags = 0
    if typed and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i).desc()) for i in range(parser.num_errors)]
        raise PlugrcnnError(f"{onnx_path}: the TensorRT ONNX parser rejects it: "
                            f"{errors[0] if errors else 'unknown error'}")
    builder_config = builder.create_builder_config()
    builder_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if fp16 and not typed:
        builder_config.set_flag(trt.BuilderFlag.FP16)
    if not fp16 and hasattr(trt.BuilderFlag, "TF32"):  # float32 means float32, as in the verification
        builder_config.clear_flag(trt.BuilderFlag.TF32)
    cache_path = output.with_suffix(output.suffix + ".timing")
    cache = builder_config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    builder_config.set_timing_cache(cache, ignore_mismatch=False)
    if pm is not None:
        pm.hook.plugrcnn_configure_tensorrt_builder(builder_config=builder_config, network=network, config=config)
    serialized = builder.build_serialized_network(network, builder_config)
    if serialized is None:
        raise PlugrcnnError(f"{onnx_path}: TensorRT could not build an engine (see its log above)")
    spec = spec.with_extra(tensorrt=trt.__version__, fp16=fp16)
    write_engine_file(output, spec, bytes(serialized))
    with atomic_output(cache_path) as tmp:
        tmp.write_bytes(bytes(builder_config.get_timing_cache().serialize()))
    return spec


def write_engine_file(path: Path, spec: DeploySpec, engine: bytes) -> None:
    header = spec.to_json().encode()
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(MAGIC + struct.pack("<Q", len(header)) + header + engine)


def read_engine_file(path: Path) -> tuple[DeploySpec, bytes]:
    if not path.is_file():
        raise PlugrcnnError(f"{path}: model file not found")
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise PlugrcnnError(f"{path}: not a plugrcnn TensorRT engine; the tensorrt backend needs a file "
                            f"from `plugrcnn export --format tensorrt`")
    start = len(MAGIC) + 8
    (length,) = struct.unpack("<Q", data[len(MAGIC):start])
    try:
        header = data[start:start + length].decode()
        json.loads(header)
    except (UnicodeDecodeError, ValueError):
        raise PlugrcnnError(f"{path}: damaged engine header; export the engine again") from None
    return DeploySpec.from_json(header, str(path)), data[start + length:]
