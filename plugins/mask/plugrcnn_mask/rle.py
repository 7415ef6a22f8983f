"""Binary masks <-> COCO RLE (pycocotools), with counts as str so records are JSON-ready."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
import torch


def encode_masks(masks: torch.Tensor) -> list[dict[str, Any]]:
    """(D, H, W) bool -> D COCO RLEs {"size": [H, W], "counts": str}."""
    if masks.shape[0] == 0:
        return []
    # pycocotools wants (H, W, D) uint8 in Fortran order, which is (D, W, H) in C order: torch
    # transposes each mask (multi-threaded, ~5x faster than numpy's asfortranarray copy), and
    # numpy's reversed-axes view of that buffer is the Fortran-ordered (H, W, D) without a copy
    stacked = masks.detach().to("cpu", torch.uint8).transpose(1, 2).contiguous().numpy().transpose(2, 1, 0)
    return [{"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
            for rle in mask_utils.encode(stacked)]


def decode_rle(rle: dict[str, Any]) -> torch.Tensor:
    """A COCO RLE (counts str or bytes) -> (H, W) bool."""
    counts = rle["counts"]
    compressed = {"size": rle["size"], "counts": counts.encode("ascii") if isinstance(counts, str)
                  else counts}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy 2 vs pycocotools' decode
        return torch.from_numpy(mask_utils.decode(compressed)).bool()
