"""The evaluation report: per-category AP and PR curves agree with COCOeval's summary; worst-image
errors count misses and false detections (the files `plugrcnn eval` writes: tests/e2e)."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

from plugrcnn.data.synthetic import generate_synthetic_coco
from plugrcnn.evaluation.coco_evaluator import coco_from_dict, evaluate_records
from plugrcnn.evaluation.report import box_errors, per_category_ap, pr_curve
from plugrcnn.testing.coco_results import perturbed_results


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, float], Any]:
    root = tmp_path_factory.mktemp("synthetic_report")
    generate_synthetic_coco(root, seed=12, num_train=1, num_val=30, image_size=96)
    gt_dict = json.loads((root / "annotations" / "instances_val.json").read_text())
    keep: dict[str, Any] = {}
    box_cats = [c["id"] for c in gt_dict["categories"]]
    metrics = evaluate_records(coco_from_dict(gt_dict, "faster-coco-eval"), perturbed_results(gt_dict, seed=2),
                               "bbox", None, box_cats, "faster-coco-eval", keep)
    return metrics, keep["evaluator"]


def test_per_category_ap_averages_to_the_summary_ap(evaluated: tuple[dict[str, float], Any]) -> None:
    metrics, evaluator = evaluated
    per_category = per_category_ap(evaluator)
    values = [v for v in per_category.values() if not np.isnan(v)]
    assert len(values) >= 3 and len(set(np.round(values, 6))) > 1  # categories differ
    assert np.mean(values) == pytest.approx(metrics["AP"], abs=1e-9)


def test_pr_curve_area_is_the_ap(evaluated: tuple[dict[str, float], Any]) -> None:
    metrics, evaluator = evaluated
    recall, precision = pr_curve(evaluator, None)
    assert recall.shape == (101,) and precision.shape == (101,)
    assert precision.mean() == pytest.approx(metrics["AP"], abs=1e-9)  # COCO AP: mean over 101 recalls
    _, at_50 = pr_curve(evaluator, 0.5)
    assert at_50.mean() == pytest.approx(metrics["AP50"], abs=1e-9)
    assert (np.diff(at_50) <= 1e-12).all()  # COCOeval's interpolated precision never rises


def test_box_errors_count_misses_and_false_detections() -> None:
    gt = torch.tensor([[0., 0., 10., 10.], [20., 20., 30., 30.]])
    labels = torch.tensor([1, 2])
    # one hit, one with the wrong label (a miss + a false detection), one far away (false)
    dets = torch.tensor([[0., 0., 10., 11.], [20., 20., 30., 30.], [50., 50., 60., 60.]])
    assert box_errors(gt, labels, dets, torch.tensor([1, 1, 1])) == 1 + 2
    assert box_errors(gt, labels, dets[:2], torch.tensor([1, 2])) == 0
    assert box_errors(gt, labels, dets[:0], torch.tensor([], dtype=torch.int64)) == 2
