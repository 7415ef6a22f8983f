"""DeployGraph -> ONNX file: export, let plugins edit the graph, check it, write it atomically.

torch.onnx's TorchScript-based exporter is used (``dynamo=False``): it writes torchvision's
RoiAlign with its ``sampling_ratio`` and ``coordinate_transformation_mode`` attributes (opset 16+),
without extra dependencies. The traced graph's shape chains are then folded (graph/onnx_static.py), so
the written file is fully static: every tensor has a fixed shape after ONNX shape inference and no
op has a data-dependent output shape (NMS is a fixed-size matrix computation, graph/static_ops.py). The
DeploySpec goes into the model's metadata under ``plugrcnn``.
"""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import onnx
import torch

from plugrcnn.errors import PlugrcnnError
from plugrcnn_deploy.formats.files import atomic_output
from plugrcnn_deploy.formats.spec import INPUT_NAME, DeploySpec
from plugrcnn_deploy.formats.tensorrt_ops import check_tensorrt_ops
from plugrcnn_deploy.graph.deploy_graph import DeployGraph
from plugrcnn_deploy.graph.onnx_static import fold_static_shapes, static_problems

MIN_OPSET = 17  # RoiAlign-16 has coordinate_transformation_mode; LayerNorm etc. at 17
MAX_OPSET = 20  # the newest opset torch.onnx.export (TorchScript exporter) writes
METADATA_KEY = "plugrcnn"


def trace_to_onnx(graph: DeployGraph, path: Path, opset: int) -> None:
    spec = graph.spec
    example = torch.zeros(spec.input_shape, dtype=getattr(torch, spec.input_dtype),
                          device=next(graph.parameters()).device)
    with warnings.catch_warnings(), torch.no_grad():
        # the tracer warns about every Python int taken from a shape: shapes are static here
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (example,), str(path), dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=list(spec.outputs),
                          do_constant_folding=True)


def check_onnx_model(model: onnx.ModelProto, where: str) -> None:
    """onnx.checker, opset >= 17, RoiAlign attributes written out, a fully static graph, TensorRT
    parser support (ops and their input limits)."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise PlugrcnnError(f"{where}: onnx.checker rejects the graph: {str(exc).splitlines()[0]}") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < MIN_OPSET:
        raise PlugrcnnError(f"{where}: opset {opset} < {MIN_OPSET}; RoiAlign needs its coordinate mode")
    for node in model.graph.node:
        if node.op_type == "RoiAlign":
            attrs = {a.name for a in node.attribute}
            missing = {"sampling_ratio", "coordinate_transformation_mode"} - attrs
            if missing:
                raise PlugrcnnError(f"{where}: RoiAlign node '{node.name}' leaves {sorted(missing)} to "
                                    f"the runtime's default; they must be written out")
    problems = static_problems(model)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PlugrcnnError(f"{where}: the graph is not static: {problems[0]}{more}")
    check_tensorrt_ops(model, where)


def export_onnx(graph: DeployGraph, output: Path, *, config: Any, pm: Any = None,
                opset: int = MIN_OPSET) -> DeploySpec:
    """Write `graph` to `output` (.onnx); returns the spec stored in it."""
    if opset < MIN_OPSET:
        raise PlugrcnnError(f"export: --opset must be >= {MIN_OPSET}, got {opset}")
    spec = graph.spec.with_extra(opset=opset)
    with tempfile.TemporaryDirectory(prefix="plugrcnn-onnx-") as tmp:
        traced = Path(tmp) / "graph.onnx"
        trace_to_onnx(graph, traced, opset)
        model = onnx.load(str(traced))
    if pm is not None:
        pm.hook.plugrcnn_modify_onnx_graph(model_proto=model, config=config)
    model, _ = fold_static_shapes(model)
    check_onnx_model(model, str(output))
    onnx.helper.set_model_props(model, {METADATA_KEY: spec.to_json()})
    with atomic_output(output) as tmp_path:
        onnx.save(model, str(tmp_path))
    return spec


def read_onnx_spec(path: Path) -> DeploySpec:
    """The DeploySpec stored in a plugrcnn ONNX file (without loading the weights)."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise PlugrcnnError(f"{path}: not an ONNX model ({type(exc).__name__}); the onnxruntime "
                            f"backend needs a file from `plugrcnn export --format onnx`") from None
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        raise PlugrcnnError(f"{path}: ONNX model without plugrcnn metadata; export it with "
                            f"`plugrcnn export --format onnx`")
    return DeploySpec.from_json(props[METADATA_KEY], str(path))
