from __future__ import annotations

import math

import pytest
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator as TorchvisionAnchorGenerator
from torchvision.models.detection.image_list import ImageList

from plugrcnn.errors import PlugrcnnError
from plugrcnn.modeling.anchors import AnchorGenerator

FPN_SIZES = ((32,), (64,), (128,), (256,), (512,))
RATIOS = (0.5, 1.0, 2.0)
FPN_STRIDES = (4, 8, 16, 32, 64)


def _one_level(**kwargs: object) -> AnchorGenerator:
    return AnchorGenerator(sizes=((32,),), aspect_ratios=RATIOS, strides=(16,), **kwargs)


def test_rounded_grid_on_tiny_feature_map() -> None:
    anchors = _one_level(round_base_anchors=True)([(2, 3)], (32, 48), device="cpu", dtype=torch.float32)[0]
    assert anchors.shape == (2 * 3 * 3, 4)
    # ratio 0.5 (h/w): w = 32*sqrt(2) = 45.25 -> half 22.63 -> 23; h half 11.31 -> 11
    base = torch.tensor([[-23.0, -11.0, 23.0, 11.0], [-16.0, -16.0, 16.0, 16.0], [-11.0, -23.0, 11.0, 23.0]])
    torch.testing.assert_close(anchors[0:3], base)
    # location index 1 is row 0, column 1: shifted by (16, 0); location 5 is row 1, column 2
    torch.testing.assert_close(anchors[3:6], base + torch.tensor([16.0, 0.0, 16.0, 0.0]))
    torch.testing.assert_close(anchors[15:18], base + torch.tensor([32.0, 16.0, 32.0, 16.0]))


def test_unrounded_anchors_with_half_stride_offset() -> None:
    anchors = _one_level(offset=0.5)([(2, 3)], (32, 48), device="cpu", dtype=torch.float32)[0]
    half_long, half_short = 16 * math.sqrt(2), 16 / math.sqrt(2)
    expected_first = torch.tensor([8 - half_long, 8 - half_short, 8 + half_long, 8 + half_short])
    torch.testing.assert_close(anchors[0], expected_first)
    # location 1 (row 0, column 1) centred at (16 + 8, 8); its square anchor is index 4
    torch.testing.assert_close(anchors[4], torch.tensor([8.0, -8.0, 40.0, 24.0]))
    # areas stay size**2 for every ratio
    areas = (anchors[:, 2] - anchors[:, 0]) * (anchors[:, 3] - anchors[:, 1])
    torch.testing.assert_close(areas, torch.full((18,), 1024.0))


def test_matches_torchvision_on_fpn_batch_with_p6_stride_quirk() -> None:
    padded = (800, 1088)
    feature_sizes = [(200, 272), (100, 136), (50, 68), (25, 34), (13, 17)]
    ours = AnchorGenerator(
        sizes=FPN_SIZES, aspect_ratios=RATIOS, strides=FPN_STRIDES, round_base_anchors=True, strides_from_image=True
    )([tuple(s) for s in feature_sizes], padded, device="cpu", dtype=torch.float32)

    theirs_gen = TorchvisionAnchorGenerator(FPN_SIZES, (RATIOS,) * 5)
    images = ImageList(torch.zeros(2, 3, *padded), [(800, 1066), (750, 1088)])
    features = [torch.zeros(2, 1, h, w) for h, w in feature_sizes]
    theirs = theirs_gen(images, features)[0]
    assert torch.equal(torch.cat(ours), theirs)
    # P6: 800 // 13 = 61 px between rows, 1088 // 17 = 64 px between columns
    p6 = ours[4]
    assert p6[17 * 3, 1] - p6[0, 1] == 61
    assert p6[3, 0] - p6[0, 0] == 64


def test_configured_strides_ignore_image_size() -> None:
    gen = AnchorGenerator(sizes=FPN_SIZES, aspect_ratios=RATIOS, strides=FPN_STRIDES)
    p6 = gen([(200, 272), (100, 136), (50, 68), (25, 34), (13, 17)], (800, 1088))[4]
    assert p6[17 * 3, 1] - p6[0, 1] == 64
    assert gen.num_anchors_per_location == 3


def test_mismatched_levels_is_an_error() -> None:
    with pytest.raises(PlugrcnnError):
        AnchorGenerator(sizes=FPN_SIZES, aspect_ratios=RATIOS, strides=(4, 8))
