"""The TensorRT code path without TensorRT: call order and files, against a recording fake module.

The real engine build and run are in test_tensorrt.py (GPU machines with TensorRT only).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from deploy_fixtures import Deployed, make_images
from fake_tensorrt import call_names, make_fake_tensorrt
from plugrcnn.errors import PlugrcnnError
from plugrcnn_deploy.export import tf32_disabled, verify_export
from plugrcnn_deploy.formats import tensorrt_build
from plugrcnn_deploy.formats.tensorrt_build import build_engine, deserialize_engine, read_engine_file, sidecar_path
from plugrcnn_deploy.runtimes import load_runtime
from plugrcnn_deploy.runtimes.tensorrt_rt import cuda_device

GPU = {"name": "Fake GPU", "compute_capability": "9.0"}


@pytest.fixture
def fake_trt(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    trt = make_fake_tensorrt(mismatched_cache=b"OLD-CACHE")
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", trt)
    monkeypatch.setattr(tensorrt_build, "gpu_identity", lambda: dict(GPU))
    return trt


def _build(deployed: Deployed, output: Path, fp16: bool = False, cache: Path | None = None) -> None:
    build_engine(deployed.onnx, output, deployed.spec, fp16=fp16, engine_cache=cache)


@pytest.mark.parametrize("fp16", [False, True])
def test_build_registers_plugins_before_parsing_and_never_sets_the_fp16_flag(deployed: Deployed, fake_trt,
                                                                            tmp_path: Path, fp16: bool) -> None:
    engine = tmp_path / "model.engine"
    _build(deployed, engine, fp16=fp16)
    names = call_names(fake_trt)
    assert names.index("init_libnvinfer_plugins") < names.index("OnnxParser") < names.index("parse_from_file")
    (flags,) = [c[1] for c in fake_trt.calls if c[0] == "create_network"]
    assert flags & (1 << fake_trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert ("set_flag", "FP16") not in fake_trt.calls  # the weakly typed flag: never
    assert (("clear_flag", "TF32") in fake_trt.calls) == (not fp16)
    assert engine.read_bytes() == b"PLAN-BYTES"  # a raw plan: trtexec --loadEngine reads it as it is


def test_without_the_plugins_the_parser_fails_as_tensorrt_does(deployed: Deployed, fake_trt,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    """The fake reproduces the first-run failure, so the test above can fail."""
    monkeypatch.setattr(fake_trt, "init_libnvinfer_plugins", lambda logger, namespace: True)
    with pytest.raises(PlugrcnnError, match="ROIAlign plugin was not found"):
        _build(deployed, tmp_path / "model.engine")
    assert not (tmp_path / "model.engine").exists()


def test_sidecar_describes_the_plan(deployed: Deployed, fake_trt, tmp_path: Path) -> None:
    engine = tmp_path / "model.engine"
    _build(deployed, engine)
    sidecar = json.loads(sidecar_path(engine).read_text())
    spec = deployed.spec
    assert sidecar["plan"] == "model.engine" and sidecar["tensorrt_version"] == "10.99.0"
    assert sidecar["gpu"] == GPU
    assert sidecar["input_size"] == [spec.height, spec.width] and sidecar["max_detections"] == 40
    assert sidecar["heads"] == list(spec.heads)
    assert [i["name"] for i in sidecar["inputs"]] == ["images"]
    assert sidecar["inputs"][0]["shape"] == [1, 3, spec.height, spec.width] and sidecar["inputs"][0]["dtype"] == "uint8"
    outputs = {o["name"]: o for o in sidecar["outputs"]}
    assert tuple(outputs) == spec.outputs
    assert outputs["boxes"]["shape"] == [1, 40, 4] and outputs["classes"]["dtype"] == "int32"
    assert "padding" in outputs["valid_count"]["meaning"]
    read_spec, plan = read_engine_file(engine)
    assert plan == b"PLAN-BYTES" and read_spec.outputs == spec.outputs
    assert read_spec.extra["tensorrt"] == "10.99.0" and read_spec.extra["gpu"] == "Fake GPU"


def test_a_rejected_timing_cache_is_replaced_by_an_empty_one(deployed: Deployed, fake_trt, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    engine = tmp_path / "model.engine"
    (tmp_path / "model.engine.timing").write_bytes(b"OLD-CACHE")
    _build(deployed, engine)
    results = [(c[1], c[3]) for c in fake_trt.calls if c[0] == "set_timing_cache"]
    assert results == [(b"OLD-CACHE", False), (b"", True)]
    assert "model.engine.timing is from another TensorRT or GPU" in capsys.readouterr().err
    assert (tmp_path / "model.engine.timing").read_bytes() == b"TIMING:"


def test_engine_cache_reuses_a_plan_for_the_same_graph_tensorrt_and_gpu(deployed: Deployed, fake_trt,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _build(deployed, tmp_path / "a.engine", cache=cache)
    _build(deployed, tmp_path / "b.engine", cache=cache)
    assert call_names(fake_trt).count("build_serialized_network") == 1
    assert (tmp_path / "b.engine").read_bytes() == b"PLAN-BYTES" and len(list(cache.iterdir())) == 1
    monkeypatch.setattr(tensorrt_build, "gpu_identity", lambda: {**GPU, "name": "Other GPU"})
    _build(deployed, tmp_path / "c.engine", cache=cache)  # another GPU: another key, a new build
    assert call_names(fake_trt).count("build_serialized_network") == 2 and len(list(cache.iterdir())) == 2


def test_deserializing_registers_plugins_first(fake_trt, tmp_path: Path) -> None:
    engine, runtime, logger = deserialize_engine(fake_trt, b"PLAN-BYTES", tmp_path / "x.engine")
    names = call_names(fake_trt)
    assert engine is not None and runtime is not None
    assert names.index("init_libnvinfer_plugins") < names.index("deserialize_cuda_engine")


def test_an_engine_without_its_sidecar_is_refused_naming_it(tmp_path: Path) -> None:
    plan = tmp_path / "model.engine"
    plan.write_bytes(b"PLAN-BYTES")
    with pytest.raises(PlugrcnnError, match="model.engine: no sidecar model.engine.json"):
        read_engine_file(plan)
    sidecar_path(plan).write_text('{"format": "something else"}')
    with pytest.raises(PlugrcnnError, match="not a plugrcnn TensorRT sidecar"):
        read_engine_file(plan)


def test_an_index_less_cuda_device_means_the_current_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    assert cuda_device(torch.device("cuda")) == torch.device("cuda", 3)
    assert cuda_device(torch.device("cuda:1")) == torch.device("cuda", 1)
    with pytest.raises(PlugrcnnError, match="needs a CUDA device"):
        cuda_device(torch.device("cpu"))


@pytest.fixture
def tf32_on():  # type: ignore[no-untyped-def]
    """TF32 allowed (cuDNN's default), whatever the test did, restored afterwards. (torch's cuBLAS
    settings object is a proxy that monkeypatch cannot restore.)"""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_tf32_is_off_inside_and_restored_after(tf32_on) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError, match="boom"), tf32_disabled():
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        raise RuntimeError("boom")
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32


def test_verify_runs_the_reference_with_tf32_off(deployed: Deployed, monkeypatch: pytest.MonkeyPatch,
                                                 tf32_on) -> None:  # type: ignore[no-untyped-def]
    model = deployed.model
    seen: list[bool] = []
    predict = model.predict

    def recording_predict(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32)
        return predict(*args, **kwargs)

    monkeypatch.setattr(model, "predict", recording_predict)
    runtime = load_runtime("onnxruntime", model, model_path=deployed.onnx, device=torch.device("cpu"))
    verify_export(model, runtime, make_images(1, seed=3), fp16=False)
    assert seen == [False] and torch.backends.cudnn.allow_tf32
