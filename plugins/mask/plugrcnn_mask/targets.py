"""GT masks: read from COCO annotations, moved with the image, cut into per-RoI training targets.

Each GT mask is rasterised once, at the ORIGINAL image's resolution, into a small window around
the mask (its bounding box plus one pixel, clipped to the image). Resize and flip do not touch
the bitmaps: the codec only composes them into an affine map original -> current coordinates.
At loss time each RoI is mapped back into the original frame and RoIAligned from its GT's
window, so no mask is ever resampled twice and a flip costs nothing.

Coordinates are continuous (pixel i covers [i, i + 1)), as in plugrcnn.data.transforms.

Shape shorthand:
    G       GT instances of one image (crowd included, in GT order)
    Hc, Wc  the common size of the windows (the largest window, others zero-padded)
    R       RoIs
    M       target resolution (28)
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
import torch
from torchvision.ops import roi_align

from plugrcnn.heads import HFlipOp, ResizeOp
from plugrcnn.heads import PlugrcnnError

Window = tuple[np.ndarray, int, int]  # (Hc, Wc) uint8 bitmap, x and y of its top-left pixel


@dataclass(frozen=True)
class MaskTargets:
    """The GT masks of one image; picklable (built in data-loader workers)."""

    windows: torch.Tensor   # (G, Hc, Wc) uint8: each mask around its box, original resolution
    origins: torch.Tensor   # (G, 2) float32: (x, y) of each window's top-left corner, original px
    valid: torch.Tensor     # (G,) bool: the instance has a non-empty mask
    # current = scale * original + offset, per axis (x, y); a negative x scale: flipped image
    scale: tuple[float, float] = (1.0, 1.0)
    offset: tuple[float, float] = (0.0, 0.0)

    def boxes_to_original(self, boxes: torch.Tensor) -> torch.Tensor:
        """(R, 4) XYXY boxes in current coordinates -> the same boxes in the original image."""
        (sx, sy), (ox, oy) = self.scale, self.offset
        x1, y1, x2, y2 = boxes.unbind(-1)
        x1, x2 = (x1 - ox) / sx, (x2 - ox) / sx
        if sx < 0:  # a flip swaps the left and right edges
            x1, x2 = x2, x1
        return torch.stack([x1, (y1 - oy) / sy, x2, (y2 - oy) / sy], dim=-1)

    @property
    def flipped(self) -> bool:
        return self.scale[0] < 0


@dataclass(frozen=True)
class MaskCodec:
    """Reads polygons or RLE (compressed or not) from COCO annotations; see the module doc.

    Handled without error: box-only and crowd annotations, polygons that are empty, leave the
    image, or have parts with fewer than 3 points (such parts enclose nothing and are dropped):
    all give ``valid == False`` when nothing of the mask is left. Malformed data that the COCO
    data set's validation rejects (an RLE of the wrong size, a segmentation of another type)
    raises PlugrcnnError naming the annotation.
    """

    def read(self, annotations: list[dict[str, Any]], height: int, width: int) -> MaskTargets:
        windows = [_read_window(a, height, width) for a in annotations]
        return _stack_windows(windows)

    def transform(self, target: MaskTargets, op: Any) -> MaskTargets:
        (sx, sy), (ox, oy) = target.scale, target.offset
        if isinstance(op, ResizeOp):
            return dataclasses.replace(target, scale=(sx * op.scale_x, sy * op.scale_y),
                                       offset=(ox * op.scale_x, oy * op.scale_y))
        if isinstance(op, HFlipOp):  # x -> width - x
            return dataclasses.replace(target, scale=(-sx, sy), offset=(op.width - ox, oy))
        raise PlugrcnnError(f"mask targets: unknown geometric op {type(op).__name__}; the mask "
                            f"head knows ResizeOp and HFlipOp")

    def valid(self, target: MaskTargets) -> torch.Tensor:
        return target.valid


# -- reading ---------------------------------------------------------------------------------

def _read_window(annotation: dict[str, Any], height: int, width: int) -> Window | None:
    segmentation = annotation.get("segmentation")
    if annotation.get("iscrowd", 0) or segmentation is None or segmentation == []:
        return None  # crowd regions are never foreground: no need to decode them
    if isinstance(segmentation, list):
        return polygons_to_window(segmentation, height, width)
    if isinstance(segmentation, dict):
        return _rle_to_window(segmentation, height, width, annotation.get("id"))
    raise PlugrcnnError(f"annotation id {annotation.get('id')}: segmentation must be polygons or "
                        f"an RLE object, got {type(segmentation).__name__}; fix or drop it")


def _usable_polygons(polygons: list[Any]) -> list[list[float]]:
    """Parts with >= 3 points, an even length and finite numbers; the rest enclose nothing."""
    usable = []
    for polygon in polygons:
        if not isinstance(polygon, (list, tuple)) or len(polygon) < 6 or len(polygon) % 2:
            continue
        values = [float(v) for v in polygon]
        if all(math.isfinite(v) for v in values):
            usable.append(values)
    return usable


def polygons_to_window(polygons: list[Any], height: int, width: int) -> Window | None:
    """Rasterise COCO polygons (image `height` x `width`) into a window; None if empty."""
    polygons = _usable_polygons(polygons)
    if not polygons:
        return None
    xs = [v for p in polygons for v in p[0::2]]
    ys = [v for p in polygons for v in p[1::2]]
    x0, y0 = max(math.floor(min(xs)) - 1, 0), max(math.floor(min(ys)) - 1, 0)
    x1, y1 = min(math.ceil(max(xs)) + 1, width), min(math.ceil(max(ys)) + 1, height)
    if x1 <= x0 or y1 <= y0:  # entirely outside the image
        return None
    # integer shifts keep pycocotools' rasterisation identical to a full-image one
    shifted = [[v - (x0 if i % 2 == 0 else y0) for i, v in enumerate(p)] for p in polygons]
    rles = mask_utils.frPyObjects(shifted, y1 - y0, x1 - x0)
    bitmap = _decode(mask_utils.merge(rles))
    return (bitmap, x0, y0) if bitmap.any() else None


def _rle_to_window(rle: dict[str, Any], height: int, width: int,
                   annotation_id: Any) -> Window | None:
    size, counts = rle.get("size"), rle.get("counts")
    if list(size or ()) != [height, width]:
        raise PlugrcnnError(f"annotation id {annotation_id}: RLE size {size} differs from the "
                            f"image size [{height}, {width}]; fix the annotation")
    if isinstance(counts, list):
        compressed = mask_utils.frPyObjects(rle, height, width)
    elif isinstance(counts, (str, bytes)):
        compressed = {"size": [height, width],
                      "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    else:
        raise PlugrcnnError(f"annotation id {annotation_id}: RLE counts must be a string or a "
                            f"list of run lengths, got {type(counts).__name__}")
    bitmap = _decode(compressed)
    return crop_to_window(bitmap)


def crop_to_window(bitmap: np.ndarray) -> Window | None:
    """A full-image (H, W) bitmap -> the window around its pixels (one pixel of margin)."""
    rows, cols = np.flatnonzero(bitmap.any(1)), np.flatnonzero(bitmap.any(0))
    if rows.size == 0:
        return None
    y0, y1 = max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, bitmap.shape[0])
    x0, x1 = max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, bitmap.shape[1])
    return np.ascontiguousarray(bitmap[y0:y1, x0:x1]), x0, y0


def _decode(rle: dict[str, Any]) -> np.ndarray:
    with warnings.catch_warnings():
        # pycocotools' decode trips numpy 2's DeprecationWarning about __array__(copy=...)
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle)


def _stack_windows(windows: list[Window | None]) -> MaskTargets:
    height = max((w[0].shape[0] for w in windows if w is not None), default=1)
    width = max((w[0].shape[1] for w in windows if w is not None), default=1)
    stacked = torch.zeros((len(windows), height, width), dtype=torch.uint8)
    origins = torch.zeros((len(windows), 2), dtype=torch.float32)
    for i, window in enumerate(windows):  # a loop over GT instances, in the data worker
        if window is None:
            continue
        bitmap, x0, y0 = window
        stacked[i, :bitmap.shape[0], :bitmap.shape[1]] = torch.from_numpy(bitmap)
        origins[i] = torch.tensor([x0, y0], dtype=torch.float32)
    valid = torch.tensor([w is not None for w in windows], dtype=torch.bool)
    return MaskTargets(windows=stacked, origins=origins, valid=valid)


# -- per-RoI targets (training step) ---------------------------------------------------------

def crop_mask_targets(target: MaskTargets, boxes: torch.Tensor, gt_index: torch.Tensor,
                      resolution: int) -> torch.Tensor:
    """Binary (R, M, M) float targets: GT mask `gt_index[r]` cut to box `boxes[r]` (current
    coordinates) and resized to M x M; on the boxes' device."""
    if boxes.numel() == 0:
        return boxes.new_zeros((0, resolution, resolution))
    device = boxes.device
    # only the windows some RoI needs are sent to the device and made float
    used, rows = torch.unique(gt_index.cpu(), return_inverse=True)
    windows = target.windows[used].to(device=device, dtype=torch.float32)[:, None]  # (U, 1, Hc, Wc)
    origins = target.origins[used].to(device)[rows.to(device)]                      # (R, 2)
    original = target.boxes_to_original(boxes.float())
    shifted = original - origins.repeat(1, 2)  # into each window's own coordinates
    rois = torch.cat([rows.to(device=device, dtype=torch.float32)[:, None], shifted], dim=1)
    # aligned: pixel i's centre is at i + 0.5; 2x2 samples per bin are plenty for a 0/1 target
    cut = roi_align(windows, rois, (resolution, resolution), spatial_scale=1.0,
                    sampling_ratio=2, aligned=True)[:, 0]  # (R, 1, M, M) -> (R, M, M)
    if target.flipped:
        cut = cut.flip(-1)
    return (cut >= 0.5).to(torch.float32)


def render_masks(target: MaskTargets, height: int, width: int) -> torch.Tensor:
    """(G, height, width) bool: each GT mask in the current image's coordinates (nearest
    neighbour: every current pixel centre is mapped back into its GT window). For drawing."""
    (sx, sy), (ox, oy) = target.scale, target.offset
    count, win_h, win_w = target.windows.shape
    # current pixel centres -> original coordinates -> window indices, per instance: (G, W), (G, H)
    xs = ((torch.arange(width) + 0.5 - ox) / sx)[None] - target.origins[:, :1]
    ys = ((torch.arange(height) + 0.5 - oy) / sy)[None] - target.origins[:, 1:]
    cols, rows = xs.floor().long(), ys.floor().long()
    col_ok, row_ok = (cols >= 0) & (cols < win_w), (rows >= 0) & (rows < win_h)
    cols, rows = cols.clamp(0, max(win_w - 1, 0)), rows.clamp(0, max(win_h - 1, 0))
    if count == 0 or win_h == 0 or win_w == 0:
        return torch.zeros((count, height, width), dtype=torch.bool)
    # (G, Hc, Wc) -> rows (G, H, Wc) -> cols (G, H, W)
    picked = torch.gather(target.windows, 1, rows[:, :, None].expand(count, height, win_w))
    picked = torch.gather(picked, 2, cols[:, None, :].expand(count, height, width))
    return picked.bool() & row_ok[:, :, None] & col_ok[:, None, :] & target.valid[:, None, None]
