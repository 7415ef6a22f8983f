"""tools/gpu_check.sh: its dry run (and a machine without a GPU) prints the plan and exits 0;
tools/gpu_check_report.py gathers a run's folder into one JSON."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "gpu_check.sh"
BACKENDS = ("torch", "onnxruntime", "tensorrt", "aoti")


def _run(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path} if path is not None else None
    bash = shutil.which("bash") or "/bin/bash"
    return subprocess.run([bash, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, env=env)


def test_dry_run_prints_every_step_and_exits_0(tmp_path: Path) -> None:
    result = _run("--dry-run", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "dry run (--dry-run)" in out
    for backend in BACKENDS:
        assert f"bench_{backend}" in out and f"--backend {backend}" in out
        assert f"video_{backend}" in out
    assert "--height 800 --width 1344" in out and "mask_keypoint_rcnn_R50_FPN.yaml" in out
    assert "[cuda_tests]" in out and "tests/deploy/test_tensorrt.py" in out
    assert "--no-index --find-links" in out  # installs from carried wheels only
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_without_a_gpu_it_is_a_dry_run(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # a PATH with bash's tools but no nvidia-smi
    bin_dir.mkdir()
    for tool in ("date", "sed", "grep", "mkdir", "tail", "tr", "cat", "dirname"):
        found = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if found:
            (bin_dir / tool).symlink_to(found)
    result = _run("--out", str(tmp_path / "out"), path=str(bin_dir))
    assert result.returncode == 0, result.stderr
    assert "no NVIDIA GPU here" in result.stdout and "[export_tensorrt]" in result.stdout
    assert not (tmp_path / "out").exists()


def test_an_unknown_argument_is_one_line_and_exit_2() -> None:
    result = _run("--frobnicate")
    assert result.returncode == 2
    assert result.stderr.strip() == "gpu_check.sh: unknown argument '--frobnicate' (see --help)"


def test_report_gathers_steps_figures_and_the_pytest_line(tmp_path: Path) -> None:
    (tmp_path / "steps.tsv").write_text("install\tok\t12\tdone\nexport_tensorrt\ttimed out after 240s\t240\t\n")
    (tmp_path / "bench_tensorrt.json").write_text(json.dumps({"backend": "tensorrt", "fps_p50": 41.5}))
    (tmp_path / "cuda_tests.log").write_text("....\n7 passed, 2 skipped in 80.12s\n")
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check_report.py"), str(tmp_path),
                             "--seconds", "530"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["seconds"] == 530 and report["cuda_tests"] == "7 passed, 2 skipped in 80.12s"
    assert report["steps"][1] == {"step": "export_tensorrt", "status": "timed out after 240s", "seconds": 240,
                                  "last_line": ""}
    assert report["figures"] == {"bench_tensorrt": {"backend": "tensorrt", "fps_p50": 41.5}}
    assert set(report["versions"]) >= {"torch", "onnxruntime", "tensorrt"}


@pytest.mark.skipif(not (ROOT / "Makefile").is_file(), reason="no Makefile")
def test_make_gpu_check_target_exists() -> None:
    result = subprocess.run(["make", "-n", "gpu-check", "GPU_CHECK_ARGS=--dry-run"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "tools/gpu_check.sh" in result.stdout and "--dry-run" in result.stdout
