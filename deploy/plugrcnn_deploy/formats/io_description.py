"""What an exported model's inputs and outputs are: names, shapes, dtypes and meanings.

Read from the ONNX graph itself (the written file, or the one a TensorRT engine is built from), so
the TensorRT sidecar JSON and Triton's config.pbtxt name exactly the tensors the model has.
"""
from __future__ import annotations

from typing import Any

import onnx

from plugrcnn_deploy.formats.spec import INPUT_NAME, DeploySpec

# ONNX elem type -> (numpy-style name, Triton data type)
_DTYPES = {
    onnx.TensorProto.FLOAT: ("float32", "TYPE_FP32"),
    onnx.TensorProto.FLOAT16: ("float16", "TYPE_FP16"),
    onnx.TensorProto.INT32: ("int32", "TYPE_INT32"),
    onnx.TensorProto.INT64: ("int64", "TYPE_INT64"),
    onnx.TensorProto.UINT8: ("uint8", "TYPE_UINT8"),
    onnx.TensorProto.INT8: ("int8", "TYPE_INT8"),
    onnx.TensorProto.BOOL: ("bool", "TYPE_BOOL"),
}
TRITON_DTYPE = {numpy_name: triton for numpy_name, triton in _DTYPES.values()}


def meaning(name: str, spec: DeploySpec) -> str:
    """One line saying what a tensor holds (head outputs name their head and key)."""
    n, k = spec.batch, spec.max_detections
    core = {
        INPUT_NAME: (f"({n}, 3, {spec.height}, {spec.width}) RGB, "
                     + ("uint8 in [0, 255]" if spec.input_dtype == "uint8" else "float32 in [0, 1]")
                     + "; frames of another size are letterboxed to the top-left corner"),
        "boxes": f"({n}, {k}, 4) XYXY boxes in input pixels",
        "scores": f"({n}, {k}) detection scores, best first",
        "classes": f"({n}, {k}) labels in 1..num_classes",
        "valid_count": f"({n},) rows [0, valid_count) of every per-detection output are detections; "
                       f"the rest is padding",
    }
    if name in core:
        return core[name]
    head, _, key = name.partition(".")
    return f"head '{head}': Head.export_outputs()['{key}'], one row per detection slot"


def _tensor(value: onnx.ValueInfoProto, spec: DeploySpec) -> dict[str, Any]:
    tensor_type = value.type.tensor_type
    dtype = _DTYPES.get(tensor_type.elem_type, (onnx.TensorProto.DataType.Name(tensor_type.elem_type).lower(), ""))[0]
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]
    return {"name": value.name, "shape": dims, "dtype": dtype, "meaning": meaning(value.name, spec)}


def describe_io(model: onnx.ModelProto, spec: DeploySpec) -> dict[str, list[dict[str, Any]]]:
    """{"inputs": [...], "outputs": [...]}: name, shape, dtype, meaning of every graph tensor."""
    initializers = {init.name for init in model.graph.initializer}
    return {"inputs": [_tensor(v, spec) for v in model.graph.input if v.name not in initializers],
            "outputs": [_tensor(v, spec) for v in model.graph.output]}
