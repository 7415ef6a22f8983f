"""Does the TensorRT ONNX parser take this graph? Checked against data/tensorrt_onnx_ops.json.

The list is the parser's own support matrix (its source and TensorRT version are in the file), so a
graph that fails here fails the same way in ``trtexec``, only later and on a GPU machine. Checked:
every node's op (default domain only), the opset range, and the inputs' limits where TensorRT has
them: TopK's constant K < 3840 and sorted=1; NonMaxSuppression's candidates per image (the boxes'
second dimension, from ONNX shape inference) <= 5000, the INMSLayer TopK box limit (2000 on SM 5.3
and 6.2: ``nms_limit``); ``Range`` with float inputs needs constant (initializer) limits.
plugrcnn's own graphs have no NonMaxSuppression (graph/static_ops.py): the NMS check is for graphs a
plugin edits through ``plugrcnn_modify_onnx_graph``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import onnx
from onnx import numpy_helper

from plugrcnn.errors import PlugrcnnError

OPS_FILE = Path(__file__).parents[1] / "data" / "tensorrt_onnx_ops.json"
TOPK_LIMIT = 3840
NMS_BOX_LIMIT = 5000  # INMSLayer: boxes considered per image; 2000 on SM 5.3 / 6.2


@dataclass(frozen=True)
class TensorRTOpSupport:
    tensorrt_version: str
    source: str
    opset_min: int
    opset_max: int
    ops: frozenset[str]


@lru_cache(maxsize=1)
def load_op_support(path: Path = OPS_FILE) -> TensorRTOpSupport:
    data: dict[str, Any] = json.loads(path.read_text())
    return TensorRTOpSupport(tensorrt_version=data["tensorrt_version"], source=data["source"],
                             opset_min=int(data["opset_min"]), opset_max=int(data["opset_max"]),
                             ops=frozenset(data["ops"]))


def _constants(graph: onnx.GraphProto) -> dict[str, Any]:
    """Tensor name -> numpy value for initializers and Constant node outputs."""
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _default_opset(model: onnx.ModelProto) -> int:
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            return int(opset.version)
    return 0


def _shapes_and_types(model: onnx.ModelProto) -> tuple[dict[str, list[int | None]], dict[str, int]]:
    """Tensor name -> dims (None where unknown) and elem type, after ONNX shape inference."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - a graph shape inference rejects: limits read as unknown
        inferred = model
    shapes, types = {}, {}
    graph = inferred.graph
    for value in (*graph.input, *graph.value_info, *graph.output):
        tensor_type = value.type.tensor_type
        types[value.name] = tensor_type.elem_type
        if tensor_type.HasField("shape"):
            shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    for init in graph.initializer:
        shapes[init.name], types[init.name] = list(init.dims), init.data_type
    return shapes, types


def tensorrt_op_problems(model: onnx.ModelProto, support: TensorRTOpSupport | None = None,
                         nms_limit: int = NMS_BOX_LIMIT) -> list[str]:
    """One line per node (or opset) the TensorRT parser would reject; empty when it takes all."""
    support = support or load_op_support()
    problems = []
    opset = _default_opset(model)
    if not support.opset_min <= opset <= support.opset_max:
        problems.append(f"opset {opset} is outside TensorRT {support.tensorrt_version}'s "
                        f"{support.opset_min}..{support.opset_max}")
    constants = _constants(model.graph)
    shapes, types = _shapes_and_types(model)
    for node in model.graph.node:
        where = f"node '{node.name or node.output[0]}'"
        if node.domain not in ("", "ai.onnx") or node.op_type not in support.ops:
            op = f"{node.domain}::{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
            problems.append(f"op {op} ({where}) is not supported by the TensorRT "
                            f"{support.tensorrt_version} ONNX parser")
        elif node.op_type == "TopK":
            problems.extend(_topk_problems(node, constants, where))
        elif node.op_type == "NonMaxSuppression":
            problems.extend(_nms_problems(node, shapes, where, nms_limit))
        elif node.op_type == "Range":
            problems.extend(_range_problems(node, constants, types, where))
    return problems


def _nms_problems(node: onnx.NodeProto, shapes: dict[str, list[int | None]], where: str, limit: int) -> list[str]:
    """boxes (N, T, 4): TensorRT's INMSLayer considers at most `limit` boxes per image."""
    dims = shapes.get(node.input[0])
    count = dims[1] if dims is not None and len(dims) == 3 else None
    if count is None:
        return [f"op NonMaxSuppression ({where}) has a candidate count unknown at build time; TensorRT "
                f"considers at most {limit} boxes per image"]
    if count > limit:
        return [f"op NonMaxSuppression ({where}) sees {count} candidate boxes per image; TensorRT's NMS "
                f"considers at most {limit} (TopK box limit)"]
    return []


def _range_problems(node: onnx.NodeProto, constants: dict[str, Any], types: dict[str, int],
                    where: str) -> list[str]:
    """The parser takes a float Range only when start, limit and delta are initializers."""
    is_float = types.get(node.output[0]) in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16,
                                             onnx.TensorProto.DOUBLE)
    if is_float and not all(name in constants for name in node.input):
        return [f"op Range ({where}) has float inputs that are not initializers; TensorRT needs them constant"]
    return []


def _topk_problems(node: onnx.NodeProto, constants: dict[str, Any], where: str) -> list[str]:
    problems = []
    sorted_attr = next((a.i for a in node.attribute if a.name == "sorted"), 1)
    if sorted_attr != 1:
        problems.append(f"op TopK ({where}) has sorted=0; TensorRT needs sorted=1")
    k = constants.get(node.input[1]) if len(node.input) > 1 else None
    if k is None:
        problems.append(f"op TopK ({where}) has a K that is not a build-time constant")
    elif int(k.reshape(-1)[0]) >= TOPK_LIMIT:
        problems.append(f"op TopK ({where}) has K={int(k.reshape(-1)[0])}; TensorRT needs K < {TOPK_LIMIT}")
    return problems


def check_tensorrt_ops(model: onnx.ModelProto, where: str) -> None:
    """Raise naming the first op TensorRT's parser rejects (and how many more there are)."""
    problems = tensorrt_op_problems(model)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise PlugrcnnError(f"{where}: {problems[0]}{more}; see {OPS_FILE.name} for the list")
