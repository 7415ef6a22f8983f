"""The export verification: pairing, mask IoU, keypoint ties, limits (hand-made detections)."""
from __future__ import annotations

import torch

from plugrcnn_deploy.verify import FP16_LIMITS, FP32_LIMITS, Comparison, compare_image, judge


def _detections(boxes: list[list[float]], labels: list[int], scores: list[float]) -> dict[str, torch.Tensor]:
    return {"pred_boxes": torch.tensor(boxes), "pred_classes": torch.tensor(labels),
            "scores": torch.tensor(scores)}


def test_equal_scores_in_another_order_still_pair_up() -> None:
    reference = _detections([[0, 0, 10, 10], [50, 50, 70, 70]], [1, 2], [0.9, 0.9])
    candidate = _detections([[50, 50, 70.01, 70], [0, 0, 10, 10]], [2, 1], [0.9, 0.9])
    result = Comparison()
    compare_image(reference, candidate, result, strict=True)
    assert result.matched == 2 and abs(result.max_box_diff - 0.01) < 1e-4
    assert judge(result, FP32_LIMITS) == []


def test_a_missing_or_relabelled_detection_fails_float32() -> None:
    reference = _detections([[0, 0, 10, 10], [50, 50, 70, 70]], [1, 2], [0.9, 0.8])
    candidate = _detections([[0, 0, 10, 10], [50, 50, 70, 70]], [1, 3], [0.9, 0.8])
    result = Comparison()
    compare_image(reference, candidate, result, strict=True)
    assert result.matched == 1
    assert judge(result, FP32_LIMITS) == ["1 PyTorch detections have no match with the same label"]


def test_mask_iou_pools_pixels_over_detections() -> None:
    reference = _detections([[0, 0, 4, 4], [0, 0, 4, 4]], [1, 2], [0.9, 0.8])
    candidate = dict(reference)
    ref_masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    ref_masks[0, :2] = True          # 8 pixels
    ref_masks[1, :, :1] = True       # 4 pixels
    cand_masks = ref_masks.clone()
    cand_masks[0, 2] = True          # 4 more pixels: intersection 12, union 16
    reference["pred_masks"], candidate["pred_masks"] = ref_masks, cand_masks
    result = Comparison()
    compare_image(reference, candidate, result, strict=True, checks={"pred_masks": "binary_mask"})
    assert result.mask_iou == 12 / 16
    assert judge(result, FP32_LIMITS) == ["binary-mask IoU 0.7500 < 0.98"]


def test_a_keypoint_at_an_equally_high_peak_is_a_tie_not_an_error() -> None:
    reference = _detections([[0, 0, 100, 100]], [1], [0.9])
    candidate = dict(reference)
    reference["pred_keypoints"] = torch.tensor([[[10.0, 10.0, 8.0], [20.0, 20.0, 5.0], [30.0, 30.0, 2.0]]])
    candidate["pred_keypoints"] = torch.tensor([[[10.3, 10.0, 8.0], [40.0, 20.0, 5.000001], [33.0, 30.0, 1.0]]])
    result = Comparison()
    compare_image(reference, candidate, result, strict=True, checks={"pred_keypoints": "points"})
    assert result.keypoint_ties == 1                 # the second keypoint: same score, other peak
    assert abs(result.max_keypoint_distance - 3.0) < 1e-5  # the third moved with a lower score
    assert judge(result, FP32_LIMITS) == ["largest point distance 3.000 px > 1.0 px"]
    assert judge(result, FP16_LIMITS) == []           # 3 px is fp16's limit


def test_a_value_field_is_compared_relative_to_its_size_and_a_dropped_field_is_named() -> None:
    reference = _detections([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 2], [0.9, 0.8])
    candidate = dict(reference)
    reference["pred_mask_iou"] = torch.tensor([0.5, 0.9])
    candidate["pred_mask_iou"] = torch.tensor([0.5, 0.95])  # 0.05 / 1.9 relative
    result = Comparison()
    compare_image(reference, candidate, result, strict=True, checks={"pred_mask_iou": "value"})
    assert abs(result.field_diffs["pred_mask_iou"] - 0.05 / 1.9) < 1e-6
    assert judge(result, FP32_LIMITS) == ["pred_mask_iou differs by 2.63e-02 (relative) > 0.01"]
    del candidate["pred_mask_iou"]  # an export that lost the field fails verify, naming it
    result = Comparison()
    compare_image(reference, candidate, result, strict=True, checks={"pred_mask_iou": "value"})
    assert judge(result, FP32_LIMITS) == ["the export has no field pred_mask_iou (PyTorch has it)"]


def test_boxes_of_zero_width_at_the_border_pair_with_their_twin() -> None:
    # clipped to the image edge, both boxes are 0 px wide: IoU is undefined, the corners agree
    reference = _detections([[128.0, 10, 128, 40], [0, 0, 10, 10]], [1, 1], [0.5, 0.4])
    candidate = _detections([[128.0, 10, 128, 40.0001], [0, 0, 10, 10]], [1, 1], [0.5, 0.4])
    result = Comparison()
    compare_image(reference, candidate, result, strict=True)
    assert result.matched == 2 and judge(result, FP32_LIMITS) == []
    candidate["pred_boxes"][0] = torch.tensor([100.0, 10, 100, 40])  # elsewhere: no pair
    result = Comparison()
    compare_image(reference, candidate, result, strict=True)
    assert result.matched == 1
