"""A synthetic COCO instances file with COCO train2017's counts, written as a stream.

Counts (defaults): 118,287 images, 860,001 polygon annotations, 80 categories with COCO's gapped
ids 1..90, 1,021 images without annotations (as in train2017). Polygons have realistic vertex
counts (a log-normal around 20 vertices, 3..250; 1 to 4 polygons per annotation, one in most),
coordinates with 2 decimals like COCO's, and every image record carries COCO's fields
(license, coco_url, date_captured, flickr_url). Seeded: the same arguments write the same bytes.

Only the annotations are loaded by the benchmark, so by default no image files are written;
`write_image_files=True` creates them empty (0 bytes), which is what an existence check needs.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

COCO_TRAIN2017_IMAGES = 118_287
COCO_TRAIN2017_ANNOTATIONS = 860_001
COCO_TRAIN2017_EMPTY_IMAGES = 1_021
# COCO's 80 category ids: 1..90 without the 10 ids the 2014 paper dropped
_UNUSED_IDS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
COCO_CATEGORY_IDS = tuple(i for i in range(1, 91) if i not in _UNUSED_IDS)
_CHUNK = 20_000  # annotations formatted per write: bounds the generator's memory


def _image_records(rng: np.random.Generator, count: int) -> list[dict]:
    widths = rng.choice([640, 640, 640, 500, 480, 427, 612], size=count)
    heights = rng.choice([480, 427, 640, 375, 424, 360, 500], size=count)
    return [{"license": int(i % 8) + 1, "file_name": f"{i + 1:012d}.jpg",
             "coco_url": f"http://images.cocodataset.org/train2017/{i + 1:012d}.jpg",
             "height": int(heights[i]), "width": int(widths[i]),
             "date_captured": "2013-11-14 11:18:45",
             "flickr_url": f"http://farm4.staticflickr.com/{i % 9000}/{i + 1}_z.jpg",
             "id": i + 1} for i in range(count)]


def _owners(rng: np.random.Generator, num_images: int, num_annotations: int,
            num_empty: int) -> np.ndarray:
    """Image index of every annotation: every non-empty image gets one, the rest at random."""
    with_annotations = rng.permutation(num_images)[: max(num_images - num_empty, 1)]
    extra = rng.choice(with_annotations, size=max(num_annotations - len(with_annotations), 0))
    owners = np.concatenate([with_annotations, extra])[:num_annotations]
    return owners[rng.permutation(len(owners))]


def _polygon(rng: np.random.Generator, cx: float, cy: float, radius: float,
             vertices: int) -> list[float]:
    """A star-shaped polygon: `vertices` points at sorted angles, radii jittered."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, vertices))
    radii = radius * rng.uniform(0.5, 1.0, vertices)
    points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
    return np.round(points.reshape(-1), 2).tolist()


def _annotation_text(rng: np.random.Generator, annotation_id: int, image: dict,
                     category_id: int) -> str:
    width, height = image["width"], image["height"]
    radius = float(rng.uniform(4, min(width, height) / 4))
    cx = float(rng.uniform(radius, width - radius))
    cy = float(rng.uniform(radius, height - radius))
    parts = 1 + int(rng.random() < 0.1) * int(rng.integers(1, 4))
    counts = np.clip(rng.lognormal(np.log(20), 0.6, parts), 3, 250).astype(int)
    polygons = [_polygon(rng, cx + 0.2 * radius * k, cy, radius / parts, int(n))
                for k, n in enumerate(counts)]
    xs = np.clip(np.concatenate([p[0::2] for p in polygons]), 0, width)
    ys = np.clip(np.concatenate([p[1::2] for p in polygons]), 0, height)
    x0, y0 = round(float(xs.min()), 2), round(float(ys.min()), 2)
    box = [x0, y0, round(float(xs.max()) - x0, 2) or 0.01, round(float(ys.max()) - y0, 2) or 0.01]
    polygons = [np.clip(np.asarray(p).reshape(-1, 2), 0, [width, height]).reshape(-1).tolist()
                for p in polygons]
    record = {"segmentation": polygons, "area": round(box[2] * box[3] * 0.6, 4), "iscrowd": 0,
              "image_id": image["id"], "bbox": box, "category_id": category_id,
              "id": annotation_id}
    return json.dumps(record, separators=(",", ":"))


def write_coco_scale_file(path: Path, *, seed: int = 0, images: int = COCO_TRAIN2017_IMAGES,
                          annotations: int = COCO_TRAIN2017_ANNOTATIONS,
                          empty_images: int | None = None,
                          image_dir: Path | None = None) -> dict[str, int]:
    """Write the instances file to `path`; with `image_dir`, an empty file per image there.

    `empty_images` defaults to COCO's share (1,021 of 118,287). Returns the counts written.
    """
    rng = np.random.default_rng(seed)
    if empty_images is None:
        empty_images = round(images * COCO_TRAIN2017_EMPTY_IMAGES / COCO_TRAIN2017_IMAGES)
    image_records = _image_records(rng, images)
    owners = _owners(rng, images, annotations, empty_images)
    categories = rng.choice(COCO_CATEGORY_IDS, size=annotations)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        out.write('{"info":{"description":"synthetic, COCO train2017 counts"},"licenses":[],')
        out.write('"images":' + json.dumps(image_records, separators=(",", ":")))
        out.write(',"annotations":[')
        for start in range(0, annotations, _CHUNK):
            texts = [_annotation_text(rng, i + 1, image_records[owners[i]], int(categories[i]))
                     for i in range(start, min(start + _CHUNK, annotations))]
            out.write(("," if start else "") + ",".join(texts))
        names = [{"supercategory": "thing", "id": cid, "name": f"category_{cid}"}
                 for cid in COCO_CATEGORY_IDS]
        out.write('],"categories":' + json.dumps(names, separators=(",", ":")) + "}")
    if image_dir is not None:
        image_dir.mkdir(parents=True, exist_ok=True)
        for record in image_records:
            (image_dir / record["file_name"]).touch()
    return {"images": images, "annotations": annotations, "categories": len(COCO_CATEGORY_IDS),
            "images_without_annotations": images - len(np.unique(owners))}
