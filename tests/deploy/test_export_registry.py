"""Export formats come from one registry: a format registered there is exported and verified by
`plugrcnn export` with no edit of the CLI."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deploy_fixtures import Deployed
from plugrcnn.cli import main
from plugrcnn_deploy.formats.registry import EXPORT_FORMATS, ExportFormat, register_export_format
from plugrcnn_deploy.formats.writers import write_onnx
from plugrcnn_deploy.formats.spec import DeploySpec

CALLS: list[Path] = []


def write_via_onnx(model: Any, spec: DeploySpec, output: Path, **options: Any) -> DeploySpec:
    """A "new" format for the test: ONNX under another name, recording that it ran."""
    CALLS.append(output)
    return write_onnx(model, spec, output, **options)


def test_the_cli_choices_are_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        main(["export", "--help"])
    except SystemExit:
        pass
    help_text = capsys.readouterr().out
    assert "{onnx,tensorrt,aoti}" in help_text
    assert set(EXPORT_FORMATS) == {"onnx", "tensorrt", "aoti"}


def test_a_registered_format_exports_and_verifies_without_a_cli_edit(
        deployed: Deployed, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    register_export_format(ExportFormat("onnx-copy", runtime="onnxruntime", suffix=".onnx",
                                        writer=f"{__name__}:write_via_onnx"))
    output = tmp_path / "copy.onnx"
    CALLS.clear()
    try:
        assert main(["export", "--config", str(deployed.config), "--weights", str(deployed.weights),
                     "--format", "onnx-copy", "--output", str(output), "--verify"]) == 0
    finally:
        del EXPORT_FORMATS["onnx-copy"]
    assert CALLS == [output]
    assert "verify: OK" in capsys.readouterr().out


def test_registering_another_writer_under_a_taken_name_is_refused() -> None:
    with pytest.raises(Exception, match="export format 'onnx' is registered twice"):
        register_export_format(ExportFormat("onnx", runtime="onnxruntime", suffix=".onnx",
                                            writer=f"{__name__}:write_via_onnx"))
