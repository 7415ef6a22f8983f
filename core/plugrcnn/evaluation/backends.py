"""COCOeval backends: faster-coco-eval (C++, the default) and pycocotools (the reference).

Both give the same AP (tests/evaluation/test_backends.py checks bbox, segm and keypoints to
1e-6); the faster one matches detections to ground truth in C++ and is several times quicker on
thousands of images. Either returns an evaluator after evaluate + accumulate + summarize, whose
``stats`` and ``eval["precision"]`` (T, R, K, A, M) read the same.
"""
from __future__ import annotations

import contextlib
import io
import logging
from typing import Any, Literal

import numpy as np

Backend = Literal["faster-coco-eval", "pycocotools"]
BACKENDS: tuple[str, ...] = ("faster-coco-eval", "pycocotools")


def ground_truth(data: dict[str, Any], backend: Backend) -> Any:
    """A COCO index of the ground-truth dict (images, annotations, categories) for `backend`."""
    if backend == "faster-coco-eval":
        from faster_coco_eval import COCO

        # the dict is copied: faster-coco-eval's index keeps references into it
        return COCO({key: list(v) if isinstance(v, list) else v for key, v in data.items()})
    from pycocotools.coco import COCO as PyCOCO

    coco = PyCOCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def run_cocoeval(gt: Any, records: list[dict[str, Any]], iou_type: str, backend: Backend,
                 category_ids: list[int], params: dict[str, Any] | None = None) -> Any:
    """evaluate + accumulate + summarize `records` (COCO results, copied: loadRes edits them)."""
    evaluator_class = _evaluator_class(backend)
    quiet = logging.getLogger("faster_coco_eval")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            dt = gt.loadRes([dict(r) for r in records])
            evaluator = evaluator_class(gt, dt, iou_type)
            evaluator.params.catIds = list(category_ids)
            for key, value in (params or {}).items():
                setattr(evaluator.params, key,
                        np.asarray(value) if isinstance(value, (list, tuple)) else value)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
    finally:
        quiet.setLevel(level)
    return evaluator


def _evaluator_class(backend: Backend) -> type:
    if backend == "faster-coco-eval":
        from faster_coco_eval import COCOeval_faster

        return COCOeval_faster
    if backend == "pycocotools":
        from pycocotools.cocoeval import COCOeval

        return COCOeval
    raise ValueError(f"unknown COCOeval backend {backend!r} (known: {', '.join(BACKENDS)})")
