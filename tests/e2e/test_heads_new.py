"""`plugrcnn heads new` writes a head plugin that installs and passes the conformance checks as
written, here one that builds on the mask head (it consumes the mask head's logits)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from plugrcnn.cli import main


def test_bad_names_and_an_existing_folder_are_one_line_errors(tmp_path: Path, capsys) -> None:
    assert main(["heads", "new", "Bad-Name", "--output", str(tmp_path)]) == 2
    assert main(["heads", "new", "ok_head", "--consumes", "mask", "--output", str(tmp_path)]) == 2
    assert main(["heads", "new", "ok_head", "--output", str(tmp_path)]) == 0
    assert main(["heads", "new", "ok_head", "--output", str(tmp_path)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(errors) == 3 and "exists already" in errors[-1]


@pytest.mark.slow
def test_the_skeleton_installs_and_passes_the_conformance_checks(tmp_path: Path) -> None:
    assert main(["heads", "new", "demo_head", "--requires", "mask", "--consumes", "mask.mask_class_logits",
                 "--output", str(tmp_path)]) == 0
    root = tmp_path / "plugrcnn-demo-head"
    plugin = (root / "plugrcnn_demo_head" / "plugin.py").read_text()
    assert "requires=('mask',)" in plugin and "consumes=('mask.mask_class_logits',)" in plugin
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(root)]
    subprocess.run(pip, check=True, capture_output=True)
    try:
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root)],
                             cwd=root, capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        assert "8 passed" in run.stdout
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "--quiet", "-y", "plugrcnn-demo-head"],
                       check=False, capture_output=True)
