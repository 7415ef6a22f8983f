"""Resize matches torchvision's GeneralizedRCNNTransform; flips are hand-checked and undo
themselves; boxes, points, polygons and masks agree with each other under every op."""
from __future__ import annotations

import random
import warnings

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes

from plugrcnn.data.transforms import (
    HFlipOp,
    ResizeOp,
    TrainAugmentation,
    hflip,
    resize_shortest_edge,
    transform_boxes,
    transform_masks,
    transform_points,
    transform_polygons,
    transform_rle,
)


@pytest.mark.parametrize(("height", "width", "min_size", "max_size"), [
    (100, 150, 64, 1333),   # short side decides: 64 x 96
    (97, 61, 80, 1333),     # portrait, non-integer scale: floor(97 * 80 / 61) = 127
    (60, 200, 64, 160),     # long side caps the scale: 48 x 160
    (33, 47, 128, 256),     # upsampling
])
def test_resize_equals_torchvision_generalized_rcnn_transform(
        height: int, width: int, min_size: int, max_size: int) -> None:
    image = torch.rand(3, height, width, generator=torch.Generator().manual_seed(height))
    reference = GeneralizedRCNNTransform(min_size, max_size, image_mean=[0.0] * 3,
                                         image_std=[1.0] * 3).eval()
    boxes = torch.tensor([[1.0, 2.0, 30.0, 20.0], [0.0, 0.0, width, height]])
    with torch.no_grad():
        image_list, targets = reference([image], [{"boxes": boxes}])
    expected_height, expected_width = image_list.image_sizes[0]
    resized, op = resize_shortest_edge(image, min_size, max_size)
    assert (op.new_height, op.new_width) == tuple(resized.shape[-2:])
    assert tuple(resized.shape[-2:]) == (expected_height, expected_width)
    assert torch.allclose(resized, image_list.tensors[0, :, :expected_height, :expected_width],
                          atol=1e-6)
    assert torch.allclose(transform_boxes(boxes, op), targets[0]["boxes"], atol=1e-4)
    assert torch.allclose(transform_boxes(boxes, op),
                          resize_boxes(boxes, (height, width), resized.shape[-2:]), atol=1e-4)


def test_resize_of_uint8_keeps_the_value_range() -> None:
    image = torch.full((3, 10, 20), 200, dtype=torch.uint8)
    resized, op = resize_shortest_edge(image, 5, 100)
    assert resized.dtype == torch.float32 and resized.shape == (3, 5, 10)
    assert torch.all(resized == 200.0)
    assert op == ResizeOp(scale_x=0.5, scale_y=0.5, new_height=5, new_width=10)


def test_resize_masks_equals_torchvision_target_masks() -> None:
    masks = torch.rand(2, 37, 53, generator=torch.Generator().manual_seed(0)) > 0.5
    reference = GeneralizedRCNNTransform(64, 1333, image_mean=[0.0] * 3, image_std=[1.0] * 3)
    targets = [{"boxes": torch.zeros(2, 4), "masks": masks.to(torch.uint8)}]
    reference.train()
    _, resized_targets = reference([torch.rand(3, 37, 53)], targets)
    _, op = resize_shortest_edge(torch.rand(3, 37, 53), 64, 1333)
    assert torch.equal(transform_masks(masks.to(torch.uint8), op), resized_targets[0]["masks"])


def test_hflip_by_hand() -> None:
    image = torch.arange(6.0).reshape(1, 2, 3)
    flipped, op = hflip(image)
    assert op == HFlipOp(width=3)
    assert flipped.tolist() == [[[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]]
    flip = HFlipOp(width=10)
    assert transform_boxes(torch.tensor([[1.0, 2.0, 4.0, 6.0]]), flip).tolist() == \
        [[6.0, 2.0, 9.0, 6.0]]
    keypoints = torch.tensor([[[1.5, 3.0, 2.0], [0.0, 0.0, 0.0]]])  # (1, K=2, 3) with v
    assert transform_points(keypoints, flip).tolist() == [[[8.5, 3.0, 2.0], [10.0, 0.0, 0.0]]]
    assert transform_polygons([[1, 1, 4, 1, 4, 5], [0, 0, 10, 0, 10, 2]], flip) == \
        [[9.0, 1.0, 6.0, 1.0, 6.0, 5.0], [10.0, 0.0, 0.0, 0.0, 0.0, 2.0]]


def test_resize_then_flip_in_order_by_hand() -> None:
    ops = [ResizeOp(scale_x=2.0, scale_y=0.5, new_height=5, new_width=20), HFlipOp(width=20)]
    assert transform_boxes(torch.tensor([[1.0, 2.0, 4.0, 6.0]]), ops).tolist() == \
        [[12.0, 1.0, 18.0, 3.0]]
    assert transform_points(torch.tensor([[3.0, 4.0]]), ops).tolist() == [[14.0, 2.0]]
    assert transform_polygons([[1, 2, 4, 2, 4, 6]], ops) == [[18.0, 1.0, 12.0, 1.0, 12.0, 3.0]]


def test_flip_twice_is_the_identity() -> None:
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(3, 7, 9, generator=generator)
    boxes = torch.tensor([[0.5, 1.0, 3.25, 6.0], [2.0, 0.0, 9.0, 7.0]])
    points = torch.rand(4, 5, 3, generator=generator) * 9
    polygons = [[0.5, 1.0, 8.0, 2.0, 3.0, 6.5]]
    once, op = hflip(image)
    assert torch.equal(hflip(once)[0], image)
    assert torch.equal(transform_boxes(boxes, [op, op]), boxes)
    assert torch.allclose(transform_points(points, [op, op]), points)
    assert transform_polygons(polygons, [op, op]) == polygons


def _decode(rle: dict) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pycocotools vs numpy 2
        return mask_utils.decode(dict(rle, counts=rle["counts"].encode("ascii")))


def test_flipped_mask_box_equals_flipped_box() -> None:
    """Pixel columns 2..4 span [2, 5); flipped in a 10-wide image they are 5..7, [5, 8)."""
    mask = np.zeros((6, 10), dtype=np.uint8)
    mask[1:4, 2:5] = 1
    uncompressed = {"counts": [6 + 1 + 6 * 1, 3, 3, 3, 3, 3, 6 * 5 + 2], "size": [6, 10]}
    flipped = transform_rle(uncompressed, HFlipOp(width=10))
    assert isinstance(flipped["counts"], str)
    flipped_mask = _decode(flipped)
    assert np.array_equal(flipped_mask, mask[:, ::-1])
    mask_box = mask_utils.toBbox(dict(flipped, counts=flipped["counts"].encode("ascii")))
    x, y, w, h = mask_box.tolist()
    box = transform_boxes(torch.tensor([[2.0, 1.0, 5.0, 4.0]]), HFlipOp(width=10))
    assert box.tolist() == [[x, y, x + w, y + h]] == [[5.0, 1.0, 8.0, 4.0]]
    back = transform_rle(flipped, HFlipOp(width=10))
    assert np.array_equal(_decode(back), mask)


def test_resized_rle_equals_resized_mask() -> None:
    mask = (torch.rand(12, 20, generator=torch.Generator().manual_seed(3)) > 0.6).to(torch.uint8)
    rle = mask_utils.encode(np.asfortranarray(mask.numpy()))
    rle = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
    op = ResizeOp(scale_x=1.5, scale_y=1.5, new_height=18, new_width=30)
    resized = transform_rle(rle, op)
    assert resized["size"] == [18, 30]
    assert np.array_equal(_decode(resized), transform_masks(mask[None], op)[0].numpy())


@pytest.mark.parametrize("make_rng", [lambda: random.Random(5),
                                      lambda: torch.Generator().manual_seed(5)])
def test_train_augmentation_draws_sizes_and_flips_reproducibly(make_rng) -> None:
    image = torch.rand(3, 40, 60)
    augmentation = TrainAugmentation(min_sizes=(20, 30, 40), max_size=1000, flip_prob=0.5)
    first_rng, second_rng = make_rng(), make_rng()
    runs = [[augmentation(image, rng) for _ in range(24)] for rng in (first_rng, second_rng)]
    sizes, flips = set(), []
    for (out_a, ops_a), (out_b, ops_b) in zip(*runs):
        assert ops_a == ops_b and torch.equal(out_a, out_b)
        assert isinstance(ops_a[0], ResizeOp) and ops_a[0].new_height == out_a.shape[1]
        sizes.add(ops_a[0].new_height)
        flips.append(len(ops_a) == 2)
        if len(ops_a) == 2:
            assert ops_a[1] == HFlipOp(width=ops_a[0].new_width)
            assert torch.equal(out_a, resize_shortest_edge(image, out_a.shape[1], 1000)[0]
                               .flip(-1))
    assert sizes == {20, 30, 40}
    assert any(flips) and not all(flips)


def test_train_augmentation_flip_probability_bounds() -> None:
    image = torch.rand(3, 8, 8)
    rng = random.Random(0)
    never = TrainAugmentation(min_sizes=(8,), max_size=100, flip_prob=0.0)
    always = TrainAugmentation(min_sizes=(8,), max_size=100, flip_prob=1.0)
    assert all(len(never(image, rng)[1]) == 1 for _ in range(10))
    assert all(len(always(image, rng)[1]) == 2 for _ in range(10))
