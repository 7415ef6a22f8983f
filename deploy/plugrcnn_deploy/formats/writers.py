"""The writers of the built-in export formats (registered in `plugrcnn_deploy.formats.registry`)."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from plugrcnn.errors import PlugrcnnError
from plugrcnn.modeling.detector import TwoStageDetector
from plugrcnn_deploy.graph.deploy_graph import DeployGraph
from plugrcnn_deploy.formats.spec import DeploySpec


def build_graph(model: TwoStageDetector, spec: DeploySpec) -> DeployGraph:
    """The deploy graph of `model` (fp16 graphs hold half copies of its modules)."""
    return DeployGraph(model.eval(), spec)


def write_onnx(model: TwoStageDetector, spec: DeploySpec, output: Path, *, config: Any = None,
               pm: Any = None, opset: int = 17, engine_cache: Path | None = None) -> DeploySpec:
    from plugrcnn_deploy.formats.onnx_export import export_onnx

    return export_onnx(build_graph(model, spec), output, config=config, pm=pm, opset=opset)


def write_aoti(model: TwoStageDetector, spec: DeploySpec, output: Path, *, config: Any = None,
               pm: Any = None, opset: int = 17, engine_cache: Path | None = None) -> DeploySpec:
    from plugrcnn_deploy.formats.aoti import export_aoti

    return export_aoti(build_graph(model, spec), output)


def write_tensorrt(model: TwoStageDetector, spec: DeploySpec, output: Path, *, config: Any = None,
                   pm: Any = None, opset: int = 17, engine_cache: Path | None = None) -> DeploySpec:
    from plugrcnn_deploy.formats.onnx_export import export_onnx
    from plugrcnn_deploy.formats.tensorrt_build import build_engine, import_tensorrt

    import_tensorrt()  # fail before the export work when TensorRT is missing
    if model.device.type != "cuda":
        raise PlugrcnnError("export: TensorRT engines are built on a CUDA device; use --device cuda")
    with tempfile.TemporaryDirectory(prefix="plugrcnn-trt-") as tmp:
        onnx_path = Path(tmp) / "graph.onnx"
        # strongly typed network: with --fp16 the ONNX file itself holds the fp16 layers
        onnx_spec = export_onnx(build_graph(model, spec), onnx_path, config=config, pm=pm, opset=opset)
        return build_engine(onnx_path, output, onnx_spec, fp16=spec.fp16, config=config, pm=pm,
                            engine_cache=engine_cache)


def onnx_io(path: Path, spec: DeploySpec) -> dict[str, Any]:
    """Inputs and outputs (name, shape, dtype, meaning) of a written ONNX file."""
    import onnx

    from plugrcnn_deploy.formats.io_description import describe_io

    return describe_io(onnx.load(str(path), load_external_data=False), spec)


def tensorrt_io(path: Path, spec: DeploySpec) -> dict[str, Any]:
    from plugrcnn_deploy.formats.tensorrt_build import read_sidecar

    sidecar = read_sidecar(path)
    return {"inputs": sidecar["inputs"], "outputs": sidecar["outputs"]}


def tensorrt_notes(path: Path) -> list[str]:
    from plugrcnn_deploy.formats.tensorrt_build import sidecar_path

    return [f"wrote {sidecar_path(path)} (what the plan holds; `trtexec --loadEngine={path}` loads the plan)"]
