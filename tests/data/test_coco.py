"""CocoDataset: labels <-> category ids, items, crowd handling, training vs evaluation, and the
instances + person_keypoints merge."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO

from plugrcnn.data.coco import CocoDataset, DatasetWarning
from plugrcnn.errors import PlugrcnnError


def _dataset(info: dict[str, Any], split: str = "train", **kwargs: Any) -> CocoDataset:
    files = info["splits"][split]
    return CocoDataset.from_files(files["instances"], files["image_root"],
                                  keypoints_json=files["person_keypoints"], **kwargs)


def _all_annotations(dataset: CocoDataset) -> list[dict[str, Any]]:
    return [a for image_id in dataset.image_ids for a in dataset.annotations_of(image_id)]


def test_category_ids_map_to_contiguous_labels_and_back(synthetic: dict[str, Any]) -> None:
    dataset = _dataset(synthetic, training=True)
    assert dataset.category_id_to_label == {1: 1, 3: 2, 7: 3, 9: 4}
    assert dataset.label_to_category_id == {1: 1, 2: 3, 3: 7, 4: 9}
    assert dataset.category_names == {1: "circle", 2: "rectangle", 3: "triangle", 4: "figure"}
    assert dataset.num_classes == 4
    assert [cid for cid, category in dataset.categories.items() if category.get("keypoints")] == [9]
    for annotation in _all_annotations(dataset):
        assert dataset.label_to_category_id[annotation["label"]] == annotation["category_id"]


def test_chosen_category_ids_set_the_label_order(synthetic: dict[str, Any]) -> None:
    dataset = _dataset(synthetic, training=False, category_ids=[9, 1])
    assert dataset.category_id_to_label == {9: 1, 1: 2}
    labels = {a["label"] for a in _all_annotations(dataset)}
    assert labels <= {1, 2}
    total = len(json.loads(Path(synthetic["splits"]["train"]["instances"]).read_text())
                ["annotations"])
    assert dataset.num_excluded_by_category == total - len(_all_annotations(dataset))
    assert [c["id"] for c in dataset.to_coco_dict()["categories"]] == [9, 1]
    with pytest.raises(PlugrcnnError, match="category id 4 "):
        _dataset(synthetic, training=False, category_ids=[4])


def test_item_holds_the_decoded_image_and_completed_annotations(
        synthetic: dict[str, Any]) -> None:
    dataset = _dataset(synthetic, split="val", training=False)
    sample = dataset[1]
    assert sample["image_id"] == 8 and sample["file_name"] == "000008.png"
    expected = np.array(Image.open(Path(synthetic["splits"]["val"]["image_root"]) / "000008.png"))
    assert sample["image"].dtype == torch.uint8
    assert torch.equal(sample["image"], torch.from_numpy(expected).permute(2, 0, 1))
    raw = [a for a in json.loads(Path(synthetic["splits"]["val"]["instances"]).read_text())
           ["annotations"] if a["image_id"] == 8]
    assert [a["id"] for a in sample["annotations"]] == [a["id"] for a in raw]
    for annotation, original in zip(sample["annotations"], raw):
        assert {k: annotation[k] for k in original} == original  # every original field kept
        x, y, w, h = original["bbox"]
        assert annotation["box"] == pytest.approx([x, y, x + w, y + h])


def test_missing_optional_fields_are_filled_and_boxes_clipped(write_coco, coco_content) -> None:
    annotation = coco_content["annotations"][1]
    del annotation["iscrowd"], annotation["area"], annotation["num_keypoints"]
    annotation["bbox"] = [20, -2, 6, 12]  # sticks out right and top of the 16 x 24 image
    path = write_coco(coco_content)
    dataset = CocoDataset.from_files(path, path.parent / "images", training=True)
    completed = dataset.annotations_of(10)[1]
    assert completed["iscrowd"] == 0 and completed["area"] == 72.0
    assert completed["num_keypoints"] == 3
    assert completed["box"] == [20.0, 0.0, 24.0, 10.0]


def test_crowd_is_kept_but_training_drops_images_without_usable_annotations(
        write_coco, coco_content) -> None:
    coco_content["images"].append({"id": 12, "file_name": "c.png", "height": 16, "width": 24})
    path = write_coco(coco_content)
    image_root = path.parent / "images"
    evaluation = CocoDataset.from_files(path, image_root, training=False)
    assert evaluation.image_ids == [10, 11, 12]
    assert evaluation.annotations_of(11)[0]["iscrowd"] == 1
    training = CocoDataset.from_files(path, image_root, training=True)
    assert training.image_ids == [10]  # 11 has only a crowd, 12 nothing
    assert training.num_images_without_annotations == 2
    assert sum(training.skipped.values()) == 0


def test_merged_instances_and_keypoints_equal_the_single_file(
        synthetic: dict[str, Any], synthetic_split: dict[str, Any]) -> None:
    single = _dataset(synthetic, training=True)
    merged = _dataset(synthetic_split, training=True)
    assert synthetic_split["splits"]["train"]["person_keypoints"] is not None
    assert merged.image_ids == single.image_ids
    assert merged.categories == single.categories
    assert merged.categories[9]["flip_pairs"][0] == ["left_elbow", "right_elbow"]
    merged_annotations = _all_annotations(merged)
    assert merged_annotations == _all_annotations(single)
    assert any("keypoints" in a for a in merged_annotations)


def test_merge_adds_keypoint_only_annotations_and_counts_conflicts(
        write_coco, coco_content) -> None:
    keypoint_file = {
        "images": coco_content["images"],
        "categories": [{"id": 2, "name": "walker", "keypoints": ["a", "b", "c"]}],
        "annotations": [
            {"id": 101, "image_id": 10, "category_id": 2, "keypoints": [1, 1, 2] * 3,
             "num_keypoints": 3},  # attaches to the instances annotation 101
            {"id": 100, "image_id": 11, "category_id": 2, "keypoints": [1, 1, 2] * 3},  # clash
            {"id": 200, "image_id": 11, "category_id": 2, "bbox": [1, 1, 4, 4],
             "keypoints": [2, 2, 2, 0, 0, 0, 3, 3, 1]},  # only in the keypoints file
        ],
    }
    del coco_content["categories"][1]["keypoints"], coco_content["categories"][1]["skeleton"]
    instances = write_coco(coco_content)
    keypoints = write_coco(keypoint_file, name="person_keypoints.json", images=False)
    with pytest.warns(DatasetWarning) as record:
        dataset = CocoDataset.from_files(instances, instances.parent / "images",
                                         keypoints_json=keypoints, training=False)
    messages = [str(w.message) for w in record]
    assert any("person_keypoints.json: annotation id 100 (image id 11)" in m for m in messages)
    assert messages[-1].endswith("skipped 1 annotation(s): merge_conflict=1; fix the data to "
                                 "use them")
    assert dataset.skipped["merge_conflict"] == 1 and dataset.skipped_ids["merge_conflict"] == [100]
    assert dataset.categories[2]["keypoints"] == ["a", "b", "c"]
    attached = dataset.annotations_of(10)[1]
    assert attached["keypoints"] == [1, 1, 2] * 3 and attached["bbox"] == [10, 1, 6, 12]
    added = [a for a in dataset.annotations_of(11) if a["id"] == 200][0]
    assert added["num_keypoints"] == 2 and added["label"] == 1
    assert [a["id"] for a in dataset.annotations_of(10)] == [100, 101]  # 100 untouched


def test_merge_rejects_a_keypoints_file_with_other_images(write_coco, coco_content) -> None:
    keypoint_file = {"images": [{"id": 99, "file_name": "z.png", "height": 16, "width": 24}],
                     "categories": [], "annotations": []}
    instances = write_coco(coco_content)
    keypoints = write_coco(keypoint_file, name="kp.json", images=False)
    with pytest.raises(PlugrcnnError, match=r"kp\.json: 1 image id\(s\) not in .*\[99\]"):
        CocoDataset.from_files(instances, instances.parent / "images",
                               keypoints_json=keypoints, training=True)
    keypoint_file["images"] = coco_content["images"][:1]
    keypoints = write_coco(keypoint_file, name="kp.json", images=False)
    with pytest.warns(DatasetWarning, match="1 fewer image"):
        CocoDataset.from_files(instances, instances.parent / "images",
                               keypoints_json=keypoints, training=True)


def test_ground_truth_dict_loads_in_pycocotools(synthetic: dict[str, Any]) -> None:
    dataset = _dataset(synthetic, split="val", training=False)
    ground_truth = COCO()
    ground_truth.dataset = dataset.to_coco_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ground_truth.createIndex()
    assert sorted(ground_truth.getImgIds()) == dataset.image_ids
    assert len(ground_truth.getAnnIds()) == len(_all_annotations(dataset))
    assert not any("label" in a or "box" in a for a in ground_truth.dataset["annotations"])
