"""Window-based RLE encoding equals pycocotools' encoding of the whole frames."""
from __future__ import annotations

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch

from plugrcnn_mask.rle import decode_rle, encode_masks


def whole_frame_counts(masks: torch.Tensor) -> list[str]:
    return [mask_utils.encode(np.asfortranarray(m.numpy().astype(np.uint8)))["counts"].decode("ascii")
            for m in masks]


def corner_cases() -> torch.Tensor:
    masks = torch.zeros(6, 20, 30, dtype=torch.bool)
    masks[0, 0, 0] = True                 # first pixel: counts start with a zero-length run
    masks[1, 19, 29] = True               # last pixel
    masks[2, 5:9, 3:20] = True
    masks[2, 6, 10] = False               # a hole
    masks[3, :, 4:7] = True               # as tall as the frame: no gap between columns
    masks[4] = True                       # everything
    return masks                          # masks[5]: empty


@pytest.mark.parametrize("masks", [
    corner_cases(),
    torch.rand(5, 7, 11, generator=torch.Generator().manual_seed(0)) > 0.5,
    torch.rand(3, 1, 9, generator=torch.Generator().manual_seed(1)) > 0.3,
    torch.rand(3, 9, 1, generator=torch.Generator().manual_seed(2)) > 0.3,
], ids=["corners", "random", "one-row", "one-column"])
def test_encoding_equals_pycocotools_whole_frames(masks: torch.Tensor) -> None:
    encoded = encode_masks(masks)
    assert [r["counts"] for r in encoded] == whole_frame_counts(masks)
    assert all(r["size"] == list(masks.shape[1:]) for r in encoded)
    assert torch.equal(torch.stack([decode_rle(r) for r in encoded]), masks)
