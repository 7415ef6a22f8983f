"""Collect what tools/gpu_check.sh left in its folder into one JSON: OUT/gpu_check.json.

    python tools/gpu_check_report.py OUT [--seconds S]

Holds the GPU (nvidia-smi), the versions of torch / onnxruntime / TensorRT, every step's status,
duration and last log line, the `--json` figures of each bench and video run, and pytest's
summary line.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path
from typing import Any


def _gpu() -> str:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (nvidia-smi failed)"


def _versions() -> dict[str, str]:
    versions = {}
    for module in ("torch", "torchvision", "onnxruntime", "tensorrt", "onnx"):
        try:
            versions[module] = __import__(module).__version__
        except Exception as exc:  # noqa: BLE001 - a missing optional package is a figure too
            versions[module] = f"not importable ({type(exc).__name__})"
    return versions


def _steps(folder: Path) -> list[dict[str, Any]]:
    rows = []
    tsv = folder / "steps.tsv"
    for line in tsv.read_text().splitlines() if tsv.is_file() else []:
        name, status, seconds, last = (line.split("\t") + ["", "", "", ""])[:4]
        rows.append({"step": name, "status": status, "seconds": int(seconds or 0), "last_line": last})
    return rows


def _pytest_summary(folder: Path) -> str | None:
    log = folder / "cuda_tests.log"
    if not log.is_file():
        return None
    lines = [line for line in log.read_text().splitlines() if re.search(r"\d+ (passed|failed|skipped|error)", line)]
    return lines[-1].strip("= ") if lines else None


def collect(folder: Path, seconds: int | None) -> dict[str, Any]:
    figures = {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))
               if path.name != "gpu_check.json"}
    return {"gpu": _gpu(), "versions": _versions(), "seconds": seconds, "steps": _steps(folder),
            "cuda_tests": _pytest_summary(folder), "figures": figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seconds", type=int, default=None)
    args = parser.parse_args()
    report = collect(args.folder, args.seconds)
    (args.folder / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    for step in report["steps"]:
        print(f"{step['step']:<20} {step['status']:<24} {step['seconds']:>4} s")
    print(f"wrote {args.folder / 'gpu_check.json'}")


if __name__ == "__main__":
    main()
