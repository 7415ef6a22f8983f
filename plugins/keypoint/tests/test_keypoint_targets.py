"""Keypoint targets: reading, moving under resize/flip, heatmap indices, the loss."""
from __future__ import annotations

import math

import pytest
import torch
from torchvision.models.detection.roi_heads import keypoints_to_heatmap

from plugrcnn.data.transforms import HFlipOp, ResizeOp
from plugrcnn.errors import PlugrcnnError
from plugrcnn_keypoint import KeypointCodec, heatmap_targets, keypoint_rcnn_loss

# a five-keypoint "figure": nothing here is COCO's 17
NAMES = ("head", "left_hand", "right_hand", "left_foot", "right_foot")
FLIP_INDEX = (0, 2, 1, 4, 3)


def _codec(**kwargs) -> KeypointCodec:
    return KeypointCodec(num_keypoints=len(NAMES), flip_index=FLIP_INDEX, **kwargs)


def _annotation(keypoints: list[float] | None, label: int = 1, id: int = 7) -> dict:
    ann = {"id": id, "image_id": 3, "label": label, "box": [0.0, 0.0, 10.0, 10.0]}
    if keypoints is not None:
        ann["keypoints"] = keypoints
    return ann


FIGURE = [50, 10, 2, 70, 40, 2, 30, 40, 1, 60, 90, 2, 0, 0, 0]  # right_foot not labelled


def test_read_shifts_labelled_keypoints_to_pixel_centres_and_marks_missing_ones() -> None:
    target = _codec(pixel_offset=0.5).read([_annotation(FIGURE), _annotation(None)], 100, 100)
    assert target.shape == (2, 5, 3)
    torch.testing.assert_close(target[0, :, :2], torch.tensor(
        [[50.5, 10.5], [70.5, 40.5], [30.5, 40.5], [60.5, 90.5], [0.0, 0.0]]))
    assert target[0, :, 2].tolist() == [2, 2, 1, 2, 0]
    assert (target[1] == 0).all()
    assert _codec().valid(target).tolist() == [True, False]


def test_read_ignores_keypoints_of_categories_without_them() -> None:
    target = _codec(categories=(1,)).read([_annotation(FIGURE, label=2)], 100, 100)
    assert not _codec().valid(target).any()


def test_read_rejects_a_keypoint_count_that_does_not_match_the_config() -> None:
    with pytest.raises(PlugrcnnError, match=r"annotation 7 \(image 3\): 6 keypoint values, but "
                                            r"model.heads.keypoint.keypoints names 5 keypoints"):
        _codec().read([_annotation([1, 2, 2, 3, 4, 2])], 100, 100)


def test_horizontal_flip_mirrors_x_and_swaps_left_and_right_by_name() -> None:
    codec = _codec(pixel_offset=0.0)
    target = codec.read([_annotation(FIGURE)], 100, 120)
    flipped = codec.transform(codec.transform(target, ResizeOp(2.0, 2.0, 200, 240)), HFlipOp(240))
    by_name = dict(zip(NAMES, flipped[0].tolist()))
    assert by_name["head"] == [240 - 100, 20, 2]
    # the old left hand (x=70 -> 140) is the new right hand, mirrored: 240 - 140
    assert by_name["right_hand"] == [100, 80, 2]
    assert by_name["left_hand"] == [240 - 60, 80, 1]
    assert by_name["right_foot"] == [240 - 120, 180, 2]
    assert by_name["left_foot"][2] == 0


def test_heatmap_target_of_a_known_keypoint_in_a_known_roi() -> None:
    # RoI 112 x 28 px over a 56 x 56 heatmap: bins are 2 px wide and 0.5 px tall
    roi = torch.tensor([[10.0, 20.0, 122.0, 48.0]])
    keypoints = torch.tensor([[[50.3, 31.9, 2.0],    # col floor(40.3 / 2) = 20, row floor(11.9 * 2) = 23
                               [122.0, 48.0, 2.0],   # on the right/bottom edge: last bin
                               [5.0, 30.0, 2.0],     # left of the RoI: no target
                               [50.0, 30.0, 0.0]]])  # not labelled: no target
    index, valid = heatmap_targets(keypoints, roi, 56)
    assert valid.tolist() == [[True, True, False, False]]
    assert index[0, :2].tolist() == [23 * 56 + 20, 55 * 56 + 55]
    ref_index, ref_valid = keypoints_to_heatmap(keypoints, roi, 56)
    assert torch.equal(index, ref_index) and torch.equal(valid, ref_valid.bool())


def test_loss_is_the_mean_cross_entropy_over_labelled_keypoints_inside_rois() -> None:
    logits = torch.zeros(2, 5, 56, 56, requires_grad=True)
    rois = torch.tensor([[0.0, 0.0, 56.0, 56.0], [0.0, 0.0, 112.0, 112.0]])
    keypoints = torch.zeros(2, 5, 3)
    keypoints[0, 1] = torch.tensor([10.5, 20.5, 2.0])  # bin (20, 10)
    keypoints[1, 3] = torch.tensor([10.5, 20.5, 2.0])  # bin (10, 5)
    with torch.no_grad():
        logits[0, 1, 20, 10] = 3.0
        logits[1, 3, 10, 5] = 1.0
    # one-hot over 3136 positions: -log(e^a / (e^a + 3135))
    expected = sum(-math.log(math.exp(a) / (math.exp(a) + 56 * 56 - 1)) for a in (3.0, 1.0)) / 2
    loss = keypoint_rcnn_loss(logits, rois, keypoints)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_loss_without_any_labelled_keypoint_is_zero_and_connected() -> None:
    logits = torch.randn(3, 5, 56, 56, requires_grad=True)
    rois = torch.tensor([[0.0, 0.0, 56.0, 56.0]] * 3)
    loss = keypoint_rcnn_loss(logits, rois, torch.zeros(3, 5, 3))
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None and (logits.grad == 0).all()
