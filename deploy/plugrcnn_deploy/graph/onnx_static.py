"""Make a traced ONNX graph fully static, and check that it is.

The TorchScript tracer records every ``tensor.shape`` it sees as ``Shape -> Gather -> ...`` chains,
which torch's own constant folding leaves in place: ONNX shape inference then cannot give the
tensors after them a size (776 of 2763 tensors of the ResNet-18 test model had a symbolic
dimension). The input size is fixed at export, so every such chain is a constant:

``fold_static_shapes`` repeats, until nothing changes: shape inference (with data propagation),
replace each ``Shape``/``Size`` of a fully known tensor by its value, and evaluate every node whose
inputs are all constants (onnx's reference evaluator) when its result is small
(``FOLD_MAX_ELEMENTS``). Then unused nodes and constants are dropped and every ``Constant`` node
becomes an initializer (TensorRT's parser wants e.g. ``Range``'s limits as initializers).

``static_problems`` lists what keeps a graph from being static: a tensor with an unknown or
symbolic dimension after shape inference, or an op whose output shape depends on data.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

FOLD_MAX_ELEMENTS = 1 << 16  # a folded result larger than this stays a node (the file stays small)
MAX_PASSES = 20
# ops whose output shape depends on the input values whatever their inputs are
DATA_DEPENDENT_OPS = frozenset({"NonMaxSuppression", "NonZero", "Unique", "Compress", "Loop", "If", "Scan"})
# ops never folded: random, or with subgraphs
_NOT_FOLDABLE = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
                           "Multinomial", "Bernoulli", "Loop", "If", "Scan"})


def _dims(value: onnx.ValueInfoProto) -> list[int | None] | None:
    """Static dims of a value (None for an unknown dim), or None when the rank is unknown."""
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]


def _known_shapes(model: onnx.ModelProto) -> dict[str, list[int | None] | None]:
    graph = model.graph
    shapes = {v.name: _dims(v) for v in (*graph.input, *graph.value_info, *graph.output)}
    shapes.update({init.name: list(init.dims) for init in graph.initializer})
    return shapes


def _constant_value(node: onnx.NodeProto) -> np.ndarray | None:
    """The value of a Constant node (None for a form we do not read, e.g. a sparse tensor)."""
    attr = node.attribute[0] if len(node.attribute) == 1 else None
    if attr is None:
        return None
    if attr.name == "value":
        return numpy_helper.to_array(attr.t)
    simple = {"value_float": (attr.f, np.float32), "value_int": (attr.i, np.int64),
              "value_floats": (list(attr.floats), np.float32), "value_ints": (list(attr.ints), np.int64)}
    if attr.name in simple:
        value, dtype = simple[attr.name]
        return np.array(value, dtype=dtype)
    return None


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in graph.initializer}


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)


def _shape_value(node: onnx.NodeProto, shape: list[int | None] | None) -> np.ndarray | None:
    if shape is None or any(d is None for d in shape):
        return None
    if node.op_type == "Size":
        return np.array(int(np.prod(shape, dtype=np.int64)), dtype=np.int64)
    attrs = {a.name: a.i for a in node.attribute}
    rank = len(shape)
    start, end = attrs.get("start", 0), attrs.get("end", rank)
    start = max(0, min(rank, start + rank if start < 0 else start))
    end = max(0, min(rank, end + rank if end < 0 else end))
    return np.array(shape[start:end], dtype=np.int64)


def _evaluate(node: onnx.NodeProto, constants: dict[str, np.ndarray], opset: int) -> list[np.ndarray] | None:
    if node.op_type in _NOT_FOLDABLE or node.domain not in ("", "ai.onnx"):
        return None
    if not all(name == "" or name in constants for name in node.input):
        return None
    try:
        evaluator = ReferenceEvaluator(node, opsets={"": opset})
        outputs = evaluator.run(None, {name: constants[name] for name in node.input if name})
    except Exception:  # noqa: BLE001 - an op the reference cannot run is simply not folded
        return None
    arrays = [np.asarray(out) for out in outputs]
    if any(a.dtype == object or a.size > FOLD_MAX_ELEMENTS for a in arrays):
        return None
    return arrays


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    graph = model.graph
    return {v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.value_info, *graph.output)}


def _fold_pass(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes = _known_shapes(inferred)
    types = _elem_types(inferred)
    graph = model.graph
    constants = _constants(graph)
    graph_outputs = {o.name for o in graph.output}
    opset = _opset(model)
    kept: list[onnx.NodeProto] = []
    new_initializers: list[onnx.TensorProto] = []
    folded = 0
    for node in graph.node:
        values: list[np.ndarray] | None = None
        if graph_outputs.intersection(node.output):
            values = None
        elif node.op_type in ("Shape", "Size") and node.domain in ("", "ai.onnx"):
            value = _shape_value(node, shapes.get(node.input[0]))
            values = None if value is None else [value]
        else:
            values = _evaluate(node, constants, opset)
        if values is not None and not _types_agree(node, values, types):
            values = None  # the reference evaluator's dtype differs from the graph's: keep the node
        if values is None:
            kept.append(node)
            continue
        folded += 1
        for name, value in zip(node.output, values):
            if name:
                constants[name] = value
                new_initializers.append(numpy_helper.from_array(value, name))
    del graph.node[:]
    graph.node.extend(kept)
    graph.initializer.extend(new_initializers)
    return model, folded


def _types_agree(node: onnx.NodeProto, values: list[np.ndarray], types: dict[str, int]) -> bool:
    for name, value in zip(node.output, values):
        expected = types.get(name, 0)
        if name and expected and numpy_helper.from_array(value).data_type != expected:
            return False
    return True


def _constants_to_initializers(graph: onnx.GraphProto) -> None:
    """Every readable Constant node becomes an initializer of the same name."""
    kept = []
    for node in graph.node:
        value = _constant_value(node) if node.op_type == "Constant" and node.domain in ("", "ai.onnx") else None
        if value is None:
            kept.append(node)
        else:
            graph.initializer.append(numpy_helper.from_array(value, node.output[0]))
    del graph.node[:]
    graph.node.extend(kept)


def _drop_unused(graph: onnx.GraphProto) -> None:
    """Remove nodes and initializers no graph output depends on (walk back from the outputs)."""
    needed = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    initializers = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    value_info = [v for v in graph.value_info if v.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(value_info)


def fold_static_shapes(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Fold shape chains and constant subgraphs in place; returns the model and the nodes folded."""
    total = 0
    _constants_to_initializers(model.graph)
    for _ in range(MAX_PASSES):
        model, folded = _fold_pass(model)
        _drop_unused(model.graph)
        total += folded
        if not folded:
            break
    _constants_to_initializers(model.graph)
    _drop_unused(model.graph)
    # keep the inferred shapes in the file: TensorRT and tools read them
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    del model.graph.value_info[:]
    model.graph.value_info.extend(inferred.graph.value_info)
    return model, total


def static_problems(model: onnx.ModelProto) -> list[str]:
    """One line per tensor with a symbolic or unknown dimension after shape inference, and per
    node whose output shape depends on data; empty when the graph is fully static."""
    problems = [f"op {node.op_type} (node '{node.name or node.output[0]}') has a data-dependent output shape"
                for node in model.graph.node if node.op_type in DATA_DEPENDENT_OPS]
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    graph = inferred.graph
    produced = {name for node in graph.node for name in node.output if name}
    values: dict[str, Any] = {v.name: v for v in (*graph.input, *graph.value_info, *graph.output)}
    for name in sorted(produced | {v.name for v in graph.input}):
        value = values.get(name)
        dims = _dims(value) if value is not None else None
        if dims is None or any(d is None for d in dims):
            shown = "unknown rank" if dims is None else str(
                [d if d is not None else "?" for d in dims])
            problems.append(f"tensor '{name}' has no static shape after ONNX shape inference ({shown})")
    return problems
