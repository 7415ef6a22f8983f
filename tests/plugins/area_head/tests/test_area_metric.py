"""The area head's own evaluation kind: mean absolute error of matched detections' areas."""
from __future__ import annotations

import math

from plugrcnn.heads import HeadContext
from plugrcnn_area_head.head import AreaHead, AreaHeadConfig


def test_area_error_is_measured_on_the_best_matching_detection_of_each_object() -> None:
    head = AreaHead(AreaHeadConfig(), HeadContext(num_classes=2, in_channels=4))
    ground_truth = {"annotations": [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100.0, "iscrowd": 0},
        {"image_id": 1, "category_id": 2, "bbox": [50, 50, 20, 20], "area": 400.0, "iscrowd": 0},
        {"image_id": 1, "category_id": 1, "bbox": [80, 0, 10, 10], "area": 100.0, "iscrowd": 1},  # ignored
    ]}
    records = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9, "area_pred": 110.0},
        {"image_id": 1, "category_id": 1, "bbox": [1, 0, 10, 10], "score": 0.5, "area_pred": 300.0},  # lower score
        {"image_id": 1, "category_id": 1, "bbox": [50, 50, 20, 20], "score": 0.9, "area_pred": 1.0},  # wrong class
    ]
    metrics = head.evaluate(ground_truth, records)
    # object 1: the 0.9 detection, |110 - 100| = 10; object 2: no detection of its class
    assert metrics == {"MAE": 10.0, "rel_error": 0.1, "matched": 0.5}
    assert math.isnan(head.evaluate(ground_truth, [])["MAE"])
