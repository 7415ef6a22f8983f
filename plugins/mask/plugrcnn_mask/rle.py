"""Binary masks <-> COCO RLE (pycocotools), with counts as str so records are JSON-ready."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
import torch


def encode_masks(masks: torch.Tensor) -> list[dict[str, Any]]:
    """(D, H, W) bool -> D COCO RLEs {"size": [H, W], "counts": str}.

    A pasted mask is zero outside a small window around its box, so each mask is run-length
    coded from its window only (column-major, as COCO counts run), the zeros around it added as
    run lengths: the work follows the masks' area, not D * H * W. Identical to pycocotools'
    encode of the whole frames (tested)."""
    if masks.shape[0] == 0:
        return []
    frames = masks.detach().to("cpu", torch.bool).numpy()  # (D, H, W), no copy
    height, width = int(frames.shape[1]), int(frames.shape[2])
    # (D, H): a row holds a pixel of the mask (one multi-threaded pass over the frames)
    rows_hit = masks.detach().to("cpu", torch.bool).view(torch.uint8).amax(dim=2).bool().numpy()
    encoded = []
    for frame, rows in zip(frames, rows_hit):
        counts = window_counts(frame, rows)
        rle = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        encoded.append({"size": [height, width], "counts": rle["counts"].decode("ascii")})
    return encoded


def window_counts(frame: np.ndarray, rows: np.ndarray) -> list[int]:
    """Uncompressed COCO counts (runs of 0s and 1s alternating, 0s first, column-major) of one
    (H, W) bool mask whose occupied rows are `rows` (H,)."""
    height, width = frame.shape
    if not rows.any():
        return [height * width]
    y0, y1 = _first_last(rows)
    x0, x1 = _first_last(frame[y0:y1].any(axis=0))
    h = y1 - y0
    # column-major stream of the window, each column followed by one element standing for the
    # (H - h) zeros below it and above the next one: (w, h + 1) -> (w * (h + 1),)
    window = frame[y0:y1, x0:x1].T  # (w, h)
    stream = np.zeros((window.shape[0], h + 1), dtype=np.uint8)
    stream[:, :h] = window
    weights = np.ones((window.shape[0], h + 1), dtype=np.int64)
    weights[:, h] = height - h
    stream, weights = stream.reshape(-1), weights.reshape(-1)
    # the zeros before the window (columns left of it, rows above it) come first; the last
    # column's gap is instead every zero after the window
    lead = x0 * height + y0
    trail = height * width - lead - int(weights[:-1].sum())
    stream = np.concatenate([[0], stream[:-1], [0]]).astype(np.uint8)
    weights = np.concatenate([[lead], weights[:-1], [trail]])
    keep = weights > 0  # a window as tall as the frame leaves empty gaps
    stream, weights = stream[keep], weights[keep]
    # runs: where the value changes; a run's length is the sum of its elements' weights
    edges = np.concatenate([[0], np.flatnonzero(stream[1:] != stream[:-1]) + 1, [stream.size]])
    totals = np.concatenate([[0], np.cumsum(weights)])
    runs = (totals[edges[1:]] - totals[edges[:-1]]).tolist()
    return [0, *runs] if stream[0] == 1 else runs  # COCO counts start with a run of zeros


def _first_last(hit: np.ndarray) -> tuple[int, int]:
    """First index and one past the last of the True entries of a 1-D bool array."""
    index = np.flatnonzero(hit)
    return int(index[0]), int(index[-1]) + 1


def decode_rle(rle: dict[str, Any]) -> torch.Tensor:
    """A COCO RLE (counts str or bytes) -> (H, W) bool."""
    counts = rle["counts"]
    compressed = {"size": rle["size"], "counts": counts.encode("ascii") if isinstance(counts, str)
                  else counts}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy 2 vs pycocotools' decode
        return torch.from_numpy(mask_utils.decode(compressed)).bool()
