"""A Triton Inference Server model repository entry for an exported model.

    DIR/<name>/config.pbtxt
    DIR/<name>/1/model.onnx    (platform onnxruntime_onnx)   or
    DIR/<name>/1/model.plan    (platform tensorrt_plan)

The batch dimension is part of every tensor (the graph has a fixed batch), so ``max_batch_size`` is
0 and ``dims`` are the full shapes. Inputs and outputs are the model's own (io_description.py),
with their dtypes; each carries its meaning as a comment.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from plugrcnn.errors import PlugrcnnError
from plugrcnn_deploy.formats.registry import EXPORT_FORMATS
from plugrcnn_deploy.formats.files import atomic_output
from plugrcnn_deploy.formats.io_description import TRITON_DTYPE



def _platform(fmt: str) -> tuple[str, str]:
    """(Triton platform, model file name) of an export format (`ExportFormat.triton`)."""
    record = EXPORT_FORMATS.get(fmt)
    if record is None or record.triton is None:
        served = " or ".join(name for name, f in EXPORT_FORMATS.items() if f.triton)
        raise PlugrcnnError(f"--triton: format '{fmt}' has no Triton backend here; use {served}")
    return record.triton


def model_name(path: Path) -> str:
    """Triton model names: the file's stem, with anything but [A-Za-z0-9_-] replaced by '_'."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", path.stem) or "plugrcnn"


def _tensor_block(tensor: dict[str, Any]) -> str:
    dtype = TRITON_DTYPE.get(tensor["dtype"])
    if dtype is None:
        raise PlugrcnnError(f"triton: tensor '{tensor['name']}' has dtype {tensor['dtype']}, which Triton "
                            f"has no type for")
    dims = ", ".join(str(d) for d in tensor["shape"])
    return (f"  {{\n    # {tensor['meaning']}\n    name: \"{tensor['name']}\"\n    data_type: {dtype}\n"
            f"    dims: [ {dims} ]\n  }}")


def config_pbtxt(name: str, fmt: str, io: dict[str, list[dict[str, Any]]]) -> str:
    platform, filename = _platform(fmt)
    inputs = ",\n".join(_tensor_block(t) for t in io["inputs"])
    outputs = ",\n".join(_tensor_block(t) for t in io["outputs"])
    return (f"# written by `plugrcnn export --triton`\nname: \"{name}\"\nplatform: \"{platform}\"\n"
            f"default_model_filename: \"{filename}\"\nmax_batch_size: 0\n"
            f"input [\n{inputs}\n]\noutput [\n{outputs}\n]\n")


def write_triton_entry(repository: Path, model_file: Path, fmt: str, io: dict[str, list[dict[str, Any]]],
                       version: int = 1) -> Path:
    """Copy `model_file` into `repository`/<name>/<version>/ and write config.pbtxt; returns the
    entry's folder."""
    filename = _platform(fmt)[1]
    if repository.exists() and not repository.is_dir():
        raise PlugrcnnError(f"{repository}: --triton needs a folder (the model repository)")
    name = model_name(model_file)
    entry = repository / name
    with atomic_output(entry / str(version) / filename) as tmp:
        shutil.copyfile(model_file, tmp)
    with atomic_output(entry / "config.pbtxt") as tmp:
        tmp.write_text(config_pbtxt(name, fmt, io))
    return entry
