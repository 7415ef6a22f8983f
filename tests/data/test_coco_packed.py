"""The packed data set (numpy screen + pickled records) returns exactly what checking and
completing every annotation of the JSON in Python gives: same kept annotations, same values and
types, same skip reasons and ids, for files with crowd/RLE, keypoints, images without
annotations, repeated ids and bad values mixed in."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugrcnn.data.coco import CocoDataset
from plugrcnn.data.coco_annotations import check_annotation, complete_annotation, has_mask
from plugrcnn.data.coco_packed import PackedRecords
from plugrcnn.errors import PlugrcnnError

HEIGHT, WIDTH = 16, 24
CATEGORIES = [{"id": 5, "name": "thing"},
              {"id": 2, "name": "walker", "keypoints": ["head", "left_foot", "right_foot"]},
              {"id": 9, "name": "other"}]
IMAGE_IDS = [10, 11, 12, 13]  # 13 has no file: its annotations are skipped (missing_image_file)

coordinate = st.one_of(st.integers(-3, 30), st.floats(-3, 30, allow_nan=False, allow_subnormal=False).map(
    lambda v: round(v, 2)))
odd_value = st.sampled_from([float("nan"), float("inf"), True, False, "7", None, [1.0]])
polygon = st.lists(coordinate, min_size=6, max_size=14).filter(lambda p: len(p) % 2 == 0)
bad_polygon = st.one_of(st.lists(coordinate, min_size=0, max_size=5),
                        polygon.map(lambda p: p[:-1] + [True]),  # numpy would read it as 1.0
                        st.lists(st.one_of(coordinate, odd_value), min_size=6, max_size=8),
                        st.just("not a polygon"))
segmentation = st.one_of(
    st.lists(polygon, min_size=1, max_size=3),
    st.lists(st.one_of(polygon, bad_polygon), min_size=1, max_size=2),
    st.just({"counts": [0, HEIGHT * WIDTH], "size": [HEIGHT, WIDTH]}),     # uncompressed RLE
    st.just({"counts": "0`5", "size": [HEIGHT, WIDTH]}),                  # compressed, refused
    st.just([]), st.just([]), st.none())
bbox = st.one_of(
    st.tuples(st.integers(0, 20), st.integers(0, 12), st.integers(1, 8), st.integers(1, 8))
    .map(list),
    st.tuples(*[st.floats(-2, 25, allow_nan=False, allow_subnormal=False)] * 4).map(list),
    st.lists(st.one_of(coordinate, odd_value), min_size=3, max_size=5))
keypoints = st.lists(st.sampled_from([0, 1, 2, 3, 5.5]), min_size=9, max_size=9)


@st.composite
def annotation(draw: st.DrawFn) -> dict[str, Any]:
    record = {"id": draw(st.integers(1, 40)),
              "image_id": draw(st.sampled_from([10, 10, 11, 12, 13, 77])),
              "category_id": draw(st.sampled_from([5, 5, 2, 9, 4])), "bbox": draw(bbox)}
    if draw(st.booleans()):
        record["segmentation"] = draw(segmentation)
    if draw(st.booleans()):
        record["iscrowd"] = draw(st.sampled_from([0, 1]))
    if draw(st.booleans()):
        record["area"] = draw(st.floats(0, 400, allow_subnormal=False))
    if record["category_id"] == 2 and draw(st.booleans()):
        record["keypoints"] = draw(keypoints)
    if draw(st.booleans()):
        record["attributes"] = {"occluded": draw(st.booleans())}  # a field COCO does not know
    return record


def checked_in_python(content: dict[str, Any], chosen: list[int], available: set[int]
                      ) -> tuple[dict[int, list[dict[str, Any]]], dict[str, list[int]]]:
    """The reference: every annotation checked and completed one by one, in file order."""
    images = {image["id"]: image for image in content["images"]}
    categories = {category["id"]: category for category in content["categories"]}
    labels = {cid: label for label, cid in enumerate(chosen, start=1)}
    masks_expected = any(has_mask(a) for a in content["annotations"])
    kept: dict[int, list[dict[str, Any]]] = {i: [] for i in sorted(available)}
    skipped: dict[str, list[int]] = {}
    seen: set[int] = set()
    for a in content["annotations"]:
        reason = ("duplicate_id" if a["id"] in seen else
                  "unknown_image" if a["image_id"] not in images else
                  "unknown_category" if a["category_id"] not in categories else
                  "missing_image_file" if a["image_id"] not in available else
                  "excluded" if a["category_id"] not in labels else None)
        seen.add(a["id"])
        if reason is None:
            problem = check_annotation(a, images[a["image_id"]], len(
                categories[a["category_id"]].get("keypoints") or []), masks_expected)
            reason = problem[0] if problem else None
        if reason is None:
            kept[a["image_id"]].append(complete_annotation(a, labels[a["category_id"]], WIDTH,
                                                           HEIGHT))
        else:
            skipped.setdefault(reason, []).append(a["id"])
    return kept, skipped


def _load(tmp_path: Path, content: dict[str, Any], chosen: list[int] | None,
          training: bool) -> CocoDataset:
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(content))  # NaN/Infinity as json writes them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CocoDataset.from_files(path, tmp_path / "images", training=training,
                                      category_ids=chosen)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(annotations=st.lists(annotation(), max_size=25), training=st.booleans(),
       chosen=st.sampled_from([None, [2, 5], [9]]))
def test_packed_annotations_equal_checking_each_one_in_python(
        tmp_path: Path, annotations: list[dict[str, Any]], training: bool,
        chosen: list[int] | None) -> None:
    (tmp_path / "images").mkdir(exist_ok=True)
    for image_id in IMAGE_IDS[:-1]:
        (tmp_path / "images" / f"{image_id}.png").touch()
    content = {"images": [{"id": i, "file_name": f"{i}.png", "height": HEIGHT, "width": WIDTH,
                           "license": 3} for i in IMAGE_IDS],
               "categories": CATEGORIES, "annotations": annotations}
    dataset = _load(tmp_path, content, chosen, training)
    content = json.loads((tmp_path / "instances.json").read_text())
    expected, skipped = checked_in_python(content, chosen or [2, 5, 9], set(IMAGE_IDS[:-1]))
    kept_ids = [i for i, kept in expected.items()
                if not training or any(not a["iscrowd"] for a in kept)]
    assert dataset.image_ids == kept_ids
    for image_id, kept in expected.items():
        # repr: values *and* types (an int coordinate stays an int, nan stays nan)
        assert repr(dataset.annotations_of(image_id)) == repr(kept)
    for index, image_id in enumerate(kept_ids):
        item = dataset.describe(index)
        assert item["image_id"] == image_id and repr(item["annotations"]) == repr(expected[image_id])
    assert {r: ids for r, ids in dataset.skipped_ids.items() if ids} == \
        {r: ids for r, ids in skipped.items() if r != "excluded"}
    assert dataset.num_excluded_by_category == len(skipped.get("excluded", []))
    assert dataset.images == [image for image in content["images"] if image["id"] in kept_ids]
    assert dataset.image_sizes.tolist() == [[HEIGHT, WIDTH]] * len(kept_ids)


def test_packed_records_give_back_each_record_unchanged() -> None:
    records = [[{"a": 1, "b": [1.5, 2]}], [], [{"counts": "0`5", "size": [2, 3]}, None]]
    packed = PackedRecords(records)
    assert [packed[i] for i in range(3)] == records and packed[-1] == records[-1]
    assert packed.offsets.dtype == np.int64 and packed.buffer.dtype == np.uint8
    assert packed.nbytes == packed.buffer.nbytes + 4 * 8
    sliced = PackedRecords.from_slices(["x", "y", "z"], np.array([0, 2, 2, 3]))
    assert list(sliced) == [["x", "y"], [], ["z"]]


GOOD = {"id": 1, "image_id": 10, "category_id": 5, "bbox": [1, 1, 3, 3],
        "segmentation": [[1, 1, 4, 1, 4, 4]]}
# one change each, alone in a clean file (a file-wide oddity elsewhere would send every row to
# the Python check and hide a screen that lets this one through)
SINGLE_CHANGES = [
    {"segmentation": [[1, 1, 2, 2, 3, True]]}, {"segmentation": [[1, 1, 2, 2, 3, "3"]]},
    {"segmentation": [[1, 1, 2, 2, 3, None]]}, {"segmentation": [[1, 1, 2, 2, 3, float("nan")]]},
    {"segmentation": [[1, 1, 2, 2, 3]]}, {"segmentation": [[1, 1, 2, 2]]},
    {"segmentation": [[1, 1, 2, 2, 3, 3], 7]}, {"segmentation": []},
    {"segmentation": [[1, 1, 2, 2, 3, 2 ** 60]]}, {"segmentation": "polygons"},
    {"bbox": [1, 1, 3, float("inf")]}, {"bbox": [1, True, 3, 3]}, {"bbox": [1, "1", 3, 3]},
    {"bbox": [1, 1, 3]}, {"bbox": [24, 1, 3, 3]}, {"bbox": [-3, 1, 3, 3]},
    {"bbox": [1, -3, 3, 3.0]}, {"bbox": [2 ** 60, 1, 3, 3]}, {"bbox": [1, 1, 0, 3]},
    {"keypoints": [1, 1, 2] * 3}, {"image_id": 77}, {"category_id": 4}, {"image_id": 13},
    {"id": 2}, {"id": 2 ** 70},
]


@pytest.mark.parametrize("change", SINGLE_CHANGES, ids=lambda change: repr(change)[:40])
def test_a_single_bad_value_in_a_clean_file_is_judged_as_in_python(
        tmp_path: Path, change: dict[str, Any]) -> None:
    (tmp_path / "images").mkdir()
    for image_id in IMAGE_IDS[:-1]:
        (tmp_path / "images" / f"{image_id}.png").touch()
    annotations = [dict(GOOD, id=2 + i, image_id=11 + i % 2) for i in range(6)]
    annotations.insert(3, dict(GOOD, **change))
    content = {"images": [{"id": i, "file_name": f"{i}.png", "height": HEIGHT, "width": WIDTH}
                          for i in IMAGE_IDS], "categories": CATEGORIES,
               "annotations": annotations}
    dataset = _load(tmp_path, content, None, training=False)
    content = json.loads((tmp_path / "instances.json").read_text())
    expected, skipped = checked_in_python(content, [2, 5, 9], set(IMAGE_IDS[:-1]))
    for image_id, kept in expected.items():
        assert repr(dataset.annotations_of(image_id)) == repr(kept)
    assert {r: ids for r, ids in dataset.skipped_ids.items() if ids} == skipped


def test_an_image_id_past_64_bits_is_one_error_naming_the_file_and_id(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").touch()
    content = {"images": [{"id": 2 ** 70, "file_name": "a.png", "height": 4, "width": 4}],
               "categories": CATEGORIES, "annotations": []}
    with pytest.raises(PlugrcnnError, match=r"instances\.json: image id 1180591620717411303424 "
                                            r"does not fit in 64 bits"):
        _load(tmp_path, content, None, training=False)
