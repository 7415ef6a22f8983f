"""Time encode_masks against pycocotools' encoding of whole frames (100 masks of 800x1333).

    PYTHONPATH=core:plugins/mask python tools/bench_mask_rle.py
"""
from __future__ import annotations

import time

import numpy as np
import pycocotools.mask as mask_utils
import torch

from plugrcnn_mask.rle import encode_masks


def whole_frames(masks: torch.Tensor) -> list:
    return mask_utils.encode(np.asfortranarray(masks.to(torch.uint8).permute(1, 2, 0).numpy()))


def main() -> None:
    gen = torch.Generator().manual_seed(0)
    masks = torch.zeros(100, 800, 1333, dtype=torch.bool)
    for mask in masks:  # 200 x 150 boxes, the size of a typical COCO object at this scale
        x, y = int(torch.randint(0, 1100, (1,), generator=gen)), int(torch.randint(0, 600, (1,), generator=gen))
        mask[y:y + 150, x:x + 200] = True
    for name, encode in (("pycocotools, whole frames", whole_frames), ("encode_masks, windows", encode_masks)):
        encode(masks)
        start = time.perf_counter()
        for _ in range(5):
            encode(masks)
        print(f"{name:<28}{(time.perf_counter() - start) / 5 * 1000:8.0f} ms per 100 masks of 800x1333")


if __name__ == "__main__":
    main()
