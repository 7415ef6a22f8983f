"""The embedded default data set: a deterministic synthetic COCO-format data set.

`generate_synthetic_coco` writes PNG images and COCO JSON files: circles, rectangles and
triangles with masks, plus a stick-figure category with named keypoints, on textured
backgrounds, with overlaps and occlusion. The same seed always gives the same bytes.

How the annotations are made, so that they describe exactly what the image shows:
- every object is a set of polygons, rasterised with pycocotools (the same rasteriser that
  reads the polygons back), and painted in order: later objects occlude earlier ones;
- the annotation describes the VISIBLE part: its box and area come from the visible mask;
  an unoccluded object inside the image keeps its polygons (most of them; some are written as
  compressed RLE instead, so both formats are exercised), an occluded one is written as RLE;
- a placement that would hide more than about half of an earlier object is re-drawn;
- about one image in ten holds a crowd (a cluster of small shapes of one category), annotated
  once with iscrowd=1 and an uncompressed RLE, as COCO does;
- a figure keypoint is v=2 when visible, v=1 when a later object covers it, v=0 (and x=y=0)
  when it falls outside the image.
Category ids are deliberately not contiguous (1, 3, 7, 9).
"""
from __future__ import annotations

import colorsys
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
from PIL import Image
from tqdm import tqdm

from plugrcnn.data.synthetic_geometry import (
    FIGURE_FLIP_PAIRS,
    FIGURE_KEYPOINT_NAMES,
    FIGURE_SKELETON,
    Polygon,
    circle_polygon,
    figure_keypoints,
    figure_polygons,
    rectangle_polygon,
    triangle_polygon,
)
from plugrcnn.outputs import write_text_atomic

CIRCLE, RECTANGLE, TRIANGLE, FIGURE = 1, 3, 7, 9
SHAPE_IDS = (CIRCLE, RECTANGLE, TRIANGLE)
CATEGORY_NAMES = {CIRCLE: "circle", RECTANGLE: "rectangle", TRIANGLE: "triangle", FIGURE: "figure"}
_SPLIT_CODES = {"train": 0, "val": 1}
_FIGURE_PROBABILITY = 0.35
_RLE_PROBABILITY = 0.1  # unoccluded objects written as RLE instead of polygons
_OVERLAP_PROBABILITY = 0.4  # else an object is placed clear of the earlier ones
_MIN_VISIBLE_FRACTION = 0.55
_CROWD_EVERY = 10  # image index % 10 == 3 holds a crowd


@dataclass
class _PlacedObject:
    category_id: int
    polygons: list[Polygon]
    colour: np.ndarray  # (3,) float RGB 0..255
    full_mask: np.ndarray  # (H, W) bool, the whole object as painted
    visible: np.ndarray  # (H, W) bool, what later objects leave uncovered
    keypoints: np.ndarray | None = None  # (K, 2) figures only
    iscrowd: int = 0


def _rasterise(polygons: list[Polygon], height: int, width: int) -> np.ndarray:
    rles = mask_utils.frPyObjects(polygons, height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def _saturated_colour(rng: np.random.Generator) -> np.ndarray:
    rgb = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.6, 1.0), rng.uniform(0.65, 1.0))
    return np.array(rgb) * 255.0


def _textured_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Greyish tinted base + smooth coloured blobs + stripes + grain, (H, W, 3) float."""
    base = rng.uniform(70, 180) + rng.uniform(-20, 20, size=3)
    coarse = rng.uniform(0, 255, size=(max(height // 16, 2), max(width // 16, 2), 3))
    blobs = Image.fromarray(coarse.astype(np.uint8)).resize((width, height), Image.BICUBIC)
    blobs_amplitude = rng.uniform(0.15, 0.35)
    image = base + blobs_amplitude * (np.asarray(blobs, dtype=np.float64) - 127.5)
    yy, xx = np.mgrid[0:height, 0:width]
    angle, period = rng.uniform(0, np.pi), rng.uniform(6, 24)
    phase = (xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / period)
    image += rng.uniform(5, 18) * np.sin(phase)[..., None]
    image += rng.normal(0, 7, size=image.shape)
    return image


def _shape_polygons(category_id: int, rng: np.random.Generator, side: int, height: int,
                    width: int, size_range: tuple[float, float]) -> list[Polygon]:
    size = rng.uniform(*size_range) * side
    margin = size / 2.0
    cx, cy = rng.uniform(margin, width - margin), rng.uniform(margin, height - margin)
    angle = rng.uniform(0, np.pi)
    if category_id == CIRCLE:
        return [circle_polygon(cx, cy, size)]
    if category_id == RECTANGLE:
        aspect = rng.uniform(0.5, 1.0)
        return [rectangle_polygon(cx, cy, size * 0.9, size * 0.9 * aspect, angle)]
    return [triangle_polygon(cx, cy, size, angle, rng)]


def _figure(rng: np.random.Generator, side: int, height: int,
            width: int) -> tuple[list[Polygon], np.ndarray]:
    figure_height = rng.uniform(0.45, 0.7) * side
    half_span = 0.42 * figure_height
    hip_x = rng.uniform(half_span, width - half_span)
    top_y = rng.uniform(0, height - figure_height)
    if rng.random() < 0.1:  # sometimes the feet leave the image: keypoints with v=0
        top_y = height - figure_height * rng.uniform(0.75, 0.9)
    keypoints = figure_keypoints(rng, hip_x, top_y, figure_height)
    return figure_polygons(keypoints, figure_height), keypoints


def _crowd(rng: np.random.Generator, side: int, height: int,
           width: int) -> tuple[int, list[Polygon]]:
    """A cluster of 5-8 small shapes of one category inside a square of 35% of the side."""
    category_id = int(rng.choice(SHAPE_IDS))
    region = 0.35 * side
    x0, y0 = rng.uniform(0, width - region), rng.uniform(0, height - region)
    polygons: list[Polygon] = []
    for _ in range(int(rng.integers(5, 9))):
        size = rng.uniform(0.07, 0.11)
        for polygon in _shape_polygons(category_id, rng, side, int(region), int(region),
                                       (size, size)):
            polygons.append([round(v + (x0 if i % 2 == 0 else y0), 2)
                             for i, v in enumerate(polygon)])
    return category_id, polygons


def _keeps_earlier_visible(new_mask: np.ndarray, placed: list[_PlacedObject],
                           may_overlap: bool) -> bool:
    for earlier in placed:
        if not may_overlap and np.any(earlier.full_mask & new_mask):
            return False
        remaining = np.count_nonzero(earlier.visible & ~new_mask)
        if remaining < _MIN_VISIBLE_FRACTION * np.count_nonzero(earlier.full_mask):
            return False
    return True


def _place(placed: list[_PlacedObject], polygons: list[Polygon], category_id: int,
           rng: np.random.Generator, height: int, width: int,
           keypoints: np.ndarray | None = None, iscrowd: int = 0,
           may_overlap: bool = True) -> bool:
    mask = _rasterise(polygons, height, width)
    if np.count_nonzero(mask) < 16 or not _keeps_earlier_visible(mask, placed, may_overlap):
        return False
    for earlier in placed:
        earlier.visible &= ~mask
    placed.append(_PlacedObject(category_id, polygons, _saturated_colour(rng), mask, mask.copy(),
                                keypoints, iscrowd))
    return True


def _compose_objects(rng: np.random.Generator, height: int, width: int,
                     with_crowd: bool) -> list[_PlacedObject]:
    side = min(height, width)
    placed: list[_PlacedObject] = []
    if with_crowd:
        category_id, polygons = _crowd(rng, side, height, width)
        _place(placed, polygons, category_id, rng, height, width, iscrowd=1)
    for _ in range(int(rng.integers(1, 5))):
        is_figure = rng.random() < _FIGURE_PROBABILITY
        category_id = FIGURE if is_figure else int(rng.choice(SHAPE_IDS))
        may_overlap = rng.random() < _OVERLAP_PROBABILITY
        for _attempt in range(12):
            keypoints = None
            if is_figure:
                polygons, keypoints = _figure(rng, side, height, width)
            else:
                polygons = _shape_polygons(category_id, rng, side, height, width, (0.22, 0.6))
            if _place(placed, polygons, category_id, rng, height, width, keypoints,
                      may_overlap=may_overlap):
                break
    return placed


def _paint(rng: np.random.Generator, height: int, width: int,
           placed: list[_PlacedObject]) -> np.ndarray:
    image = _textured_background(rng, height, width)
    for obj in placed:
        grain = rng.normal(0, 6, size=(int(np.count_nonzero(obj.full_mask)), 3))
        image[obj.full_mask] = obj.colour + grain
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _uncompressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """COCO's crowd format: run lengths over the column-major mask, starting with zeros."""
    flat = mask.reshape(-1, order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], change])).tolist()
    return {"counts": counts, "size": [mask.shape[0], mask.shape[1]]}


def _keypoint_triplets(obj: _PlacedObject, height: int, width: int) -> list[float]:
    triplets: list[float] = []
    for x, y in obj.keypoints:  # type: ignore[union-attr]
        col, row = int(np.floor(x)), int(np.floor(y))
        if not (0 <= col < width and 0 <= row < height):
            triplets += [0.0, 0.0, 0]
            continue
        triplets += [float(x), float(y), 2 if obj.visible[row, col] else 1]
    return triplets


def _annotation(obj: _PlacedObject, rng: np.random.Generator, image_id: int, annotation_id: int,
                height: int, width: int) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(obj.visible.astype(np.uint8)))
    bbox = [round(float(v), 2) for v in mask_utils.toBbox(rle)]
    inside = all(0 <= v <= (width if i % 2 == 0 else height)
                 for p in obj.polygons for i, v in enumerate(p))
    unoccluded = bool(np.array_equal(obj.visible, obj.full_mask))
    if obj.iscrowd:
        segmentation: Any = _uncompressed_rle(obj.visible)
    elif inside and unoccluded and rng.random() >= _RLE_PROBABILITY:
        segmentation = obj.polygons
    else:
        segmentation = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
    annotation: dict[str, Any] = {
        "id": annotation_id, "image_id": image_id, "category_id": obj.category_id,
        "segmentation": segmentation, "area": float(mask_utils.area(rle)), "bbox": bbox,
        "iscrowd": obj.iscrowd,
    }
    if obj.keypoints is not None:
        annotation["keypoints"] = _keypoint_triplets(obj, height, width)
        annotation["num_keypoints"] = sum(1 for v in annotation["keypoints"][2::3] if v > 0)
    return annotation


def _categories(with_keypoints: bool) -> list[dict[str, Any]]:
    categories: list[dict[str, Any]] = []
    for category_id, name in CATEGORY_NAMES.items():
        entry: dict[str, Any] = {"id": category_id, "name": name, "supercategory": "synthetic"}
        if category_id == FIGURE and with_keypoints:
            entry["keypoints"] = list(FIGURE_KEYPOINT_NAMES)
            entry["skeleton"] = [list(pair) for pair in FIGURE_SKELETON]
            entry["flip_pairs"] = [list(pair) for pair in FIGURE_FLIP_PAIRS]
        categories.append(entry)
    return categories


def _generate_split(out_dir: Path, split: str, seed: int, num_images: int, first_image_id: int,
                    first_annotation_id: int, height: int, width: int,
                    progress: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    image_dir = out_dir / split
    image_dir.mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        # pycocotools' decode trips numpy 2's DeprecationWarning about __array__(copy=...)
        warnings.simplefilter("ignore", DeprecationWarning)
        for index in tqdm(range(num_images), desc=f"synthetic {split}", disable=not progress):
            image, image_annotations = _generate_image(
                rng_seed=(seed, _SPLIT_CODES[split], index),
                image_id=first_image_id + index,
                first_annotation_id=first_annotation_id + len(annotations),
                with_crowd=index % _CROWD_EVERY == 3,
                image_dir=image_dir, height=height, width=width)
            images.append(image)
            annotations += image_annotations
    return images, annotations


def _generate_image(rng_seed: tuple[int, int, int], image_id: int, first_annotation_id: int,
                    with_crowd: bool, image_dir: Path, height: int,
                    width: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Compose, paint and write one image; its content depends on rng_seed only."""
    rng = np.random.default_rng(list(rng_seed))
    placed = _compose_objects(rng, height, width, with_crowd=with_crowd)
    pixels = _paint(rng, height, width, placed)
    file_name = f"{image_id:06d}.png"
    Image.fromarray(pixels).save(image_dir / file_name, format="PNG")
    annotations = [_annotation(obj, rng, image_id, first_annotation_id + i, height, width)
                   for i, obj in enumerate(placed)]
    image = {"id": image_id, "file_name": file_name, "height": height, "width": width}
    return image, annotations


def _write_json(path: Path, content: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(content, separators=(",", ":")))


def _write_split_files(annotation_dir: Path, split: str, images: list[dict[str, Any]],
                       annotations: list[dict[str, Any]], split_keypoints_file: bool) -> dict:
    info = {"description": "plugrcnn synthetic shapes and stick figures", "version": "1.0"}
    instances_path = annotation_dir / f"instances_{split}.json"
    keypoints_path = annotation_dir / f"person_keypoints_{split}.json"
    if not split_keypoints_file:
        _write_json(instances_path, {"info": info, "images": images, "annotations": annotations,
                                     "categories": _categories(with_keypoints=True)})
        return {"instances": str(instances_path), "person_keypoints": None}
    stripped = [{k: v for k, v in a.items() if k not in ("keypoints", "num_keypoints")}
                for a in annotations]
    _write_json(instances_path, {"info": info, "images": images, "annotations": stripped,
                                 "categories": _categories(with_keypoints=False)})
    figure_annotations = [a for a in annotations if "keypoints" in a]
    figure_category = [c for c in _categories(with_keypoints=True) if c["id"] == FIGURE]
    _write_json(keypoints_path, {"info": info, "images": images,
                                 "annotations": figure_annotations,
                                 "categories": figure_category})
    return {"instances": str(instances_path), "person_keypoints": str(keypoints_path)}


def generate_synthetic_coco(
    out_dir: Path,
    *,
    seed: int,
    num_train: int,
    num_val: int,
    image_size: int | tuple[int, int] = 128,
    split_keypoints_file: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Write the synthetic data set under `out_dir` and return its description.

    Layout: out_dir/train/*.png, out_dir/val/*.png, out_dir/annotations/instances_{split}.json
    (and person_keypoints_{split}.json with split_keypoints_file=True: the figure annotations
    with their keypoints, while the instances file holds the same annotations, same ids, without
    the keypoint fields), plus out_dir/annotations/synthetic_meta.json with the keypoint names,
    skeleton and left/right flip pairs. `image_size` is a side or (height, width).

    Returns {"root", "splits": {split: {"image_root", "instances", "person_keypoints",
    "num_images", "num_annotations"}}, "categories", "keypoint_names", "skeleton",
    "flip_pairs"}; paths are strings.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    out_dir = Path(out_dir)
    annotation_dir = out_dir / "annotations"
    annotation_dir.mkdir(parents=True, exist_ok=True)
    splits: dict[str, Any] = {}
    next_image_id, next_annotation_id = 1, 1
    for split, count in (("train", num_train), ("val", num_val)):
        images, annotations = _generate_split(out_dir, split, seed, count, next_image_id,
                                              next_annotation_id, height, width, progress)
        next_image_id += count
        next_annotation_id += len(annotations)
        files = _write_split_files(annotation_dir, split, images, annotations,
                                   split_keypoints_file)
        splits[split] = {"image_root": str(out_dir / split), **files, "num_images": count,
                         "num_annotations": len(annotations)}
    meta = {"seed": seed, "image_size": [height, width], "categories": _categories(True),
            "keypoint_names": list(FIGURE_KEYPOINT_NAMES),
            "skeleton": [list(p) for p in FIGURE_SKELETON],
            "flip_pairs": [list(p) for p in FIGURE_FLIP_PAIRS]}
    _write_json(annotation_dir / "synthetic_meta.json", meta)
    return {"root": str(out_dir), "splits": splits, **{k: v for k, v in meta.items()
                                                        if k not in ("seed", "image_size")}}
