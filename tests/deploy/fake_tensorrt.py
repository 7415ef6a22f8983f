"""A stand-in `tensorrt` module that records the calls plugrcnn makes, in order.

It behaves like TensorRT where the order matters: the ONNX parser fails on RoiAlign ("ROIAlign
plugin was not found in the plugin registry") and ``deserialize_cuda_engine`` returns None unless
``init_libnvinfer_plugins`` ran first. Only the calls plugrcnn makes exist, with TensorRT 10's names.
"""
from __future__ import annotations

import types
from typing import Any


def make_fake_tensorrt(version: str = "10.99.0", mismatched_cache: bytes = b"") -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version  # type: ignore[attr-defined]
    calls: list[tuple[Any, ...]] = []
    state = {"plugins": False}
    trt.calls = calls  # type: ignore[attr-defined]

    class Logger:
        WARNING = 2

        def __init__(self, severity: int) -> None:
            calls.append(("Logger", severity))

    def init_libnvinfer_plugins(logger: Logger, namespace: str) -> bool:
        calls.append(("init_libnvinfer_plugins", namespace))
        state["plugins"] = True
        return True

    class NetworkDefinitionCreationFlag:
        STRONGLY_TYPED = 1

    class BuilderFlag:
        FP16 = "FP16"
        TF32 = "TF32"

    class MemoryPoolType:
        WORKSPACE = "WORKSPACE"

    class TimingCache:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def serialize(self) -> bytes:
            return b"TIMING:" + self.data

    class BuilderConfig:
        def __init__(self) -> None:
            self.cache: TimingCache | None = None

        def set_memory_pool_limit(self, pool: str, size: int) -> None:
            calls.append(("set_memory_pool_limit", pool, size))

        def set_flag(self, flag: str) -> None:
            calls.append(("set_flag", flag))

        def clear_flag(self, flag: str) -> None:
            calls.append(("clear_flag", flag))

        def create_timing_cache(self, data: bytes) -> TimingCache:
            return TimingCache(bytes(data))

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            ok = not (mismatched_cache and cache.data == mismatched_cache)
            calls.append(("set_timing_cache", cache.data, ignore_mismatch, ok))
            if ok:
                self.cache = cache
            return ok

        def get_timing_cache(self) -> TimingCache:
            assert self.cache is not None
            return self.cache

    class Network:
        def __init__(self, flags: int) -> None:
            self.flags = flags

    class Builder:
        def __init__(self, logger: Logger) -> None:
            calls.append(("Builder",))

        def create_network(self, flags: int) -> Network:
            calls.append(("create_network", flags))
            return Network(flags)

        def create_builder_config(self) -> BuilderConfig:
            return BuilderConfig()

        def build_serialized_network(self, network: Network, config: BuilderConfig) -> bytes:
            calls.append(("build_serialized_network",))
            return b"PLAN-BYTES"

    class ParserError:
        def desc(self) -> str:
            return "ROIAlign plugin was not found in the plugin registry"

    class OnnxParser:
        def __init__(self, network: Network, logger: Logger) -> None:
            calls.append(("OnnxParser",))
            self.num_errors = 0

        def parse_from_file(self, path: str) -> bool:
            calls.append(("parse_from_file", path))
            self.num_errors = 0 if state["plugins"] else 1
            return bool(state["plugins"])

        def get_error(self, index: int) -> ParserError:
            return ParserError()

    class Runtime:
        def __init__(self, logger: Logger) -> None:
            calls.append(("Runtime",))

        def deserialize_cuda_engine(self, plan: bytes) -> object | None:
            calls.append(("deserialize_cuda_engine", bytes(plan)))
            return object() if state["plugins"] else None

    for name, value in list(locals().items()):
        if name[0].isupper() or name == "init_libnvinfer_plugins":
            setattr(trt, name, value)
    return trt


def call_names(trt: types.ModuleType) -> list[str]:
    return [call[0] for call in trt.calls]  # type: ignore[attr-defined]
