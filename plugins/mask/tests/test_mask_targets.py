"""Mask targets: read from polygons / RLE, moved by resize and flip, cut to RoIs at 28x28."""
from __future__ import annotations

import pickle

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from torchvision.ops import roi_align

from plugrcnn.data.transforms import HFlipOp, ResizeOp
from plugrcnn.errors import PlugrcnnError
from plugrcnn_mask.targets import MaskCodec, crop_mask_targets

# a 20 x 40 rectangle in a 100 x 100 image: pixels x 10..29, y 20..59
RECT = [10.0, 20.0, 30.0, 20.0, 30.0, 60.0, 10.0, 60.0]


def _ann(segmentation, **extra) -> dict:
    return {"id": 7, "segmentation": segmentation, "iscrowd": 0, **extra}


def _rect_bitmap() -> np.ndarray:
    bitmap = np.zeros((100, 100), dtype=np.uint8)
    bitmap[20:60, 10:30] = 1
    return bitmap


def _cut(target, box: list[float], gt: int = 0) -> torch.Tensor:
    return crop_mask_targets(target, torch.tensor([box]), torch.tensor([gt]), 28)[0]


def _left_half() -> torch.Tensor:
    expected = torch.zeros(28, 28)
    expected[:, :14] = 1
    return expected


def test_polygon_cut_to_a_roi_twice_its_width_fills_the_left_half() -> None:
    target = MaskCodec().read([_ann([RECT])], 100, 100)
    # the RoI spans x 10..50: the rectangle (x 10..30) is its left half, all of its height
    torch.testing.assert_close(_cut(target, [10, 20, 50, 60]), _left_half())


def test_resize_then_flip_moves_the_target_with_the_image() -> None:
    codec = MaskCodec()
    target = codec.read([_ann([RECT])], 100, 100)
    resized = codec.transform(target, ResizeOp(2.0, 2.0, 200, 200))
    # after x2: rectangle at x 20..60, y 40..120; RoI x 20..100 holds it in its left half
    torch.testing.assert_close(_cut(resized, [20, 40, 100, 120]), _left_half())
    flipped = codec.transform(resized, HFlipOp(200))
    # after the flip: rectangle at x 140..180, the right half of RoI x 100..180
    torch.testing.assert_close(_cut(flipped, [100, 40, 180, 120]), _left_half().flip(-1))


def test_rle_compressed_and_uncompressed_give_the_polygon_s_targets() -> None:
    encoded = mask_utils.encode(np.asfortranarray(_rect_bitmap()))
    compressed = {"size": [100, 100], "counts": encoded["counts"].decode("ascii")}
    # uncompressed: column-major run lengths starting with a run of zeros
    flat = _rect_bitmap().flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    uncompressed = {"size": [100, 100], "counts": runs}
    codec = MaskCodec()
    target = codec.read([_ann([RECT]), _ann(compressed), _ann(uncompressed)], 100, 100)
    boxes = torch.tensor([[5.0, 15.0, 45.0, 70.0]] * 3)
    cuts = crop_mask_targets(target, boxes, torch.arange(3), 28)
    assert cuts[0].sum() > 100
    torch.testing.assert_close(cuts[1], cuts[0])
    torch.testing.assert_close(cuts[2], cuts[0])


def test_cut_equals_roi_align_of_the_full_image_mask_also_after_a_flip() -> None:
    # a triangle: the window + origin bookkeeping must agree with the full-image reference
    triangle = [[12.5, 7.0, 80.25, 30.5, 40.0, 90.0]]
    rle = mask_utils.merge(mask_utils.frPyObjects(triangle, 100, 120))
    full = torch.from_numpy(mask_utils.decode(rle)).float()  # (100, 120)
    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(20, 2, generator=generator) * 80
    boxes = torch.cat([xy, xy + 5 + torch.rand(20, 2, generator=generator) * 60], dim=1)
    codec = MaskCodec()
    target = codec.read([_ann(triangle)], 100, 120)
    for tgt, image in ((target, full), (codec.transform(target, HFlipOp(120)), full.flip(-1))):
        rois = torch.cat([torch.zeros(20, 1), boxes], dim=1)
        ref = roi_align(image[None, None], rois, (28, 28), 1.0, sampling_ratio=2, aligned=True)
        expected = (ref[:, 0] >= 0.5).float()
        ours = crop_mask_targets(tgt, boxes, torch.zeros(20, dtype=torch.long), 28)
        torch.testing.assert_close(ours, expected)


def test_bad_polygons_empty_and_outside_masks_are_not_valid_and_do_not_crash() -> None:
    empty_rle = mask_utils.encode(np.zeros((100, 100), dtype=np.uint8, order="F"))
    annotations = [
        _ann([[10.0, 10.0, 20.0, 20.0]]),                  # 2 points: encloses nothing
        _ann([[10.0, 10.0, 20.0, 20.0, 30.0]]),            # odd length
        _ann([[150.0, 150.0, 180.0, 150.0, 170.0, 190.0]]),  # entirely outside the image
        _ann({"size": [100, 100], "counts": empty_rle["counts"].decode("ascii")}),  # empty RLE
        _ann([]),                                           # box-only annotation
        _ann([RECT], iscrowd=1),                            # crowd: never foreground
        _ann([[1.0, 2.0, 3.0, 4.0], RECT]),                 # one degenerate part, one good
        {"id": 9, "iscrowd": 0},                            # no segmentation key at all
    ]
    target = MaskCodec().read(annotations, 100, 100)
    assert MaskCodec().valid(target).tolist() == [False] * 6 + [True, False]
    torch.testing.assert_close(_cut(target, [10, 20, 50, 60], gt=6), _left_half())


def test_polygon_partly_outside_the_image_is_clipped_to_it() -> None:
    target = MaskCodec().read([_ann([[-20.0, 50.0, 40.0, 50.0, 40.0, 130.0, -20.0, 130.0]])],
                              100, 100)
    assert target.valid.tolist() == [True]
    assert int(target.windows[0].sum()) == 40 * 50  # pixels x 0..39, y 50..99 only


def test_rle_of_the_wrong_size_is_rejected_naming_the_annotation() -> None:
    bad = _ann({"size": [50, 50], "counts": [2500]})
    with pytest.raises(PlugrcnnError, match=r"annotation id 7: RLE size \[50, 50\]"):
        MaskCodec().read([bad], 100, 100)


def test_targets_survive_pickling_for_data_loader_workers() -> None:
    codec = MaskCodec()
    target = codec.transform(codec.read([_ann([RECT])], 100, 100), HFlipOp(100))
    restored = pickle.loads(pickle.dumps((codec, target)))[1]
    torch.testing.assert_close(_cut(restored, [50, 20, 90, 60]), _cut(target, [50, 20, 90, 60]))
