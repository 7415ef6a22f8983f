"""README's Python snippets, run as written, on the file layout `make demo` leaves behind."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from plugrcnn.cli import main
from plugrcnn.data.synthetic import generate_synthetic_coco
from conftest import tiny_config

ROOT = Path(__file__).resolve().parents[2]
KEYPOINTS = ROOT / "configs" / "demo" / "synthetic_keypoints.yaml"
HEADS = ("    class: {}\n    box: {}\n    mask: {num_conv: 1, conv_dim: 16}\n"
         "    keypoint: {num_conv: 2, conv_dim: 16}\n")


def readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def make_demo_layout(root: Path) -> None:
    """output/demo/{data,train} as `make demo` writes them: a tiny model trained one step."""
    demo = root / "output" / "demo"
    generate_synthetic_coco(demo / "data", seed=3, num_train=6, num_val=3, image_size=96)
    config = tiny_config(root, demo / "data", HEADS, extra=f"_base_: {KEYPOINTS}\n")
    assert main(["train", "--config", str(config), "--output-dir", str(demo / "train"),
                 "solver.max_iter=1"]) == 0


def test_readme_has_a_python_snippet_right_after_setup() -> None:
    text = (ROOT / "README.md").read_text()
    after_setup = text.split("## Set-up", 1)[1].split("\n## ", 1)[1]  # the sections after Set-up
    assert re.search(r"```(\w+)", after_setup)[1] == "python"


@pytest.mark.slow
def test_readme_python_snippets_run_as_written(tmp_path: Path) -> None:
    blocks = readme_python_blocks()
    assert blocks, "README.md has no ```python block"
    make_demo_layout(tmp_path)
    for index, code in enumerate(blocks):
        script = tmp_path / f"readme_snippet_{index}.py"
        script.write_text(code)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"README python block {index} failed:\n{done.stderr[-3000:]}"
    # what the first snippet says it writes: a drawn picture and the COCO records
    picture = tmp_path / "output" / "api" / "prediction.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = json.loads((tmp_path / "output" / "api" / "prediction.json").read_text())
    assert records and {"category_id", "bbox", "score", "segmentation"} <= set(records[0])
    assert all(len(r["bbox"]) == 4 and 0.0 <= r["score"] <= 1.0 for r in records)
