"""COCO result records made from ground truth with noise: detections whose AP is neither 0 nor 1,
to compare COCOeval backends (tests) and time them on thousands of images (tools)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pycocotools.mask as mask_utils


def perturbed_results(ground_truth: dict[str, Any], seed: int = 0, drop: float = 0.15,
                      false_per_image: float = 1.0) -> list[dict[str, Any]]:
    """One record per non-crowd GT (a `drop` share missed) with a jittered box, a mask shifted by
    the same offset (RLE), noisy keypoints where the GT has them and a random score; plus about
    `false_per_image` false detections per image."""
    rng = np.random.default_rng(seed)
    images = {im["id"]: im for im in ground_truth["images"]}
    cat_ids = [c["id"] for c in ground_truth["categories"]]
    records = []
    for ann in ground_truth["annotations"]:
        if ann.get("iscrowd", 0) or rng.random() < drop:
            continue
        image = images[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        dx, dy = rng.normal(0, 0.08 * w), rng.normal(0, 0.08 * h)
        box = [x + dx, y + dy, w * rng.uniform(0.85, 1.15), h * rng.uniform(0.85, 1.15)]
        record: dict[str, Any] = {"image_id": ann["image_id"], "category_id": ann["category_id"],
                                  "bbox": box, "score": float(rng.uniform(0.05, 1.0))}
        record["segmentation"] = _shifted_mask(ann, image, int(round(dx)), int(round(dy)))
        if ann.get("keypoints"):
            kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
            kp[:, :2] += rng.normal(0, 0.05 * max(w, h, 1.0), size=(len(kp), 2))
            kp[:, 2] = 2
            record["keypoints"] = kp.reshape(-1).tolist()
        records.append(record)
    for image in ground_truth["images"]:
        for _ in range(rng.poisson(false_per_image)):
            w, h = rng.uniform(4, image["width"] / 2), rng.uniform(4, image["height"] / 2)
            x, y = rng.uniform(0, image["width"] - w), rng.uniform(0, image["height"] - h)
            box = [x, y, w, h]
            rle = mask_utils.frPyObjects([[x, y, x + w, y, x + w, y + h, x, y + h]],
                                         image["height"], image["width"])[0]
            records.append({"image_id": image["id"], "category_id": int(rng.choice(cat_ids)),
                            "bbox": box, "score": float(rng.uniform(0.0, 0.6)),
                            "segmentation": _json_rle(rle),
                            "keypoints": [v for _ in range(_num_keypoints(ground_truth))
                                          for v in (rng.uniform(x, x + w), rng.uniform(y, y + h), 2)]})
    return records


def _num_keypoints(ground_truth: dict[str, Any]) -> int:
    return max((len(c.get("keypoints", [])) for c in ground_truth["categories"]), default=0)


def _shifted_mask(ann: dict[str, Any], image: dict[str, Any], dx: int, dy: int) -> dict[str, Any]:
    height, width = image["height"], image["width"]
    segmentation = ann.get("segmentation")
    if isinstance(segmentation, list) and segmentation:
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation, dict):
        counts = segmentation["counts"]
        rle = (mask_utils.frPyObjects(segmentation, height, width) if isinstance(counts, list)
               else {"size": segmentation["size"],
                     "counts": counts.encode("ascii") if isinstance(counts, str) else counts})
    else:  # box only: its rectangle
        x, y, w, h = ann["bbox"]
        rle = mask_utils.frPyObjects([[x, y, x + w, y, x + w, y + h, x, y + h]], height, width)[0]
    mask = np.asarray(mask_utils.decode(rle), dtype=np.uint8)
    shifted = np.zeros_like(mask)
    ys, xs = slice(max(dy, 0), height + min(dy, 0)), slice(max(dx, 0), width + min(dx, 0))
    src_y, src_x = slice(max(-dy, 0), height - max(dy, 0)), slice(max(-dx, 0), width - max(dx, 0))
    shifted[ys, xs] = mask[src_y, src_x]
    return _json_rle(mask_utils.encode(np.asfortranarray(shifted)))


def _json_rle(rle: dict[str, Any]) -> dict[str, Any]:
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
