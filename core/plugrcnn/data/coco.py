"""A COCO-format data set: images plus validated annotations, category ids mapped to labels.

Behaviour on bad input (issue 4, point 8), in one place:
- a file that is not COCO: PlugrcnnError from `load_coco_json` (file, key, record index / id);
- a bad annotation (unknown image or category, bad bbox / segmentation / keypoints, repeated
  id, keypoints-merge conflict): skipped with a DatasetWarning naming the file, annotation id and
  image id, and counted in `dataset.skipped[reason]` (the ids in `dataset.skipped_ids`); one
  summary warning at the end of construction;
- a missing image file: found at construction (a cheap existence check), the image and its
  annotations skipped with a warning, counted in `dataset.skipped_images["missing_file"]`;
- a corrupt image file, or one whose decoded size differs from the JSON's height / width: by
  default found when loaded, and `__getitem__` raises PlugrcnnError naming the file and image
  id; with `check_images=True` every image is decoded at construction and such an image is
  skipped like a missing one (`skipped_images["corrupt_file"]`);
- with `check_headers=True` (what `train` and `eval` use) every image's header alone is read at
  construction (fast: no pixel is decoded): a file that is not an image, an image over the pixel
  limit, too small or too thin for the model, or of another size than the JSON says is skipped
  like a corrupt one. Pixel data that is damaged after a good header is still found only when
  loaded; in a DataLoader worker its PlugrcnnError reaches the CLI as the same one line.
Images are read by `plugrcnn.inference.images` (8-bit RGB, first frame, pixel limit).
Crowd annotations are kept (`iscrowd=1`: to be ignored, never foreground). Training skips images
without a usable non-crowd annotation (counted in `num_images_without_annotations`, not a
warning: COCO has such images by design); evaluation keeps every image.

At COCO scale (train2017: 118k images, 860k annotations) the checks run on all annotations at
once (`coco_screen`: numpy, Python only for the rows it marks), and the kept images and
annotations are stored pickled in flat numpy buffers (`coco_packed`), unpickled per item: forked
DataLoader workers share them instead of copying every page their reference counts touch.
`benchmarks/coco_scale.py` measures both against pycocotools.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from plugrcnn.data.coco_annotations import SkipLog, check_annotation, complete_annotation
from plugrcnn.data.coco_packed import PackedRecords
from plugrcnn.data.coco_screen import masks_expected_in, screen_annotations
from plugrcnn.data.coco_json import (
    CocoDict,
    DatasetWarning,
    cyclic_gc_paused,
    load_coco_json,
    merge_keypoints_into_instances,
)
from plugrcnn.errors import PlugrcnnError
from plugrcnn.inference.images import DEFAULT_MAX_IMAGE_PIXELS, read_header, read_image

__all__ = ["CocoDataset", "DatasetWarning", "load_coco_json"]


def _repeated_ids(annotations: list[dict[str, Any]]) -> list[bool]:
    """Per annotation: whether an earlier one has its id (ids of any size)."""
    seen: set[int] = set()
    repeated = []
    for annotation in annotations:
        repeated.append(annotation["id"] in seen)
        seen.add(annotation["id"])
    return repeated


class CocoDataset(Dataset):
    """COCO-format images and annotations; see the module docstring for bad-input handling.

    Labels: the chosen category ids (all, sorted, by default; else `category_ids` in the given
    order) become labels 1..K, 0 being the background.

    Each item is {"image": uint8 (3, H, W) RGB, "image_id", "file_name", "height", "width",
    "annotations": [validated COCO annotation with every original field, plus "label" (int)
    and "box" (XYXY floats, clipped to the image)]}, passed through `transform` if given.
    """

    def __init__(
        self,
        coco: CocoDict,
        image_root: str | Path,
        *,
        training: bool,
        source: str = "<COCO dict>",
        category_ids: Sequence[int] | None = None,
        check_images: bool = False,
        check_headers: bool = False,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        resize_to: tuple[int, int] | None = None,
        transform: Callable[[dict[str, Any]], Any] | None = None,
        merge_conflicts: Sequence[tuple[dict[str, Any], str]] = (),
    ) -> None:
        self.image_root = Path(image_root)
        self.max_image_pixels = max_image_pixels
        self.resize_to = resize_to  # the model's (smallest min_size, max_size): too-thin check
        self.training = training
        self.source = source
        self.transform = transform
        self._log = SkipLog(source)
        self._build_category_maps(coco["categories"], category_ids)
        known_images = {image["id"]: image for image in coco["images"]}
        available = self._available_images(known_images, check_images, check_headers)
        for annotation, detail in merge_conflicts:
            self._log.skip_annotation(annotation, "merge_conflict", detail)
        rows = self._validated_annotations(coco["annotations"], known_images, available)
        self._store(coco["annotations"], rows, available)
        self._log.summarise()
        self.skipped = self._log.annotations
        self.skipped_ids = self._log.annotation_ids
        self.skipped_images = self._log.images
        self.skipped_image_ids = self._log.image_ids

    @classmethod
    def from_files(
        cls,
        instances_json: str | Path,
        image_root: str | Path,
        *,
        keypoints_json: str | Path | None = None,
        training: bool,
        category_ids: Sequence[int] | None = None,
        check_images: bool = False,
        check_headers: bool = False,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        resize_to: tuple[int, int] | None = None,
        transform: Callable[[dict[str, Any]], Any] | None = None,
    ) -> CocoDataset:
        """Load an instances file, merged with a person_keypoints-style file if given."""
        with cyclic_gc_paused():  # until the parsed file is freed (see cyclic_gc_paused)
            return cls._from_files(instances_json, image_root, keypoints_json, training=training,
                                   category_ids=category_ids, check_images=check_images,
                                   check_headers=check_headers, max_image_pixels=max_image_pixels,
                                   resize_to=resize_to, transform=transform)

    @classmethod
    def _from_files(cls, instances_json: str | Path, image_root: str | Path,
                    keypoints_json: str | Path | None, **kwargs: Any) -> CocoDataset:
        instances_path = Path(instances_json)
        coco = load_coco_json(instances_path)
        source, conflicts = str(instances_path), []
        if keypoints_json is not None:
            keypoints_path = Path(keypoints_json)
            coco, conflicts = merge_keypoints_into_instances(
                coco, load_coco_json(keypoints_path), instances_path, keypoints_path)
            source = f"{instances_path} + {keypoints_path}"
        return cls(coco, image_root, source=source, merge_conflicts=conflicts, **kwargs)

    def _build_category_maps(self, categories: list[dict[str, Any]],
                             category_ids: Sequence[int] | None) -> None:
        self.categories = {category["id"]: category for category in categories}
        chosen = sorted(self.categories) if category_ids is None else list(category_ids)
        for category_id in chosen:
            if category_id not in self.categories:
                raise PlugrcnnError(f"{self.source}: category id {category_id} asked for is not "
                                    f"in the file's categories {sorted(self.categories)}")
        if len(set(chosen)) != len(chosen):
            raise PlugrcnnError(f"{self.source}: category ids {list(chosen)} repeat an id")
        self.category_id_to_label = {cid: label for label, cid in enumerate(chosen, start=1)}
        self.label_to_category_id = {label: cid for cid, label in
                                     self.category_id_to_label.items()}
        self.category_names = {label: self.categories[cid]["name"]
                               for label, cid in self.label_to_category_id.items()}

    @property
    def num_classes(self) -> int:
        """Foreground classes K (labels 1..K)."""
        return len(self.label_to_category_id)

    def _available_images(self, images: dict[int, dict[str, Any]], check_images: bool,
                          check_headers: bool) -> dict[int, dict[str, Any]]:
        available: dict[int, dict[str, Any]] = {}
        root = str(self.image_root)
        for image_id in sorted(images):
            image = images[image_id]
            if not os.path.exists(os.path.join(root, image["file_name"])):  # no Path: 118k stats
                path = self.image_root / image["file_name"]
                self._log.skip_image(image, str(path), "missing_file", "image file not found")
                continue
            if check_images or check_headers:
                path = self.image_root / image["file_name"]
                try:
                    self._decode(image) if check_images else self._check_header(image)
                except PlugrcnnError as error:
                    self._log.skip_image(image, str(path), "corrupt_file", str(error))
                    continue
            available[image_id] = image
        return available

    def _validated_annotations(self, annotations: list[dict[str, Any]],
                               known_images: dict[int, dict[str, Any]],
                               available: dict[int, dict[str, Any]]) -> list[int]:
        """Indices of the annotations kept, in file order; the rest skipped and logged.

        `screen_annotations` passes most rows at once; the rows it marks (and every row when
        the ids do not fit int64) are checked here one by one, in file order.
        """
        self.num_excluded_by_category = 0
        masks_expected = masks_expected_in(annotations)
        try:
            screen = screen_annotations(
                annotations, np.array(sorted(known_images), dtype=np.int64),
                np.array(list(available), dtype=np.int64),
                np.array([(i["height"], i["width"]) for i in available.values()],
                         dtype=np.int64).reshape(-1, 2),
                np.array(sorted(self.categories), dtype=np.int64),
                np.array(list(self.category_id_to_label), dtype=np.int64), masks_expected)
        except (OverflowError, TypeError, ValueError):  # ids past int64: all rows in Python
            screen = None
        if screen is None:
            accepted, exact_rows = np.zeros(len(annotations), dtype=bool), range(len(annotations))
            duplicate = _repeated_ids(annotations)
        else:
            accepted = ~screen.exact & screen.chosen
            self.num_excluded_by_category = int((~screen.exact & ~screen.chosen).sum())
            exact_rows, duplicate = np.flatnonzero(screen.exact).tolist(), screen.duplicate
        for row in exact_rows:
            accepted[row] = self._check_one(annotations[row], bool(duplicate[row]), known_images,
                                            available, masks_expected)
        return np.flatnonzero(accepted).tolist()

    def _check_one(self, annotation: dict[str, Any], duplicate: bool,
                   known_images: dict[int, dict[str, Any]],
                   available: dict[int, dict[str, Any]], masks_expected: bool) -> bool:
        """Whether to keep one annotation; if not, log why (or count it as excluded)."""
        image = known_images.get(annotation["image_id"])
        category = self.categories.get(annotation["category_id"])
        if duplicate:
            self._log.skip_annotation(annotation, "duplicate_id", "annotation id repeats")
        elif image is None:
            self._log.skip_annotation(annotation, "unknown_image", "image id "
                                      f"{annotation['image_id']} is not in the images list")
        elif category is None:
            self._log.skip_annotation(annotation, "unknown_category", "category id "
                                      f"{annotation['category_id']} is not in categories")
        elif annotation["image_id"] not in available:
            self._log.skip_annotation(annotation, "missing_image_file",
                                      "its image was skipped", warn=False)
        elif annotation["category_id"] not in self.category_id_to_label:
            self.num_excluded_by_category += 1  # left out on purpose by category_ids
        else:
            problem = check_annotation(annotation, image, len(category.get("keypoints") or []),
                                       masks_expected)
            if problem is None:
                return True
            self._log.skip_annotation(annotation, *problem)
        return False

    def _store(self, annotations: list[dict[str, Any]], rows: list[int],
               available: dict[int, dict[str, Any]]) -> None:
        """Pack the available images and their kept annotations (see `coco_packed`).

        Items are the available images (sorted by id); training keeps only those with a
        non-crowd annotation. `_sizes` (A, 2) holds each available image's (height, width).
        """
        try:
            self._available_ids = np.array(list(available), dtype=np.int64)
        except OverflowError:
            raise PlugrcnnError(f"{self.source}: image id {max(available, key=abs)} does not fit "
                                "in 64 bits; renumber the images") from None
        position = {image_id: index for index, image_id in enumerate(available)}
        owners = np.array([position[annotations[row]["image_id"]] for row in rows],
                          dtype=np.int64)
        order = np.argsort(owners, kind="stable")  # by image, file order within an image
        kept = [annotations[row] for row in np.asarray(rows, dtype=np.int64)[order].tolist()]
        bounds = np.zeros(len(available) + 1, dtype=np.int64)
        np.cumsum(np.bincount(owners, minlength=len(available)), out=bounds[1:])
        self._annotation_records = PackedRecords.from_slices(kept, bounds)
        self._image_records = PackedRecords(available.values())
        self._sizes = np.array([(i["height"], i["width"]) for i in available.values()],
                               dtype=np.int64).reshape(-1, 2)
        if not self.training:
            self.num_images_without_annotations = 0
            self._items = np.arange(len(available), dtype=np.int64)
            return
        non_crowd = np.fromiter((not a.get("iscrowd", 0) for a in kept), dtype=bool,
                                count=len(kept))
        with_non_crowd = np.bincount(owners[order][non_crowd], minlength=len(available)) > 0
        self._items = np.flatnonzero(with_non_crowd)
        self.num_images_without_annotations = len(available) - len(self._items)

    @property
    def images(self) -> list[dict[str, Any]]:
        """The items' image records (fresh dicts, unpickled from the shared buffer)."""
        return [self._image_records[index] for index in self._items.tolist()]

    @property
    def image_sizes(self) -> np.ndarray:
        """(len(self), 2) int64: each item's (height, width) from the JSON, e.g. to group
        images by aspect ratio without unpickling them."""
        return self._sizes[self._items]

    @property
    def nbytes(self) -> int:
        """Bytes the data set's records take (shared by forked DataLoader workers)."""
        return (self._annotation_records.nbytes + self._image_records.nbytes
                + self._available_ids.nbytes + self._sizes.nbytes + self._items.nbytes)

    @property
    def image_ids(self) -> list[int]:
        return self._available_ids[self._items].tolist()

    def annotations_of(self, image_id: int) -> list[dict[str, Any]]:
        """The validated annotations of one available image (fresh dicts, completed with
        defaults, "label" and the clipped XYXY "box")."""
        index = int(np.searchsorted(self._available_ids, image_id))
        if index == len(self._available_ids) or self._available_ids[index] != image_id:
            raise KeyError(image_id)
        return self._completed_annotations(index)

    def _completed_annotations(self, index: int) -> list[dict[str, Any]]:
        height, width = self._sizes[index].tolist()
        return [complete_annotation(annotation, self.category_id_to_label[annotation["category_id"]],
                                    width, height)
                for annotation in self._annotation_records[index]]

    def _check_size(self, image: dict[str, Any], path: Path, height: int, width: int) -> None:
        if (height, width) != (image["height"], image["width"]):
            raise PlugrcnnError(f"{path}: image id {image['id']} is {height}x{width} pixels but "
                                f"{self.source} says {image['height']}x{image['width']}; fix "
                                "height/width")

    def _check_header(self, image: dict[str, Any]) -> None:
        path = self.image_root / image["file_name"]
        try:
            header = read_header(path, self.max_image_pixels, self.resize_to)
        except PlugrcnnError as error:
            raise PlugrcnnError(f"{path}: image id {image['id']}: "
                                f"{str(error).removeprefix(f'{path}: ')}") from None
        self._check_size(image, path, header.height, header.width)

    def _decode(self, image: dict[str, Any]) -> torch.Tensor:
        """uint8 (3, H, W) RGB of one image of the data set."""
        path = self.image_root / image["file_name"]
        try:
            pixels = read_image(path, self.max_image_pixels, self.resize_to)
        except PlugrcnnError as error:
            reason = str(error).removeprefix(f"{path}: ").removeprefix("cannot decode image (")
            reason = reason[:-1] if reason.endswith(")") and "(" not in reason else reason
            raise PlugrcnnError(f"{path}: cannot decode image id {image['id']} ({reason}); "
                                "replace the file or remove the image from the JSON") from None
        self._check_size(image, path, int(pixels.shape[1]), int(pixels.shape[2]))
        return pixels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Any:
        image = self._image_records[int(self._items[index])]
        sample = {"image": self._decode(image), **self.describe(index, image)}
        return self.transform(sample) if self.transform is not None else sample

    def describe(self, index: int, image: dict[str, Any] | None = None) -> dict[str, Any]:
        """Item `index` without its pixels: image_id, file_name, height, width, annotations.

        This is all of `__getitem__` but the image decoding (the COCO-scale benchmark's
        workers call it to touch every image's annotations the way training does).
        """
        available_index = int(self._items[index])
        if image is None:
            image = self._image_records[available_index]
        return {"image_id": image["id"], "file_name": image["file_name"],
                "height": image["height"], "width": image["width"],
                "annotations": self._completed_annotations(available_index)}

    def to_coco_dict(self) -> CocoDict:
        """The ground truth as COCO would see it, for COCOeval: this data set's images, its
        valid annotations (crowd included, without "label" / "box") and chosen categories."""
        annotations = [{k: v for k, v in annotation.items() if k not in ("label", "box")}
                       for index in self._items.tolist()
                       for annotation in self._completed_annotations(index)]
        categories = [self.categories[cid] for cid in self.category_id_to_label]
        return {"images": self.images, "annotations": annotations, "categories": categories}
