"""Heatmaps -> keypoints: known peaks by hand, and torchvision's per-RoI loop as reference."""
from __future__ import annotations

import pytest
import torch
from torchvision.models.detection.roi_heads import heatmaps_to_keypoints as torchvision_decode

from plugrcnn_keypoint import heatmaps_to_keypoints
from plugrcnn_keypoint.decode import pixels_per_cell


def _peak(row: int, col: int, value: float = 4.0) -> torch.Tensor:
    maps = torch.zeros(1, 1, 56, 56)
    maps[0, 0, row, col] = value
    return maps


def test_peak_in_a_roi_the_size_of_the_heatmap_lands_on_its_own_pixel() -> None:
    # 56 x 56 RoI: the resize is the identity, pixel (20, 30) -> centre (30.5, 20.5) in the RoI
    keypoints = heatmaps_to_keypoints(_peak(20, 30), torch.tensor([[100.0, 200.0, 156.0, 256.0]]))
    assert keypoints[0, 0].tolist() == pytest.approx([130.5, 220.5, 4.0])


def test_peak_in_a_roi_three_times_the_heatmap() -> None:
    # 168 px: output pixel o samples heatmap coordinate (o + 0.5) / 3 - 0.5, so pixel 3c + 1
    # sits exactly on sample c and holds its value; its centre is x1 + 3c + 1.5
    boxes = torch.tensor([[10.0, 40.0, 178.0, 208.0]])
    keypoints = heatmaps_to_keypoints(_peak(7, 30), boxes)
    assert keypoints[0, 0, :2].tolist() == [10 + 91.5, 40 + 22.5]
    assert keypoints[0, 0, 2].item() == pytest.approx(4.0, abs=1e-4)


def test_fractional_roi_size_scales_pixel_centres_back_to_the_box() -> None:
    # a 56.7 px wide box is resized to 57 columns; column o samples heatmap x = (o + 0.5) * 56/57
    # - 0.5: column 31 (30.447) is nearer the peak at 30 than column 30 (29.465), and its centre
    # maps back to 31.5 * 56.7 / 57 px; rows keep the identity (56 px)
    keypoints = heatmaps_to_keypoints(_peak(10, 30), torch.tensor([[0.0, 0.0, 56.7, 56.0]]))
    assert keypoints[0, 0, 0].item() == pytest.approx(31.5 * 56.7 / 57, abs=1e-5)
    assert keypoints[0, 0, 1].item() == 10.5


@pytest.mark.parametrize("sizes", [(0.2, 40.0), (20.0, 90.0), (60.0, 400.0)])
def test_matches_torchvision_on_random_heatmaps(sizes: tuple[float, float]) -> None:
    gen = torch.Generator().manual_seed(int(sizes[1]))
    maps = torch.randn(24, 3, 56, 56, generator=gen) * 5
    low, high = sizes
    wh = low + torch.rand(24, 2, generator=gen) * (high - low)
    xy = torch.rand(24, 2, generator=gen) * 300
    boxes = torch.cat([xy, xy + wh], dim=1)
    ref, ref_scores = torchvision_decode(maps, boxes)
    ours = heatmaps_to_keypoints(maps, boxes)
    torch.testing.assert_close(ours[..., :2], ref[..., :2], atol=1e-4, rtol=0)
    torch.testing.assert_close(ours[..., 2], ref_scores, atol=1e-3, rtol=0)


def test_static_shapes_give_the_same_keypoints_on_peaked_heatmaps() -> None:
    gen = torch.Generator().manual_seed(0)
    centres = torch.randint(0, 56, (10, 4, 2), generator=gen).float()
    grid = torch.arange(56.0)
    # (R, K, 56, 56) gaussian bumps, the shape of a trained head's heatmaps
    maps = -((grid.view(1, 1, 56, 1) - centres[..., 0, None, None]) ** 2
             + (grid.view(1, 1, 1, 56) - centres[..., 1, None, None]) ** 2) / 8.0
    boxes = torch.tensor([[5.0, 5.0, 5.0 + 30 * (i + 1), 5.0 + 17 * (i + 1)] for i in range(10)])
    exact = heatmaps_to_keypoints(maps, boxes)
    static = heatmaps_to_keypoints(maps, boxes, num_pixels=pixels_per_cell(400.0, 56), num_candidates=16)
    torch.testing.assert_close(static, exact)


def test_no_rois_give_no_keypoints() -> None:
    assert heatmaps_to_keypoints(torch.zeros(0, 5, 56, 56), torch.zeros(0, 4)).shape == (0, 5, 3)
