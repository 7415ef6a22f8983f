"""`plugrcnn demo` reuses its generated data set only when all of it is there."""
from __future__ import annotations

import json
from pathlib import Path

from plugrcnn.cli.demo import _synthetic_data_complete
from plugrcnn.data.synthetic import generate_synthetic_coco


def test_marker_alone_is_not_a_data_set(tmp_path: Path) -> None:
    settings = {"seed": 0, "num_train": 3, "num_val": 2, "image_size": 64, "split_keypoints_file": False}
    generate_synthetic_coco(tmp_path, progress=False, **settings)
    marker = tmp_path / "synthetic.json"
    assert not _synthetic_data_complete(tmp_path, marker, settings)  # no marker yet
    marker.write_text(json.dumps(settings))
    assert _synthetic_data_complete(tmp_path, marker, settings)
    assert not _synthetic_data_complete(tmp_path, marker, {**settings, "seed": 1})
    next((tmp_path / "val").glob("*.png")).unlink()  # an image removed since
    assert not _synthetic_data_complete(tmp_path, marker, settings)
    generate_synthetic_coco(tmp_path, progress=False, **settings)
    assert _synthetic_data_complete(tmp_path, marker, settings)
    (tmp_path / "annotations" / "instances_train.json").unlink()
    assert not _synthetic_data_complete(tmp_path, marker, settings)
