"""Pasting 28x28 masks into the image: known boxes, torchvision's and detectron2's conventions."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torchvision.models.detection.roi_heads import paste_masks_in_image

import plugrcnn_mask.paste as paste_module
from plugrcnn_mask.paste import paste_masks, paste_probabilities
from plugrcnn_mask.rle import decode_rle, encode_masks


def _smooth_masks(count: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(count, 1, 28, 28, generator=generator)
    return F.avg_pool2d(noise, 5, 1, 2)[:, 0] * 1.6 - 0.3  # (D, 28, 28), about 0.1 .. 0.9


def _boxes(count: int, seed: int, height: int, width: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    xy = torch.rand(count, 2, generator=generator) * torch.tensor([width, height]) * 0.6
    wh = torch.rand(count, 2, generator=generator) * 80 + 0.3  # some boxes under a pixel
    return torch.cat([xy, xy + wh], dim=1)


def test_a_full_mask_fills_exactly_its_box() -> None:
    mask = torch.ones(1, 28, 28)
    mask_left = mask.clone()
    mask_left[..., 14:] = 0
    pasted = paste_masks(torch.cat([mask, mask_left]), torch.tensor([[10.0, 20, 38, 48]] * 2), (64, 64))
    expected = torch.zeros(2, 64, 64, dtype=torch.bool)
    expected[0, 20:48, 10:38] = True
    expected[1, 20:48, 10:24] = True  # the left 14 of 28 columns
    assert torch.equal(pasted, expected)


def test_torchvision_mode_matches_torchvision_paste_masks_in_image() -> None:
    masks, boxes = _smooth_masks(60, 0), _boxes(60, 1, 90, 130)
    reference = paste_masks_in_image(masks[:, None], boxes, (90, 130))[:, 0]
    ours = paste_probabilities(masks, boxes, (90, 130), mode="torchvision")
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=0)
    assert torch.equal(paste_masks(masks, boxes, (90, 130), mode="torchvision"), reference >= 0.5)


def test_aligned_mode_matches_detectron2_grid_sample_paste() -> None:
    masks, boxes = _smooth_masks(30, 2), _boxes(30, 3, 70, 50)
    x0, y0, x1, y1 = boxes.unbind(1)
    # detectron2: pixel centres in [-1, 1] box coordinates, bilinear, zeros outside
    gy = ((torch.arange(70) + 0.5)[None] - y0[:, None]) / (y1 - y0)[:, None] * 2 - 1  # (D, H)
    gx = ((torch.arange(50) + 0.5)[None] - x0[:, None]) / (x1 - x0)[:, None] * 2 - 1  # (D, W)
    grid = torch.stack([gx[:, None, :].expand(-1, 70, -1), gy[:, :, None].expand(-1, -1, 50)], dim=3)
    reference = F.grid_sample(masks[:, None], grid, align_corners=False)[:, 0]
    torch.testing.assert_close(paste_probabilities(masks, boxes, (70, 50)), reference,
                               atol=1e-5, rtol=0)


def test_chunked_paste_equals_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    masks, boxes = _smooth_masks(9, 4), _boxes(9, 5, 40, 40)
    whole = paste_masks(masks, boxes, (40, 40))
    monkeypatch.setattr(paste_module, "_CHUNK_ELEMENTS", 2 * 40 * 40)  # two masks per chunk
    assert torch.equal(paste_masks(masks, boxes, (40, 40)), whole)
    assert paste_masks(masks[:0], boxes[:0], (40, 40)).shape == (0, 40, 40)


def test_rle_round_trip_is_json_ready_and_lossless() -> None:
    masks = paste_masks(_smooth_masks(5, 6), _boxes(5, 7, 33, 47), (33, 47))
    assert masks.flatten(1).any(1).all()
    rles = json.loads(json.dumps(encode_masks(masks)))
    assert [r["size"] for r in rles] == [[33, 47]] * 5
    assert torch.equal(torch.stack([decode_rle(r) for r in rles]), masks)
    assert encode_masks(masks[:0]) == []


def _hard_boxes(count: int, seed: int, height: int, width: int) -> torch.Tensor:
    """Thin (5-20 px), sub-pixel (< 1 px) and large boxes, a third of them past the image
    border and clipped to it, as detections are."""
    gen = torch.Generator().manual_seed(seed)
    x1 = (torch.rand(count, generator=gen) * 1.2 - 0.1) * width
    y1 = (torch.rand(count, generator=gen) * 1.2 - 0.1) * height
    kind = torch.arange(count) % 3
    w = torch.where(kind == 0, torch.rand(count, generator=gen) * 0.9,
                    torch.where(kind == 1, 5 + torch.rand(count, generator=gen) * 15,
                                torch.rand(count, generator=gen) * width))
    h = torch.where(kind == 1, torch.rand(count, generator=gen) * 0.9,
                    torch.where(kind == 2, 5 + torch.rand(count, generator=gen) * 15,
                                torch.rand(count, generator=gen) * height))
    boxes = torch.stack([x1, y1, x1 + w, y1 + h], 1)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    return boxes


@pytest.mark.parametrize("size", [(37, 300), (480, 64), (813, 1201)])
def test_torchvision_mode_is_bit_identical_on_thin_subpixel_and_border_boxes(size: tuple[int, int]) -> None:
    """Every pasted value equals torchvision's exactly, so no pixel flips at the threshold."""
    masks = torch.sigmoid((_smooth_masks(90, 8) - 0.5) * 12)
    boxes = _hard_boxes(90, 9, *size)
    sides = torch.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1).amin(1)
    at_border = (boxes[:, :2] == 0).any(1) | (boxes[:, 2] == size[1]) | (boxes[:, 3] == size[0])
    assert (sides < 1).sum() > 20 and at_border.sum() > 5
    reference = paste_masks_in_image(masks[:, None], boxes, size)[:, 0]
    assert torch.equal(paste_probabilities(masks, boxes, size, mode="torchvision"), reference)
    assert torch.equal(paste_masks(masks, boxes, size, mode="torchvision"), reference >= 0.5)


def test_torchvision_mode_pastes_a_subpixel_box_as_one_row() -> None:
    """torchvision truncates the expanded box to integers: a box 0.4 px high at y = 10.2 pastes
    into row 10 only (one row, the mask resized to height 1), a full mask fills it."""
    pasted = paste_masks(torch.ones(1, 28, 28), torch.tensor([[4.0, 10.2, 12.0, 10.6]]), (20, 20),
                         mode="torchvision")
    rows = pasted[0].any(1).nonzero().flatten().tolist()
    assert rows == [10]
