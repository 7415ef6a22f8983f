"""The synthetic data set: deterministic, COCO-valid, annotations describe what is visible."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from PIL import Image

from plugrcnn.data.synthetic import generate_synthetic_coco
from plugrcnn.data.synthetic_geometry import FIGURE_FLIP_PAIRS, FIGURE_KEYPOINT_NAMES


def _load(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _visible_mask(annotation: dict[str, Any], height: int, width: int) -> np.ndarray:
    segmentation = annotation["segmentation"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pycocotools vs numpy 2
        if isinstance(segmentation, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
        elif isinstance(segmentation["counts"], list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = dict(segmentation, counts=segmentation["counts"].encode("ascii"))
        return mask_utils.decode(rle).astype(bool)


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate_synthetic_coco(tmp_path / name, seed=seed, num_train=3, num_val=1,
                                image_size=(64, 80))
    first, second, other = (_tree_bytes(tmp_path / n) for n in "abc")
    assert len(first) == 3 + 1 + 3  # 4 PNGs, 2 instances files, the meta file
    assert first == second
    assert first.keys() == other.keys()
    assert first["train/000001.png"] != other["train/000001.png"]


def test_layout_categories_and_images(synthetic: dict[str, Any]) -> None:
    train = _load(synthetic["splits"]["train"]["instances"])
    val = _load(synthetic["splits"]["val"]["instances"])
    assert [c["id"] for c in train["categories"]] == [1, 3, 7, 9]  # not contiguous on purpose
    figure = train["categories"][-1]
    assert figure["keypoints"] == list(FIGURE_KEYPOINT_NAMES)
    assert all(1 <= i <= len(FIGURE_KEYPOINT_NAMES) for pair in figure["skeleton"] for i in pair)
    assert synthetic["flip_pairs"] == [list(p) for p in FIGURE_FLIP_PAIRS]
    assert [im["id"] for im in train["images"]] == [1, 2, 3, 4, 5, 6]
    assert [im["id"] for im in val["images"]] == [7, 8, 9]  # ids unique across splits
    ids = [a["id"] for a in train["annotations"] + val["annotations"]]
    assert len(ids) == len(set(ids))
    image = Image.open(Path(synthetic["splits"]["val"]["image_root"]) / "000008.png")
    assert image.mode == "RGB" and image.size == (96, 96)


def test_boxes_and_areas_come_from_the_visible_masks_which_never_overlap(
        synthetic: dict[str, Any]) -> None:
    content = _load(synthetic["splits"]["train"]["instances"])
    coverage = {im["id"]: np.zeros((96, 96), dtype=int) for im in content["images"]}
    kinds = set()
    for annotation in content["annotations"]:
        mask = _visible_mask(annotation, 96, 96)
        rows, cols = np.nonzero(mask)
        expected_bbox = [cols.min(), rows.min(), cols.max() + 1 - cols.min(),
                         rows.max() + 1 - rows.min()]
        assert annotation["bbox"] == pytest.approx(expected_bbox)
        assert annotation["area"] == mask.sum()
        coverage[annotation["image_id"]] += mask
        segmentation = annotation["segmentation"]
        kind = ("polygon" if isinstance(segmentation, list) else
                "uncompressed" if isinstance(segmentation["counts"], list) else "rle")
        kinds.add(kind)
        assert (annotation["iscrowd"] == 1) == (kind == "uncompressed")  # COCO's crowd format
    # later objects occlude earlier ones: the visible parts partition the covered pixels
    assert max(c.max() for c in coverage.values()) == 1
    assert kinds == {"polygon", "rle", "uncompressed"}  # image index 3 holds a crowd


def test_figure_keypoints_follow_the_coco_conventions(tmp_path: Path) -> None:
    info = generate_synthetic_coco(tmp_path, seed=1, num_train=24, num_val=0, image_size=96)
    content = _load(info["splits"]["train"]["instances"])
    names = list(FIGURE_KEYPOINT_NAMES)
    figures = [a for a in content["annotations"] if a["category_id"] == 9]
    assert figures and all("keypoints" not in a for a in content["annotations"]
                           if a["category_id"] != 9)
    seen_flags = set()
    for figure in figures:
        keypoints = np.array(figure["keypoints"]).reshape(-1, 3)
        flags = keypoints[:, 2]
        seen_flags |= set(flags.tolist())
        assert figure["num_keypoints"] == int((flags > 0).sum())
        assert np.all(keypoints[flags == 0, :2] == 0)
        # v=2 lies on the figure's own visible mask, v=1 is covered by a later object
        mask = _visible_mask(figure, 96, 96)
        labelled = keypoints[flags > 0]
        on_mask = mask[labelled[:, 1].astype(int), labelled[:, 0].astype(int)]
        assert np.array_equal(on_mask, labelled[:, 2] == 2)
        # the figure faces the viewer: its left side is on the image's right
        for left, right in FIGURE_FLIP_PAIRS:
            i, j = names.index(left), names.index(right)
            if flags[i] > 0 and flags[j] > 0:
                assert keypoints[i, 0] > keypoints[j, 0]
    assert seen_flags == {0, 1, 2}


def test_split_keypoints_file_moves_keypoints_out_of_instances(
        synthetic: dict[str, Any], synthetic_split: dict[str, Any]) -> None:
    whole = _load(synthetic["splits"]["train"]["instances"])
    instances = _load(synthetic_split["splits"]["train"]["instances"])
    keypoints = _load(synthetic_split["splits"]["train"]["person_keypoints"])
    assert [a["id"] for a in instances["annotations"]] == [a["id"] for a in whole["annotations"]]
    assert not any("keypoints" in a or "num_keypoints" in a for a in instances["annotations"])
    assert not any("keypoints" in c for c in instances["categories"])
    assert keypoints["annotations"] == [a for a in whole["annotations"] if "keypoints" in a]
    assert [c["id"] for c in keypoints["categories"]] == [9]
    assert keypoints["images"] == instances["images"] == whole["images"]
