"""Data set formats behind a registry: `data.format` picks the loader; a plugin adds one through
the ``plugrcnn.dataset_formats`` entry-point group (installed for real here: a module and a
``*.dist-info`` on ``sys.path``, as pip installs a distribution)."""
from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from plugrcnn.config import load_config
from plugrcnn.data.build import load_split
from plugrcnn.data.formats import dataset_formats
from plugrcnn.errors import PlugrcnnError

# a format of one CSV line per box: file_name,x1,y1,x2,y2,class name
PLUGIN = '''
from pathlib import Path

from plugrcnn.data.coco import CocoDataset
from plugrcnn.data.formats import DatasetFormat
from plugrcnn.plugins.hookspecs import hookimpl


def load(split, options):
    rows = [line.split(",") for line in Path(split.instances).read_text().split()]
    names = sorted({row[5] for row in rows})
    files = sorted({row[0] for row in rows})
    coco = {"images": [{"id": i + 1, "file_name": f, "width": 24, "height": 16} for i, f in enumerate(files)],
            "categories": [{"id": i + 1, "name": n} for i, n in enumerate(names)],
            "annotations": []}
    for index, (name, x1, y1, x2, y2, label) in enumerate(rows):
        x1, y1, x2, y2 = map(float, (x1, y1, x2, y2))
        coco["annotations"].append({"id": index + 1, "image_id": files.index(name) + 1,
                                    "category_id": names.index(label) + 1, "iscrowd": 0,
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)})
    return CocoDataset(coco, split.images, source=split.instances, **options.dataset_kwargs())


@hookimpl
def plugrcnn_register_dataset_formats():
    yield DatasetFormat("boxcsv", load, "file_name,x1,y1,x2,y2,class per line")
'''


@pytest.fixture
def boxcsv_installed(tmp_path: Path) -> Iterator[None]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "boxcsv_format.py").write_text(PLUGIN)
    info = site / "plugrcnn_boxcsv-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugrcnn-boxcsv\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[plugrcnn.dataset_formats]\nboxcsv = boxcsv_format\n")
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    yield
    sys.path.remove(str(site))
    sys.modules.pop("boxcsv_format", None)
    importlib.invalidate_caches()


def _config(tmp_path: Path, fmt: str) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(np.full((16, 24, 3), 90, dtype=np.uint8)).save(images / name)
    (tmp_path / "boxes.csv").write_text("a.png,1,2,10,12,cat\nb.png,3,3,20,14,dog\nb.png,0,0,5,5,cat\n")
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  format: {fmt}\n  train: {{instances: {tmp_path / 'boxes.csv'}, images: {images}}}\n")
    return config


def test_coco_is_the_built_in_format_and_the_default(tmp_path: Path) -> None:
    assert "coco" in dataset_formats()
    config = tmp_path / "c.yaml"
    config.write_text("model: {num_classes: 2}\n")
    assert load_config(config).data.format == "coco"


def test_a_format_from_an_installed_plugin_loads_a_split(tmp_path: Path, boxcsv_installed: None) -> None:
    dataset = load_split(load_config(_config(tmp_path, "boxcsv")), "train", training=True)
    assert dataset.num_classes == 2
    assert [dataset.category_names[label] for label in (1, 2)] == ["cat", "dog"]
    assert len(dataset) == 2
    second = dataset[1]
    assert sorted(a["label"] for a in second["annotations"]) == [1, 2]
    assert tuple(second["image"].shape) == (3, 16, 24)


def test_an_unknown_format_is_a_config_error_naming_the_key_and_the_installed_ones(tmp_path: Path) -> None:
    config = _config(tmp_path, "voc")
    with pytest.raises(PlugrcnnError, match=rf"^{config}: key data.format: unknown data set format 'voc' "
                                            rf"\(installed: coco\)$"):
        load_config(config)
