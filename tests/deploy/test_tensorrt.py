"""TensorRT engines (GPU machines with TensorRT only): build, run, compare with PyTorch.

Install on a machine with an NVIDIA GPU: `pip install tensorrt` (wheels from pypi.nvidia.com),
then run `pytest tests/deploy/test_tensorrt.py`.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

try:
    import tensorrt  # noqa: F401
    TENSORRT_ERROR = ""
except ImportError as exc:  # the development machines have neither TensorRT nor a GPU
    TENSORRT_ERROR = f"TensorRT does not import ({exc}); pip install tensorrt on a GPU machine"

from deploy_fixtures import HEIGHT, WIDTH, Deployed, make_images
from plugrcnn.errors import PlugrcnnError
from plugrcnn_deploy.export import export_model, verify_export
from plugrcnn_deploy.formats.spec import DeploySpec
from plugrcnn_deploy.formats.tensorrt_build import read_engine_file, sidecar_path, write_engine_file
from plugrcnn_deploy.runtimes import load_runtime

pytestmark = [
    pytest.mark.skipif(bool(TENSORRT_ERROR), reason=TENSORRT_ERROR or "-"),
    pytest.mark.skipif(not torch.cuda.is_available(), reason="TensorRT needs a CUDA GPU; none here"),
]
CUDA = torch.device("cuda")  # no index on purpose: the runtime takes the current device


@pytest.fixture(scope="module")
def engine(deployed: Deployed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trt") / "model.engine"
    export_model(deployed.model.to(CUDA), DeploySpec(height=HEIGHT, width=WIDTH, max_detections=40),
                 "tensorrt", path)  # verify_export turns TF32 off for the reference itself
    assert path.with_suffix(".engine.timing").is_file()
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["gpu"]["name"] == torch.cuda.get_device_name() and sidecar["max_detections"] == 40
    return path


@pytest.mark.skipif(shutil.which("trtexec") is None, reason="trtexec is not on PATH")
def test_trtexec_loads_the_plan(engine: Path) -> None:
    result = subprocess.run(["trtexec", f"--loadEngine={engine}", "--iterations=2", "--useCudaGraph"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.mark.parametrize("cuda_graph", [False, True])
def test_tensorrt_engine_matches_pytorch(deployed: Deployed, engine: Path, cuda_graph: bool) -> None:
    model = deployed.model.to(CUDA)
    runtime = load_runtime("tensorrt", model, model_path=engine, device=CUDA, cuda_graph=cuda_graph)
    report = verify_export(model, runtime, make_images(2, seed=1), fp16=False)
    assert report.comparison.reference_count > 5
    assert report.ok, report.problems


def test_fp16_engine_stays_close(deployed: Deployed, tmp_path: Path) -> None:
    model = deployed.model.to(CUDA)
    path = tmp_path / "fp16.engine"
    export_model(model, DeploySpec(height=HEIGHT, width=WIDTH, max_detections=40, fp16=True), "tensorrt", path)
    runtime = load_runtime("tensorrt", model, model_path=path, device=CUDA)
    report = verify_export(model, runtime, make_images(2, seed=1), fp16=True)
    assert report.ok, report.problems


def test_engine_whose_sidecar_lies_about_the_size(deployed: Deployed, engine: Path, tmp_path: Path) -> None:
    spec, data = read_engine_file(engine)
    other = tmp_path / "other.engine"
    write_engine_file(other, DeploySpec(**{**spec.__dict__, "height": 128}), data)
    with pytest.raises(PlugrcnnError, match="engine input is .* but its sidecar says"):
        load_runtime("tensorrt", deployed.model.to(CUDA), model_path=other, device=CUDA)
