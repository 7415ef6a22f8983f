"""What `plugrcnn eval` writes beside metrics.json for people to look at.

- ``per_category_ap.md`` / ``.json``: AP per category for each COCOeval kind, and
  ``per_category_ap.png``, the same as grouped bars;
- ``pr_curves.png``: precision-recall curves per kind (IoU 0.5, 0.75 and the mean over
  0.5:0.95; all areas, the largest max-detections; averaged over categories);
- ``worst/``: the images with the most box errors (missed GT + false detections at IoU 0.5 among
  detections scoring >= 0.5), GT on the left and predictions on the right, and
  ``worst_images.json`` listing them.

Read from COCOeval's ``eval["precision"]``: (T IoU thresholds, R recall points, K categories,
A area ranges, M max-detection settings), -1 where a category has no GT.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.io import encode_png
from torchvision.ops import box_iou

from plugrcnn.data.coco import CocoDataset
from plugrcnn.data.mapper import DatasetMapper
from plugrcnn.inference.ground_truth import draw_ground_truth
from plugrcnn.inference.predictor import Predictor
from plugrcnn.outputs import prepare_output_dir, write_bytes_atomic, write_json_atomic, write_text_atomic

WORST_COUNT = 8
DRAW_SCORE = 0.5
SMALL_SIDE = 320  # images whose longer side is under this are drawn 2x (3x, ...) for legibility


def per_category_ap(evaluator: Any) -> dict[int, float]:
    """category id -> AP (IoU 0.5:0.95, all areas, most detections); NaN without GT."""
    precision = np.asarray(evaluator.eval["precision"])[:, :, :, 0, -1]  # (T, R, K)
    out = {}
    for k, cat_id in enumerate(evaluator.params.catIds):
        values = precision[:, :, k]
        values = values[values > -1]
        out[int(cat_id)] = float(values.mean()) if values.size else float("nan")
    return out


def pr_curve(evaluator: Any, iou: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(recall points, precision averaged over categories with GT) at IoU `iou` (None: the mean
    over every IoU threshold)."""
    precision = np.asarray(evaluator.eval["precision"])[:, :, :, 0, -1]  # (T, R, K)
    if iou is not None:
        precision = precision[np.isclose(evaluator.params.iouThrs, iou)]
    has_gt = (precision > -1).all(axis=(0, 1))  # (K,)
    curve = precision[:, :, has_gt].mean(axis=(0, 2)) if has_gt.any() else np.zeros(precision.shape[1])
    return np.asarray(evaluator.params.recThrs), curve


def write_report(output_dir: Path, predictor: Predictor, dataset: CocoDataset,
                 records: list[dict[str, Any]], ground_truth: dict[str, Any],
                 evaluators: dict[str, Any]) -> list[Path]:
    """Write the tables, plots and worst images; return the paths written."""
    names = {c["id"]: c["name"] for c in ground_truth["categories"]}
    table = {kind: per_category_ap(ev) for kind, ev in evaluators.items()}
    written = [*write_per_category(output_dir, table, names)]
    if evaluators:
        written.append(plot_pr_curves(output_dir / "pr_curves.png", evaluators))
    written += write_worst_images(output_dir, predictor, dataset, records, ground_truth)
    return written


def write_per_category(output_dir: Path, table: dict[str, dict[int, float]],
                       names: dict[int, str]) -> list[Path]:
    kinds = list(table)
    cat_ids = sorted({c for per_kind in table.values() for c in per_kind})
    lines = ["| category | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
    for cat_id in cat_ids:
        cells = [_cell(table[k].get(cat_id)) for k in kinds]
        lines.append(f"| {names.get(cat_id, cat_id)} | " + " | ".join(cells) + " |")
    md = output_dir / "per_category_ap.md"
    write_text_atomic(md, "AP (IoU 0.5:0.95) per category; - : the kind does not cover the category "
                      "or it has no GT\n\n" + "\n".join(lines) + "\n")
    js = output_dir / "per_category_ap.json"
    write_json_atomic(js, {k: {names.get(c, str(c)): (None if np.isnan(v) else v) for c, v in per.items()}
                           for k, per in table.items()}, indent=2)
    return [md, js, plot_per_category(output_dir / "per_category_ap.png", table, names, cat_ids)]


def _cell(value: float | None) -> str:
    return "-" if value is None or np.isnan(value) else f"{value:.3f}"


def plot_per_category(path: Path, table: dict[str, dict[int, float]], names: dict[int, str],
                      cat_ids: list[int]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(cat_ids) * max(1, len(table))), 4))
    width = 0.8 / max(1, len(table))
    for i, (kind, per) in enumerate(table.items()):
        values = [per.get(c, float("nan")) for c in cat_ids]
        ax.bar(np.arange(len(cat_ids)) + i * width, np.nan_to_num(values, nan=0.0), width, label=kind)
    ax.set_xticks(np.arange(len(cat_ids)) + 0.4 - width / 2)
    ax.set_xticklabels([names.get(c, str(c)) for c in cat_ids], rotation=45, ha="right")
    ax.set_ylabel("AP (IoU 0.5:0.95)")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
    return path


def plot_pr_curves(path: Path, evaluators: dict[str, Any]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(evaluators), figsize=(4.5 * len(evaluators), 4), squeeze=False)
    for ax, (kind, evaluator) in zip(axes[0], evaluators.items()):
        for iou, label in ((0.5, "IoU 0.50"), (0.75, "IoU 0.75"), (None, "IoU 0.50:0.95")):
            recall, precision = pr_curve(evaluator, iou)
            ax.plot(recall, precision, label=label)
        ax.set_title(kind)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(loc="lower left")
    fig.tight_layout()
    save_figure(fig, path)
    return path


def save_figure(fig: Any, path: Path) -> None:
    """Write a matplotlib figure as PNG atomically, then close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())


def box_errors(gt_boxes: torch.Tensor, gt_labels: torch.Tensor, boxes: torch.Tensor,
               labels: torch.Tensor) -> int:
    """Missed GT + unmatched detections: greedy matching (detections in score order) of same-label
    pairs with IoU >= 0.5. gt_boxes (G, 4), boxes (D, 4) XYXY."""
    iou = box_iou(boxes, gt_boxes) if len(boxes) and len(gt_boxes) else torch.zeros(len(boxes), len(gt_boxes))
    iou[labels[:, None] != gt_labels[None, :]] = 0.0
    taken = torch.zeros(len(gt_boxes), dtype=torch.bool)
    matched = 0
    for d in range(len(boxes)):
        candidates = iou[d].masked_fill(taken, 0.0)
        if len(candidates) and float(candidates.max()) >= 0.5:
            taken[int(candidates.argmax())] = True
            matched += 1
    return (len(gt_boxes) - matched) + (len(boxes) - matched)


def write_worst_images(output_dir: Path, predictor: Predictor, dataset: CocoDataset,
                       records: list[dict[str, Any]], ground_truth: dict[str, Any],
                       count: int = WORST_COUNT) -> list[Path]:
    errors = []
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for r in records:
        if r["score"] >= DRAW_SCORE:
            by_image.setdefault(r["image_id"], []).append(r)
    gt_by_image: dict[Any, list[dict[str, Any]]] = {}
    for a in ground_truth["annotations"]:
        if not a.get("iscrowd", 0):
            gt_by_image.setdefault(a["image_id"], []).append(a)
    for index, image in enumerate(ground_truth["images"]):
        dets, gts = by_image.get(image["id"], []), gt_by_image.get(image["id"], [])
        errors.append((box_errors(_xyxy([a["bbox"] for a in gts]), _category_ids(gts),
                                  _xyxy([r["bbox"] for r in dets]), _category_ids(dets)),
                       index, image))
    worst = sorted((e for e in errors if e[0] > 0), key=lambda e: (-e[0], e[1]))[:count]
    folder = prepare_output_dir(output_dir / "worst")
    heads = dict(predictor.model.heads)
    mapper = DatasetMapper({n: c for n, h in heads.items() if (c := h.target_codec()) is not None}, None)
    listing, written = [], []
    for n_errors, index, image_info in worst:
        item = dataset[index]  # to_coco_dict lists the data set's images in its order
        picture = item["image"]
        truth = draw_ground_truth(heads, picture, mapper(item)["targets"])
        detection = predictor([picture])[0]
        predicted = predictor.draw(picture, detection, DRAW_SCORE)
        path = folder / f"{Path(image_info['file_name']).stem}.png"
        gap = torch.full((3, picture.shape[-2], 4), 255, dtype=torch.uint8)
        pair = torch.cat([truth, gap, predicted], dim=-1)
        factor = max(1, SMALL_SIDE // max(picture.shape[-2:]))  # small images: nearest-upscaled
        if factor > 1:
            pair = pair.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
        write_bytes_atomic(path, encode_png(pair).numpy().tobytes())
        listing.append({"image_id": image_info["id"], "file_name": image_info["file_name"],
                        "box_errors": n_errors, "picture": str(path.relative_to(output_dir))})
        written.append(path)
    write_json_atomic(output_dir / "worst_images.json", listing, indent=2)
    return [output_dir / "worst_images.json", *written]


def _xyxy(xywh: list[list[float]]) -> torch.Tensor:
    boxes = torch.tensor(xywh, dtype=torch.float32).reshape(-1, 4)
    return torch.cat([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], dim=1)


def _category_ids(items: list[dict[str, Any]]) -> torch.Tensor:
    return torch.tensor([i["category_id"] for i in items], dtype=torch.int64)
