"""`plugrcnn export` output files: the Triton model repository entry, and what --verify keeps."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import onnx
import pytest
import torch

from deploy_fixtures import Deployed
from plugrcnn.cli import main
from plugrcnn.errors import PlugrcnnError
from plugrcnn_deploy.cli import export as cli_export
from plugrcnn_deploy.export import VerifyReport
from plugrcnn_deploy.verify import Comparison

_TRITON_TYPES = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.INT32: "TYPE_INT32",
                 onnx.TensorProto.UINT8: "TYPE_UINT8", onnx.TensorProto.INT64: "TYPE_INT64"}


def _blocks(config: str, section: str) -> dict[str, tuple[str, list[int]]]:
    """name -> (data_type, dims) of one section of a config.pbtxt."""
    body = re.search(rf"^{section} \[\n(.*?)^\]", config, re.S | re.M)
    assert body, f"no {section} section"
    found = re.findall(r'name: "([^"]+)"\n\s*data_type: (\w+)\n\s*dims: \[ ([^\]]*) \]', body.group(1))
    return {name: (dtype, [int(d) for d in dims.split(", ")]) for name, dtype, dims in found}


def test_export_writes_a_triton_entry_naming_the_real_inputs_and_outputs(deployed: Deployed,
                                                                         tmp_path: Path) -> None:
    output = tmp_path / "det-model.onnx"
    assert main(["export", "--config", str(deployed.config), "--weights", str(deployed.weights),
                 "--format", "onnx", "--output", str(output), "--max-detections", "40",
                 "--triton", str(tmp_path / "repo")]) == 0
    entry = tmp_path / "repo" / "det-model"
    assert (entry / "1" / "model.onnx").read_bytes() == output.read_bytes()
    config = (entry / "config.pbtxt").read_text()
    assert 'name: "det-model"' in config and 'platform: "onnxruntime_onnx"' in config
    assert "max_batch_size: 0" in config
    model = onnx.load(str(output))
    for section, values in (("input", model.graph.input), ("output", model.graph.output)):
        expected = {v.name: (_TRITON_TYPES[v.type.tensor_type.elem_type],
                             [d.dim_value for d in v.type.tensor_type.shape.dim]) for v in values}
        assert _blocks(config, section) == expected
    assert "mask.masks" in _blocks(config, "output") or "mask" not in deployed.heads


def test_triton_is_refused_for_aoti(deployed: Deployed, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--config", str(deployed.config), "--weights", str(deployed.weights),
                 "--format", "aoti", "--output", str(tmp_path / "m.pt2"), "--triton", str(tmp_path)]) == 2
    assert "--triton: Triton serves onnx and tensorrt models, not aoti" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_verification_keeps_the_file_and_says_where(deployed: Deployed, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    failed = VerifyReport(Comparison(reference_count=3, matched=3), ["box difference 1.0 px > 0.05 px"])
    monkeypatch.setattr(cli_export, "verify_export", lambda *args, **kwargs: failed)
    model_file = tmp_path / "model.onnx"
    model_file.write_bytes(deployed.onnx.read_bytes())
    args = argparse.Namespace(format="onnx", output=model_file, fp16=False, delete_on_verify_failure=False)
    with pytest.raises(PlugrcnnError, match=r"verification failed \(box difference.*kept at .*model.onnx"):
        cli_export._verify(args, deployed.model, torch.device("cpu"), [])
    assert model_file.is_file()
    args.delete_on_verify_failure = True
    with pytest.raises(PlugrcnnError, match="the file was removed"):
        cli_export._verify(args, deployed.model, torch.device("cpu"), [])
    assert not model_file.exists()
