"""`plugrcnn show-data`: GT drawn through each head, and a flip shows left/right swapped."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from plugrcnn.cli import main
from plugrcnn_keypoint.head import SIDE_COLORS
from conftest import tiny_config

ROOT = Path(__file__).resolve().parents[2]
KEYPOINTS = ROOT / "configs" / "demo" / "synthetic_keypoints.yaml"
HEADS = ("    class: {}\n    box: {}\n    mask: {num_conv: 1, conv_dim: 16}\n"
         "    keypoint: {num_conv: 2, conv_dim: 16}\n")
LEFT, RIGHT = SIDE_COLORS[0], SIDE_COLORS[1]


def show(config: Path, out: Path, *extra: str) -> None:
    assert main(["show-data", "--config", str(config), "--output", str(out), "--count", "0", *extra]) == 0


def isolated_left_keypoints(data: Path) -> list[tuple[str, float, float]]:
    """(file, x, y) of labelled left_* keypoints at least 8 px from every other keypoint of the image
    (so no other dot covers them), in pixel-centre coordinates as the keypoint codec reads them."""
    coco = json.loads((data / "annotations" / "instances_train.json").read_text())
    names = {c["id"]: c.get("keypoints", []) for c in coco["categories"]}
    files = {im["id"]: im["file_name"] for im in coco["images"]}
    points: dict[int, list[tuple[str, float, float]]] = {}
    for ann in coco["annotations"]:
        values = ann.get("keypoints") or []
        for k, name in enumerate(names[ann["category_id"]]):
            x, y, v = values[3 * k:3 * k + 3]
            if v > 0:
                points.setdefault(ann["image_id"], []).append((name, x + 0.5, y + 0.5))
    found = []
    for image_id, pts in points.items():
        for name, x, y in pts:
            others = [math.dist((x, y), (u, w)) for n, u, w in pts if (n, u, w) != (name, x, y)]
            if name.startswith("left_") and min(others, default=99) >= 8 and 3 <= x <= 92:
                found.append((files[image_id], x, y))
    return found


def test_show_data_draws_masks_keypoints_and_flips_left_right(tmp_path: Path, tiny_synthetic: Path) -> None:
    config = tiny_config(tmp_path, tiny_synthetic, HEADS, extra=f"_base_: {KEYPOINTS}\n")
    show(config, tmp_path / "plain")
    # augmentation that only flips: the 96-px images keep their size
    show(config, tmp_path / "flipped", "--augment", "model.input.flip_prob=1.0",
         "model.input.min_size_train=[96]", "model.input.max_size_train=96")
    points = isolated_left_keypoints(tiny_synthetic)
    assert points, "the fixture should hold a labelled, isolated left keypoint"
    for file_name, x, y in points:
        stem = Path(file_name).stem
        plain = np.asarray(Image.open(tmp_path / "plain" / f"{stem}.png").convert("RGB"))
        flipped = np.asarray(Image.open(tmp_path / "flipped" / f"{stem}.png").convert("RGB"))
        width = plain.shape[1]
        assert tuple(plain[int(y), int(x)]) == LEFT, (file_name, x, y)
        # the mirrored point is now the figure's right one: drawn in the right colour
        assert tuple(flipped[int(y), int(width - x)]) == RIGHT, (file_name, x, y)
    # masks are drawn: the picture differs from the raw image inside a GT mask's box
    raw = np.asarray(Image.open(tiny_synthetic / "train" / points[0][0]).convert("RGB"))
    plain = np.asarray(Image.open(tmp_path / "plain" / f"{Path(points[0][0]).stem}.png").convert("RGB"))
    assert (raw != plain).any(axis=-1).mean() > 0.02


def test_show_data_bad_count_is_one_line_exit_2(tmp_path: Path, tiny_synthetic: Path, capsys) -> None:
    config = tiny_config(tmp_path, tiny_synthetic, HEADS, extra=f"_base_: {KEYPOINTS}\n")
    assert main(["show-data", "--config", str(config), "--output", str(tmp_path / "o"), "--count", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--count" in err[0]
    assert not (tmp_path / "o").exists()  # nothing written before the check
