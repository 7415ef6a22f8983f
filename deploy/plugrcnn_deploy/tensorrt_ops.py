"""Does the TensorRT ONNX parser take this graph? Checked against data/tensorrt_onnx_ops.json.

The list is the parser's own support matrix (its source and TensorRT version are in the file), so a
graph that fails here fails the same way in ``trtexec``, only later and on a GPU machine. Checked:
every node's op (default domain only), the opset range, and TopK's constant K < 3840 and sorted=1.
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

OPS_FILE = Path(__file__).parent / "data" / "tensorrt_onnx_ops.json"
TOPK_LIMIT = 3840


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


def tensorrt_op_problems(model: onnx.ModelProto, support: TensorRTOpSupport | None = None) -> list[str]:
    """One line per node (or opset) the TensorRT parser would reject; empty when it takes all."""
    support = support or load_op_support()
    problems = []
    opset = _default_opset(model)
    if not support.opset_min <= opset <= support.opset_max:
        problems.append(f"opset {opset} is outside TensorRT {support.tensorrt_version}'s "
                        f"{support.opset_min}..{support.opset_max}")
    constants = _constants(model.graph)
    for node in model.graph.node:
        where = f"node '{node.name or node.output[0]}'"
        if node.domain not in ("", "ai.onnx") or node.op_type not in support.ops:
            op = f"{node.domain}::{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
            problems.append(f"op {op} ({where}) is not supported by the TensorRT "
                            f"{support.tensorrt_version} ONNX parser")
        elif node.op_type == "TopK":
            problems.extend(_topk_problems(node, constants, where))
    return problems


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
