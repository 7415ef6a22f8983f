"""Export formats behind one registry, as the runtimes are (`plugrcnn_deploy.runtimes.BACKENDS`).

A format is an `ExportFormat` record: its name (``plugrcnn export --format NAME``; the CLI's
choices come from this registry), the runtime backend that runs the written file (for
``--verify``), and ``"module:function"`` references to the writer and, optionally, to what
describes the written file's inputs and outputs (Triton entries) and what it writes beside it.
References are imported on use, so a missing TensorRT only matters to its users.

A new format is one `register_export_format(ExportFormat(...))` call in the module that
implements it (imported before the CLI parses arguments) and needs no edit of the CLI:

    writer(model, spec, output, *, config, pm, opset, engine_cache) -> DeploySpec
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from plugrcnn.errors import PlugrcnnError


@dataclass(frozen=True)
class ExportFormat:
    name: str                     # --format NAME
    runtime: str                  # the backend in plugrcnn_deploy.runtimes.BACKENDS that runs it
    writer: str                   # "module:function" (see the module docstring)
    suffix: str                   # the usual file suffix, for help texts
    io_of: str | None = None      # "module:function" (path, spec) -> {"inputs": [...], "outputs": [...]}
    notes: str | None = None      # "module:function" (path) -> lines about files written beside it
    # Triton's (platform, model file name) when Triton serves the format (--triton), else None
    triton: tuple[str, str] | None = None
    description: str = ""

    def load(self, attribute: str) -> Callable[..., Any]:
        reference = getattr(self, attribute)
        module_name, function_name = reference.split(":")
        return getattr(importlib.import_module(module_name), function_name)


EXPORT_FORMATS: dict[str, ExportFormat] = {}


def register_export_format(record: ExportFormat) -> None:
    if record.name in EXPORT_FORMATS and EXPORT_FORMATS[record.name] != record:
        raise PlugrcnnError(f"export format '{record.name}' is registered twice "
                            f"({EXPORT_FORMATS[record.name].writer} and {record.writer})")
    EXPORT_FORMATS[record.name] = record


def export_format(name: str) -> ExportFormat:
    if name not in EXPORT_FORMATS:
        raise PlugrcnnError(f"export: unknown format '{name}'; use one of {', '.join(EXPORT_FORMATS)}")
    return EXPORT_FORMATS[name]


_ONNX_IO = "plugrcnn_deploy.formats.writers:onnx_io"
for _record in (
    ExportFormat("onnx", runtime="onnxruntime", writer="plugrcnn_deploy.formats.writers:write_onnx",
                 suffix=".onnx", io_of=_ONNX_IO,
                 triton=("onnxruntime_onnx", "model.onnx"), description="ONNX graph (onnxruntime)"),
    ExportFormat("tensorrt", runtime="tensorrt", writer="plugrcnn_deploy.formats.writers:write_tensorrt",
                 suffix=".engine", io_of="plugrcnn_deploy.formats.writers:tensorrt_io",
                 notes="plugrcnn_deploy.formats.writers:tensorrt_notes",
                 triton=("tensorrt_plan", "model.plan"),
                 description="TensorRT plan + JSON sidecar (CUDA)"),
    ExportFormat("aoti", runtime="aoti", writer="plugrcnn_deploy.formats.writers:write_aoti",
                 suffix=".pt2", description="AOTInductor package"),
):
    register_export_format(_record)

__all__ = ["EXPORT_FORMATS", "ExportFormat", "export_format", "register_export_format"]
