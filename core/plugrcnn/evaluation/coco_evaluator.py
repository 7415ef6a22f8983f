"""COCO evaluation for every enabled head's kind (bbox, segm, keypoints, or a plugin's own).

Each head names its evaluation kind and COCOeval parameters (``eval_kind``, ``coco_eval_params``)
and writes its own result fields (``coco_results``); the evaluator only runs the model, collects
records and calls pycocotools, or the head's own ``evaluate`` for a kind COCOeval does not know.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


from plugrcnn.data.coco import CocoDataset
from plugrcnn.evaluation.backends import Backend, ground_truth, run_cocoeval
from plugrcnn.heads.base import COCO_KINDS
from plugrcnn.inference.predictor import Predictor
from plugrcnn.outputs import write_json_atomic
from plugrcnn.progress import progress as show_progress

METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def collect_predictions(predictor: Predictor, dataset: CocoDataset, batch_size: int = 2,
                        progress: bool = True) -> list[dict[str, Any]]:
    """COCO result records (with image_id) for every image of `dataset`."""
    records: list[dict[str, Any]] = []
    indices = list(range(len(dataset)))
    batches = [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]
    for batch in show_progress(batches, desc="evaluate", unit="batch", enabled=progress):
        items = [dataset[i] for i in batch]
        detections = predictor([item["image"] for item in items])
        for item, det in zip(items, detections):
            records.extend(predictor.coco_records(det, image_id=item["image_id"]))
    return records


def coco_from_dict(data: dict[str, Any], backend: Backend = "pycocotools") -> Any:
    """A COCO index of a ground-truth dict, for `backend`."""
    return ground_truth(data, backend)


def evaluate_records(gt: Any, records: list[dict[str, Any]], iou_type: str,
                     params: dict[str, Any] | None = None,
                     category_ids: list[int] | None = None,
                     backend: Backend = "pycocotools", keep: dict[str, Any] | None = None) -> dict[str, float]:
    """COCOeval of `records` for one iou type -> {AP, AP50, ...} in [0, 1] (-1: not defined).

    `gt` is `coco_from_dict(..., backend)`. `params` are set on ``COCOeval.params`` (e.g.
    ``kpt_oks_sigmas``); `category_ids` limits the evaluation (and the records) to the categories
    a head covers, all of them when None. `keep`, if given, receives the evaluator under
    ``"evaluator"`` (its ``eval["precision"]`` feeds the per-category and PR plots).
    """
    cat_ids = sorted(gt.getCatIds()) if category_ids is None else list(category_ids)
    records = [r for r in records if r["category_id"] in set(cat_ids)]
    if not records:
        return {name: 0.0 for name in METRIC_NAMES}
    evaluator = run_cocoeval(gt, records, iou_type, backend, cat_ids, params)
    if keep is not None:
        keep["evaluator"] = evaluator
    stats = [float(v) for v in evaluator.stats]
    # COCOeval reports no small-object AP where its areas have no "small" range (keypoints)
    names = METRIC_NAMES if len(stats) >= 12 else ("AP", "AP50", "AP75", "APm", "APl")
    return {name: stats[i] for i, name in enumerate(names)}


DETECTION_SCORE_SUFFIX = " (det. score)"


def evaluate(predictor: Predictor, dataset: CocoDataset, output_dir: Path | None = None,
             progress: bool = True, backend: Backend | None = None,
             report: bool = True) -> dict[str, dict[str, float]]:
    """Run the model on `dataset`, evaluate every head's kind, save results + records.

    COCOeval kinds (bbox, segm, keypoints) give AP; a kind some head scores itself (records'
    ``scores: {kind: value}``) is evaluated with that score under its own name and with the
    detection score under ``"<kind> (det. score)"``, side by side; other kinds are evaluated by
    their head's `evaluate`. `backend` defaults to the config's ``eval.backend``. With
    `output_dir` and `report`, the per-category AP, PR curves and worst images go there too.
    """
    backend = backend or predictor.cfg.eval.backend
    predictor.model.eval()
    records = collect_predictions(predictor, dataset, progress=progress)
    ground_truth = dataset.to_coco_dict()
    gt = coco_from_dict(ground_truth, backend)
    results: dict[str, dict[str, float]] = {}
    evaluators: dict[str, Any] = {}  # kind -> {"evaluator": COCOeval after accumulate}
    for head in predictor.model.heads.values():
        kind = head.eval_kind
        if not kind or kind in results:
            continue
        if kind not in COCO_KINDS:
            results[kind] = {k: float(v) for k, v in head.evaluate(ground_truth, records).items()}
            continue
        labels = head.coco_eval_labels()
        category_ids = None if labels is None else [predictor.category_id(i) for i in labels]
        params = head.coco_eval_params()
        if any(kind in r.get("scores", {}) for r in records):
            results[kind] = evaluate_records(gt, with_kind_score(records, kind), kind, params, category_ids,
                                             backend, evaluators.setdefault(kind, {}))
            results[kind + DETECTION_SCORE_SUFFIX] = evaluate_records(gt, records, kind, params, category_ids,
                                                                      backend)
        else:
            results[kind] = evaluate_records(gt, records, kind, params, category_ids, backend,
                                             evaluators.setdefault(kind, {}))
    if output_dir is not None:
        write_json_atomic(output_dir / "coco_results.json", records)
        write_json_atomic(output_dir / "metrics.json", results, indent=2)
        if report:
            from plugrcnn.evaluation.report import write_report

            write_report(output_dir, predictor, dataset, records, ground_truth,
                         {k: v["evaluator"] for k, v in evaluators.items() if "evaluator" in v})
    return results


def with_kind_score(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Records whose ``score`` is their score for `kind` where a head gave one."""
    return [{**r, "score": r["scores"][kind]} if kind in r.get("scores", {}) else r for r in records]


def format_table(results: dict[str, dict[str, float]]) -> str:
    """AP / AP50 / AP75 of the COCOeval kinds, then each other kind's own metrics."""
    width = max([10, *(len(k) + 2 for k in results)])
    header = f"{'kind':<{width}}" + "".join(f"{n:>8}" for n in ("AP", "AP50", "AP75"))
    lines = [header, "-" * len(header)]
    others = []
    for kind, m in results.items():
        if "AP" in m:
            lines.append(f"{kind:<{width}}" + "".join(f"{m.get(n, 0.0):8.3f}" for n in ("AP", "AP50", "AP75")))
        else:
            others.append(f"{kind:<{width}}" + "  ".join(f"{n} {v:.4g}" for n, v in m.items()))
    return "\n".join(lines + others)
