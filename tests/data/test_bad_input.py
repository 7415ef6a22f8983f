"""Bad input (issue 4, point 8): a file that is not COCO is an error naming the file, key and
record; a bad annotation is skipped with a warning naming the file, annotation id and image id,
and counted; a missing image is skipped and counted; a corrupt one is named when loaded."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from plugrcnn.data.coco import CocoDataset, DatasetWarning, load_coco_json
from plugrcnn.errors import PlugrcnnError


def _build(path: Path, **kwargs: Any) -> tuple[CocoDataset, list[str]]:
    kwargs.setdefault("training", False)
    with pytest.warns(DatasetWarning) as record:
        dataset = CocoDataset.from_files(path, path.parent / "images", **kwargs)
    return dataset, [str(w.message) for w in record]


def _write_text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("content", "expected"), [
    ("{not json", r"bad\.json: not a JSON file"),
    ("[1, 2]", r"bad\.json: top level is list"),
    ('{"images": [], "categories": []}', r"bad\.json: missing key 'annotations'"),
    ('{"images": {}, "annotations": [], "categories": []}',
     r"bad\.json: key 'images' must be a list, got dict"),
])
def test_a_file_that_is_not_coco_is_an_error_naming_the_file_and_key(
        tmp_path: Path, content: str, expected: str) -> None:
    with pytest.raises(PlugrcnnError, match=expected):
        load_coco_json(_write_text(tmp_path, content))


def test_a_missing_annotation_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PlugrcnnError, match=r"nowhere\.json: annotation file not found"):
        CocoDataset.from_files(tmp_path / "nowhere.json", tmp_path, training=True)


@pytest.mark.parametrize(("kind", "index", "change", "expected"), [
    ("images", 1, {"file_name": 3}, r"images\[1\] \(id 11\) key 'file_name' must be a string"),
    ("images", 0, {"height": None}, r"images\[0\] \(id 10\) key 'height' must be an integer"),
    ("images", 1, {"id": "11"}, r"images\[1\] key 'id' must be an integer, got str"),
    ("images", 1, {"id": 10}, r"images\[1\] repeats id 10"),
    ("categories", 0, {"name": ["x"]}, r"categories\[0\] \(id 5\) key 'name' must be a string"),
    ("categories", 1, {"skeleton": [[1, 4]]}, r"categories\[1\] \(id 2\) key 'skeleton'"),
    ("categories", 1, {"flip_pairs": [["left_foot", "tail"]]},
     r"categories\[1\] \(id 2\) key 'flip_pairs'"),
    ("annotations", 2, {"image_id": "11"},
     r"annotations\[2\] \(id 102\) key 'image_id' must be an integer, got str"),
    ("annotations", 1, {"category_id": True},
     r"annotations\[1\] \(id 101\) key 'category_id' must be an integer, got bool"),
])
def test_a_mistyped_record_is_an_error_naming_its_index_and_id(
        write_coco, coco_content, kind: str, index: int, change: dict[str, Any],
        expected: str) -> None:
    coco_content[kind][index].update(change)
    path = write_coco(coco_content, images=False)
    with pytest.raises(PlugrcnnError, match=r"instances\.json: " + expected):
        load_coco_json(path)


def test_a_record_without_a_required_key_is_named(write_coco, coco_content) -> None:
    del coco_content["annotations"][0]["category_id"]
    with pytest.raises(PlugrcnnError, match=r"annotations\[0\] \(id 100\) has no key "
                                            r"'category_id'"):
        load_coco_json(write_coco(coco_content, images=False))


# (change to annotation 101 on image 10, reason, words the warning must contain)
BAD_ANNOTATIONS = [
    ({"image_id": 77}, "unknown_image", "image id 77 is not in the images list"),
    ({"category_id": 4}, "unknown_category", "category id 4 is not in categories"),
    ({"bbox": [10, 1, 0, 12]}, "bad_bbox", "zero or negative size"),
    ({"bbox": [10, 1, 6, -3]}, "bad_bbox", "zero or negative size"),
    ({"bbox": [10, 1, 6]}, "bad_bbox", "bbox must be 4 numbers"),
    ({"bbox": [30, 1, 6, 3]}, "bad_bbox", "outside the 16x24 image"),
    ({"segmentation": [[10, 1, 16, 1]]}, "bad_segmentation", "3 points or more"),
    ({"segmentation": {"counts": "abc", "size": [8, 8]}}, "bad_segmentation", "RLE size"),
    ({"keypoints": [13, 2, 2, 15, 12, 2]}, "bad_keypoints", "expected 9"),
    ({"keypoints": [13, 2, 2, 15, 12, 2, 11, 12, 5]}, "bad_keypoints", "visibility"),
    ({"id": 100}, "duplicate_id", "annotation id repeats"),
]


@pytest.mark.parametrize(("change", "reason", "detail"), BAD_ANNOTATIONS,
                         ids=[f"{r}-{i}" for i, (_, r, _) in enumerate(BAD_ANNOTATIONS)])
def test_a_bad_annotation_is_skipped_with_a_warning_and_counted(
        write_coco, coco_content, change: dict[str, Any], reason: str, detail: str) -> None:
    coco_content["annotations"][1].update(change)
    path = write_coco(coco_content)
    dataset, messages = _build(path, training=True)
    bad_id, image_id = coco_content["annotations"][1]["id"], change.get("image_id", 10)
    prefix = f"{path}: annotation id {bad_id} (image id {image_id}): "
    assert any(m.startswith(prefix) and detail in m
               and m.endswith(f"annotation skipped ({reason})") for m in messages), messages
    assert messages[-1] == (f"{path}: skipped 1 annotation(s): {reason}=1; fix the data to use "
                            "them")
    assert dataset.skipped == {key: int(key == reason) for key in dataset.skipped}
    assert dataset.skipped_ids[reason] == [bad_id]
    # the run goes on: the good annotation of image 10 is still there and loads
    assert dataset.image_ids == [10]
    assert [a["id"] for a in dataset[0]["annotations"]] == [100]


def test_counts_stay_exact_when_detailed_warnings_are_capped(write_coco, coco_content) -> None:
    template = coco_content["annotations"][0]
    coco_content["annotations"] += [dict(template, id=500 + i, bbox=[1, 1, 0, 1])
                                    for i in range(25)]
    dataset, messages = _build(write_coco(coco_content))
    assert dataset.skipped["bad_bbox"] == 25
    assert dataset.skipped_ids["bad_bbox"] == list(range(500, 525))
    assert sum("annotation skipped (bad_bbox)" in m for m in messages) == 10
    assert messages[-1].endswith("skipped 25 annotation(s): bad_bbox=25; fix the data to use them")


def test_a_missing_image_file_is_skipped_with_a_warning_and_counted(
        write_coco, coco_content) -> None:
    path = write_coco(coco_content)
    missing = path.parent / "images" / "a.png"
    missing.unlink()
    dataset, messages = _build(path)
    assert messages[0] == (f"{path}: image id 10 ({missing}): image file not found; image and "
                           "its annotations skipped (missing_file)")
    assert dataset.skipped_images["missing_file"] == 1
    assert dataset.skipped_image_ids["missing_file"] == [10]
    assert dataset.skipped["missing_image_file"] == 2  # its two annotations, not silently lost
    assert "missing_image_file=2, image_missing_file=1" in messages[-1]
    assert dataset.image_ids == [11] and dataset[0]["image_id"] == 11


def test_a_corrupt_image_file_is_named_when_loaded_or_skipped_when_checked(
        write_coco, coco_content) -> None:
    path = write_coco(coco_content)
    corrupt = path.parent / "images" / "b.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    dataset = CocoDataset.from_files(path, path.parent / "images", training=False)
    assert dataset[0]["image_id"] == 10
    with pytest.raises(PlugrcnnError, match=re.escape(f"{corrupt}: cannot decode image id 11")):
        dataset[1]
    checked, messages = _build(path, check_images=True)
    assert checked.image_ids == [10]
    assert checked.skipped_images == {"missing_file": 0, "corrupt_file": 1}
    assert messages[0].startswith(f"{path}: image id 11 ({corrupt}): {corrupt}: cannot decode")


def test_an_image_of_another_size_than_the_json_says_is_named(write_coco, coco_content) -> None:
    write_coco(coco_content)  # the images, 16 x 24
    coco_content["images"][0]["height"] = 17
    path = write_coco(coco_content, images=False)
    dataset = CocoDataset.from_files(path, path.parent / "images", training=False)
    with pytest.raises(PlugrcnnError, match=r"a\.png: image id 10 is 16x24 pixels but .* says "
                                            r"17x24"):
        dataset[0]
