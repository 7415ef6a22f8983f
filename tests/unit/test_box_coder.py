from __future__ import annotations

import math

import pytest
import torch
from torchvision.models.detection._utils import BoxCoder as TorchvisionBoxCoder

from plugrcnn.modeling.box_coder import BoxCoder


def _random_boxes(n: int, generator: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator) * 500
    wh = torch.rand(n, 2, generator=generator) * 200 + 1
    return torch.cat([xy, xy + wh], dim=1)


def test_encode_matches_hand_computed_delta() -> None:
    anchor = torch.tensor([[0.0, 0.0, 10.0, 20.0]])  # centre (5, 10), size 10 x 20
    target = torch.tensor([[2.0, 4.0, 22.0, 24.0]])  # centre (12, 14), size 20 x 20
    deltas = BoxCoder((10.0, 10.0, 5.0, 5.0)).encode(target, anchor)
    expected = torch.tensor([[10 * 7 / 10, 10 * 4 / 20, 5 * math.log(2.0), 5 * math.log(1.0)]])
    torch.testing.assert_close(deltas, expected)


def test_decode_matches_hand_computed_box() -> None:
    anchor = torch.tensor([[0.0, 0.0, 10.0, 20.0]])
    deltas = torch.tensor([[0.5, -0.25, math.log(2.0), 0.0]])
    boxes = BoxCoder((1.0, 1.0, 1.0, 1.0)).decode(deltas, anchor)
    # centre (5 + 5, 10 - 5), size 20 x 20
    torch.testing.assert_close(boxes, torch.tensor([[[0.0, -5.0, 20.0, 15.0]]]))


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_round_trip_recovers_boxes(weights: tuple[float, float, float, float]) -> None:
    g = torch.Generator().manual_seed(0)
    reference, target = _random_boxes(200, g), _random_boxes(200, g)
    coder = BoxCoder(weights)
    decoded = coder.decode(coder.encode(target, reference), reference)
    torch.testing.assert_close(decoded[:, 0], target, atol=1e-3, rtol=0)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_equals_torchvision_box_coder(weights: tuple[float, float, float, float]) -> None:
    g = torch.Generator().manual_seed(1)
    reference, target = _random_boxes(300, g), _random_boxes(300, g)
    ours, theirs = BoxCoder(weights), TorchvisionBoxCoder(weights)
    assert torch.equal(ours.encode(target, reference), theirs.encode_single(target, reference))
    # 3 boxes per reference, with large dw/dh values that exercise the clamp
    deltas = torch.randn(300, 12, generator=g) * 3
    assert torch.equal(ours.decode(deltas, reference), theirs.decode(deltas, [reference]))


def test_decode_clamps_scale() -> None:
    anchor = torch.tensor([[0.0, 0.0, 16.0, 16.0]])
    boxes = BoxCoder((1.0, 1.0, 1.0, 1.0)).decode(torch.tensor([[0.0, 0.0, 50.0, 50.0]]), anchor)
    width = boxes[0, 0, 2] - boxes[0, 0, 0]
    torch.testing.assert_close(width, torch.tensor(1000.0))


def test_decode_handles_no_boxes() -> None:
    boxes = BoxCoder((1.0, 1.0, 1.0, 1.0)).decode(torch.zeros(0, 8), torch.zeros(0, 4))
    assert boxes.shape == (0, 2, 4)
