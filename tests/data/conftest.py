"""Fixtures for the data tests: a tiny synthetic data set and a builder of small COCO files."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from plugrcnn.data.synthetic import generate_synthetic_coco

SYNTHETIC_SEED = 7


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """6 train + 3 val images of 96 px, keypoints inside the instances file."""
    return generate_synthetic_coco(tmp_path_factory.mktemp("synthetic"), seed=SYNTHETIC_SEED,
                                   num_train=6, num_val=3, image_size=96)


@pytest.fixture(scope="session")
def synthetic_split(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same data set (same seed), keypoints in separate person_keypoints files."""
    return generate_synthetic_coco(tmp_path_factory.mktemp("synthetic_split"),
                                   seed=SYNTHETIC_SEED, num_train=6, num_val=3, image_size=96,
                                   split_keypoints_file=True)


CocoWriter = Callable[..., Path]


@pytest.fixture
def write_coco(tmp_path: Path) -> CocoWriter:
    """write_coco(content, name="instances.json", images=True) -> path of the JSON.

    Writes `content` (any JSON value) and, when `images` is true, a solid 16 x 24 PNG under
    tmp_path/images for every record of content["images"] (its file_name, its height/width).
    """

    def write(content: Any, name: str = "instances.json", images: bool = True) -> Path:
        image_dir = tmp_path / "images"
        image_dir.mkdir(exist_ok=True)
        if images:
            for record in content["images"]:
                pixels = np.full((record["height"], record["width"], 3), 40 + record["id"],
                                 dtype=np.uint8)
                Image.fromarray(pixels).save(image_dir / record["file_name"])
        path = tmp_path / name
        path.write_text(json.dumps(content))
        return path

    return write


def small_coco() -> dict[str, Any]:
    """Two 16 x 24 images, two categories (ids 5 and 2, one with 3 keypoints), three good
    annotations (one of them a crowd)."""
    return {
        "images": [
            {"id": 10, "file_name": "a.png", "height": 16, "width": 24},
            {"id": 11, "file_name": "b.png", "height": 16, "width": 24},
        ],
        "categories": [
            {"id": 5, "name": "thing"},
            {"id": 2, "name": "walker", "keypoints": ["head", "left_foot", "right_foot"],
             "skeleton": [[1, 2], [1, 3]]},
        ],
        "annotations": [
            {"id": 100, "image_id": 10, "category_id": 5, "bbox": [2, 3, 5, 4], "iscrowd": 0,
             "area": 20.0, "segmentation": [[2, 3, 7, 3, 7, 7, 2, 7]]},
            {"id": 101, "image_id": 10, "category_id": 2, "bbox": [10, 1, 6, 12], "iscrowd": 0,
             "area": 72.0, "segmentation": [[10, 1, 16, 1, 16, 13, 10, 13]],
             "keypoints": [13, 2, 2, 15, 12, 2, 11, 12, 1], "num_keypoints": 3},
            {"id": 102, "image_id": 11, "category_id": 5, "bbox": [0, 0, 24, 16], "iscrowd": 1,
             "area": 384.0, "segmentation": {"counts": [0, 384], "size": [16, 24]}},
        ],
    }


@pytest.fixture
def coco_content() -> dict[str, Any]:
    """A fresh copy of small_coco() for each test to modify."""
    return small_coco()
