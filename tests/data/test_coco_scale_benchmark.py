"""benchmarks/coco_scale.py at a tiny scale: its synthetic file and the figures it reports."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from coco_scale_data import COCO_CATEGORY_IDS, write_coco_scale_file  # noqa: E402


def test_the_synthetic_file_has_the_asked_counts_and_valid_seeded_content(tmp_path: Path) -> None:
    counts = write_coco_scale_file(tmp_path / "a.json", seed=3, images=50, annotations=400,
                                   empty_images=5, image_dir=tmp_path / "images")
    write_coco_scale_file(tmp_path / "b.json", seed=3, images=50, annotations=400, empty_images=5)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    content = json.loads((tmp_path / "a.json").read_text())
    images = {image["id"]: image for image in content["images"]}
    annotations = content["annotations"]
    assert (len(images), len(annotations), len(content["categories"])) == (50, 400, 80)
    assert counts["images_without_annotations"] == 5 == 50 - len({a["image_id"] for a in annotations})
    assert sorted(c["id"] for c in content["categories"]) == list(COCO_CATEGORY_IDS)
    assert len({a["id"] for a in annotations}) == 400
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == \
        sorted(image["file_name"] for image in images.values())
    for a in annotations:
        image = images[a["image_id"]]
        x, y, w, h = a["bbox"]
        assert w > 0 and h > 0 and x + w <= image["width"] + 0.01 and y + h <= image["height"] + 0.01
        for polygon in a["segmentation"]:
            assert len(polygon) >= 6 and len(polygon) % 2 == 0
            assert 0 <= min(polygon[0::2]) and max(polygon[0::2]) <= image["width"]


@pytest.mark.slow
def test_the_benchmark_reports_loads_and_worker_memory_as_json(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    done = subprocess.run([sys.executable, str(BENCHMARKS / "coco_scale.py"), "--images", "40",
                           "--annotations", "200", "--runs", "1", "--workers", "2",
                           "--dir", str(tmp_path), "--json-out", str(out)],
                          capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert json.loads(done.stdout.strip().splitlines()[-1]) == summary
    instances = next(tmp_path.glob("coco_scale_40i_200a_seed0/instances.json"))
    annotations = json.loads(instances.read_text())["annotations"]
    per_image = Counter(a["image_id"] for a in annotations)
    load = summary["load"]
    assert load["pycocotools"]["images"] == 40
    assert load["plugrcnn"]["images"] == len(per_image)  # training keeps annotated images
    ours, theirs = load["plugrcnn"]["seconds"][0], load["pycocotools"]["seconds"][0]
    assert load["time_ratios"] == [pytest.approx(ours / theirs)]
    assert all(peak >= before for peak, before in zip(load["plugrcnn"]["peak_rss"],
                                                      load["plugrcnn"]["rss_before_load"]))
    workers = summary["workers"]
    assert workers["workers"] == 2 and len(workers["private_growth_per_worker"]) == 2
    assert workers["annotations_touched"] == 200  # every annotation once, none twice
    assert workers["private_growth_total"] == sum(workers["private_growth_per_worker"])
    assert workers["growth_fraction_of_dataset"] == pytest.approx(
        workers["private_growth_total"] / workers["dataset_nbytes"])
