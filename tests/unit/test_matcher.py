from __future__ import annotations

import pytest
import torch
from torchvision.models.detection._utils import Matcher as TorchvisionMatcher

from plugrcnn.errors import PlugrcnnError
from plugrcnn.modeling.matcher import Matcher


def _rpn_matcher(low_quality: bool) -> Matcher:
    return Matcher([0.3, 0.7], [0, -1, 1], allow_low_quality_matches=low_quality)


def test_threshold_edges_are_closed_on_the_left() -> None:
    iou = torch.tensor([[0.0, 0.2999, 0.3, 0.5, 0.6999, 0.7, 0.9]])
    matched_idx, labels = _rpn_matcher(low_quality=False)(iou)
    assert labels.tolist() == [0, 0, -1, -1, -1, 1, 1]
    assert labels.dtype == torch.int8 and matched_idx.dtype == torch.int64


def test_each_prediction_takes_its_best_ground_truth() -> None:
    iou = torch.tensor([[0.8, 0.1, 0.4], [0.75, 0.9, 0.2]])
    matched_idx, labels = _rpn_matcher(low_quality=False)(iou)
    assert matched_idx.tolist() == [0, 1, 0]
    assert labels.tolist() == [1, 1, -1]


def test_low_quality_matches_promote_best_prediction_of_each_gt_with_ties() -> None:
    # GT 0 best IoU 0.4, reached by predictions 0 and 2 (tie); GT 1 best 0.25 at prediction 3,
    # whose own best GT is GT 2 (0.26): it is promoted but keeps matched_idx 2.
    iou = torch.tensor(
        [
            [0.4, 0.1, 0.4, 0.0, 0.05],
            [0.0, 0.1, 0.2, 0.25, 0.0],
            [0.0, 0.0, 0.0, 0.26, 0.1],
        ]
    )
    matched_idx, labels = _rpn_matcher(low_quality=True)(iou)
    assert labels.tolist() == [1, 0, 1, 1, 0]
    assert matched_idx[[0, 2, 3]].tolist() == [0, 0, 2]
    _, labels_without = _rpn_matcher(low_quality=False)(iou)
    assert labels_without.tolist() == [-1, 0, -1, 0, 0]


def test_no_ground_truth_labels_everything_background() -> None:
    matched_idx, labels = _rpn_matcher(low_quality=True)(torch.zeros(0, 6))
    assert labels.tolist() == [0] * 6
    assert matched_idx.tolist() == [0] * 6


def test_agrees_with_torchvision_matcher_on_random_iou() -> None:
    iou = torch.rand(7, 500, generator=torch.Generator().manual_seed(0))
    iou[:, :100] = (iou[:, :100] * 10).round() / 10  # plenty of exact 0.3 / 0.7 values and ties
    matched_idx, labels = _rpn_matcher(low_quality=True)(iou)
    theirs = TorchvisionMatcher(0.7, 0.3, allow_low_quality_matches=True)(iou)
    assert torch.equal(labels == 1, theirs >= 0)
    assert torch.equal(labels == 0, theirs == -1)
    assert torch.equal(labels == -1, theirs == -2)
    assert torch.equal(matched_idx[labels == 1], theirs[theirs >= 0])


def test_bad_configuration_is_an_error() -> None:
    with pytest.raises(PlugrcnnError):
        Matcher([0.7, 0.3], [0, -1, 1], allow_low_quality_matches=False)
    with pytest.raises(PlugrcnnError):
        Matcher([0.3, 0.7], [0, 1], allow_low_quality_matches=False)
