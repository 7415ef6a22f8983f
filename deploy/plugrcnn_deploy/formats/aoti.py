"""AOTInductor: DeployGraph -> torch.export -> a compiled .pt2 package, and loading it back.

The package holds the DeploySpec in its metadata (``plugrcnn``), like the ONNX and TensorRT files.
It is compiled for one device type (the one the graph was on); torchvision's NMS and RoIAlign run
as extern kernels, so the process that loads it must import torchvision (plugrcnn does).
"""
from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from plugrcnn.errors import PlugrcnnError
from plugrcnn_deploy.formats.files import atomic_output
from plugrcnn_deploy.formats.spec import DeploySpec
from plugrcnn_deploy.graph.deploy_graph import DeployGraph

METADATA_KEY = "plugrcnn"


def export_aoti(graph: DeployGraph, output: Path) -> DeploySpec:
    """Compile `graph` (on its device) into the AOTInductor package `output` (.pt2)."""
    if output.suffix != ".pt2":
        raise PlugrcnnError(f"{output}: an AOTInductor package must end in .pt2")
    device = next(graph.parameters()).device
    spec = graph.spec.with_extra(device=device.type, torch=torch.__version__)
    example = torch.zeros(spec.input_shape, dtype=getattr(torch, spec.input_dtype), device=device)
    with torch.no_grad(), warnings.catch_warnings():
        # torchvision's NMS meta kernel calls an API torch renamed; nothing for users to act on
        warnings.filterwarnings("ignore", message=".*create_unbacked_symint", category=FutureWarning)
        exported = torch.export.export(graph, (example,), strict=False)
        with atomic_output(output) as tmp:
            torch._inductor.aoti_compile_and_package(
                exported, package_path=str(tmp),
                inductor_configs={"aot_inductor.metadata": {METADATA_KEY: spec.to_json()}})
    return spec


def load_aoti(path: Path, device: torch.device) -> tuple[Any, DeploySpec]:
    """The compiled model (callable on the input tensor) and its spec."""
    if not path.is_file():
        raise PlugrcnnError(f"{path}: model file not found")
    if not zipfile.is_zipfile(path):
        raise PlugrcnnError(f"{path}: not an AOTInductor package (.pt2 zip); the aoti backend needs a "
                            f"file from `plugrcnn export --format aoti`")
    try:
        compiled = torch._inductor.aoti_load_package(str(path))
        metadata = compiled.get_metadata()
    except Exception as exc:
        raise PlugrcnnError(f"{path}: cannot load the AOTInductor package ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:160] if str(exc) else ''}); export it again "
                            f"with this torch ({torch.__version__})") from None
    if METADATA_KEY not in metadata:
        raise PlugrcnnError(f"{path}: AOTInductor package without plugrcnn metadata; export it with "
                            f"`plugrcnn export --format aoti`")
    spec = DeploySpec.from_json(metadata[METADATA_KEY], str(path))
    built_for = spec.extra.get("device", "cpu")
    if built_for != device.type:
        raise PlugrcnnError(f"{path}: compiled for {built_for}, asked to run on {device.type}; export it "
                            f"again on a {device.type} machine or use --device {built_for}")
    return compiled, spec
