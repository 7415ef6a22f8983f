from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.poolers import LevelMapper

from plugrcnn.modeling.poolers import MultiLevelRoIAlign, assign_boxes_to_levels

FPN_SCALES = [1 / 4, 1 / 8, 1 / 16, 1 / 32]


def _square(side: float, x0: float = 10.0) -> list[float]:
    return [x0, x0, x0 + side, x0 + side]


def test_assign_boxes_to_levels_hand_computed() -> None:
    boxes = torch.tensor(
        [
            _square(224),  # canonical size -> level 4
            _square(112),  # half -> level 3
            _square(111.9),  # just below half -> level 2
            _square(448),  # double -> level 5
            _square(447),  # just below -> level 4
            _square(2),  # tiny -> clamped to min level 2
            _square(5000),  # huge -> clamped to max level 5
            [0.0, 0.0, 448.0, 112.0],  # sqrt(area) = 224 -> level 4
        ]
    )
    levels = assign_boxes_to_levels(boxes, min_level=2, max_level=5)
    assert levels.tolist() == [2, 1, 0, 3, 2, 0, 3, 2]
    assert levels.dtype == torch.int64


def test_eps_after_log2_like_torchvision_just_below_a_boundary() -> None:
    # sqrt(area) / 224 = 0.5 - 4.5e-7: log2 + eps stays below 3 (torchvision); log2(. + eps),
    # detectron2's order, would give level 3 (index 1)
    box = torch.tensor([[0.0, 0.0, 111.9999, 111.9999]])
    assert assign_boxes_to_levels(box, 2, 5).tolist() == LevelMapper(2, 5)([box]).tolist() == [0]


def _random_boxes(n: int, g: torch.Generator, image: float) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * image * 0.8
    wh = torch.rand(n, 2, generator=g) ** 2 * image * 0.6 + 1
    return torch.cat([xy, (xy + wh).clamp(max=image)], dim=1)


def test_equals_torchvision_multiscale_roi_align() -> None:
    g = torch.Generator().manual_seed(0)
    features = [torch.randn(2, 8, 256 // s, 320 // s, generator=g) for s in (4, 8, 16, 32)]
    boxes = [_random_boxes(60, g, 256.0), _random_boxes(45, g, 256.0)]
    ours = MultiLevelRoIAlign(output_size=7, scales=FPN_SCALES, sampling_ratio=2, aligned=False)(features, boxes)
    pooler = MultiScaleRoIAlign(["p2", "p3", "p4", "p5"], 7, 2)
    named = OrderedDict((f"p{i + 2}", f) for i, f in enumerate(features))
    theirs = pooler(named, boxes, [(256, 320), (250, 300)])
    assert ours.shape == (105, 8, 7, 7)
    assert torch.equal(ours, theirs)


def _arange_feature() -> torch.Tensor:
    # value at (row y, column x) is 10*y + x; bilinear sampling of a linear map is exact
    ys, xs = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    return (10 * ys + xs)[None, None]


@pytest.mark.parametrize(
    ("aligned", "box", "expected"),
    [
        # aligned=False: box (1,1)-(3,3) in feature pixels, bins 1 px, centres 1.5 and 2.5
        (False, [2.0, 2.0, 6.0, 6.0], [[16.5, 17.5], [26.5, 27.5]]),
        # aligned=True: the same box shifted by -0.5 px: centres 1.0 and 2.0
        (True, [2.0, 2.0, 6.0, 6.0], [[11.0, 12.0], [21.0, 22.0]]),
        # aligned=False forces a 0.5-px box to 1 px: start 1, bins 0.5 px, centres 1.25, 1.75
        (False, [2.0, 2.0, 3.0, 3.0], [[13.75, 14.25], [18.75, 19.25]]),
        # aligned=True keeps it 0.5 px: start 0.5, bins 0.25 px, centres 0.625, 0.875
        (True, [2.0, 2.0, 3.0, 3.0], [[6.875, 7.125], [9.375, 9.625]]),
    ],
)
def test_single_level_roi_align_hand_computed(aligned: bool, box: list[float], expected: list[list[float]]) -> None:
    pooler = MultiLevelRoIAlign(output_size=2, scales=[0.5], sampling_ratio=2, aligned=aligned)
    pooled = pooler([_arange_feature()], [torch.tensor([box])])
    torch.testing.assert_close(pooled[0, 0], torch.tensor(expected))


def test_boxes_of_several_images_pool_from_their_own_image() -> None:
    feature = torch.cat([_arange_feature(), _arange_feature() + 100, _arange_feature() + 200])
    pooler = MultiLevelRoIAlign(output_size=2, scales=[0.5], sampling_ratio=2, aligned=False)
    box = torch.tensor([[2.0, 2.0, 6.0, 6.0]])
    pooled = pooler([feature], [box, torch.zeros(0, 4), box])
    assert pooled.shape == (2, 1, 2, 2)
    torch.testing.assert_close(pooled[1] - pooled[0], torch.full((1, 2, 2), 200.0))


def test_zero_boxes_give_empty_output() -> None:
    features = [torch.randn(1, 4, 64 // s, 64 // s) for s in (4, 8, 16, 32)]
    pooler = MultiLevelRoIAlign(output_size=7, scales=FPN_SCALES, sampling_ratio=0, aligned=True)
    assert pooler(features, [torch.zeros(0, 4)]).shape == (0, 4, 7, 7)
