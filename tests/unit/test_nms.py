"""The NMS behaviour the RPN and the box head rely on (torchvision.ops.batched_nms)."""
from __future__ import annotations

import torch
from torchvision.ops import batched_nms

BOX_A = [0.0, 0.0, 10.0, 10.0]
BOX_A_SHIFTED = [1.0, 0.0, 11.0, 10.0]  # IoU with A = 90 / 110 = 0.82
BOX_A_HALF = [5.0, 0.0, 15.0, 10.0]  # IoU with A = 50 / 150 = 0.33
FAR_BOX = [50.0, 50.0, 60.0, 60.0]


def test_overlapping_pair_in_one_class_keeps_the_higher_score() -> None:
    boxes = torch.tensor([BOX_A, BOX_A_SHIFTED])
    keep = batched_nms(boxes, torch.tensor([0.6, 0.9]), torch.tensor([1, 1]), 0.5)
    assert keep.tolist() == [1]


def test_overlap_below_threshold_survives() -> None:
    boxes = torch.tensor([BOX_A, BOX_A_HALF])
    keep = batched_nms(boxes, torch.tensor([0.9, 0.8]), torch.tensor([1, 1]), 0.5)
    assert keep.tolist() == [0, 1]


def test_same_box_in_different_classes_is_kept_twice() -> None:
    boxes = torch.tensor([BOX_A, BOX_A])
    keep = batched_nms(boxes, torch.tensor([0.7, 0.8]), torch.tensor([1, 2]), 0.5)
    assert keep.tolist() == [1, 0]


def test_output_is_sorted_by_decreasing_score() -> None:
    boxes = torch.tensor([BOX_A, FAR_BOX, BOX_A_SHIFTED, BOX_A])
    scores = torch.tensor([0.3, 0.5, 0.95, 0.4])
    keep = batched_nms(boxes, scores, torch.tensor([0, 0, 0, 3]), 0.5)
    # index 0 is suppressed by index 2 (same class); index 3 is another class
    assert keep.tolist() == [2, 1, 3]
