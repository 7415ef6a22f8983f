"""Heatmaps -> keypoints, vectorised over RoIs, equal to torchvision's per-RoI loop.

torchvision (and detectron2) resize each RoI's S x S heatmaps bicubically (align_corners=False,
A = -0.75, clamped taps) to ceil(h) x ceil(w) pixels and take the argmax pixel. Resizing every
RoI to its own size is a per-RoI loop; here the same argmax is found without building the maps:

1. Every output pixel's bicubic value depends on the 4 x 4 heatmap samples around the *cell* its
   source coordinate falls in (cells c = -1 .. S-1 per axis, U = S + 1 of them). Inside a cell
   the resized map is one bicubic polynomial, so the Bernstein control points of that
   polynomial bound its value from above (`cell_upper_bounds`); a cell holding a single output
   pixel gets that pixel's exact value as its bound.
2. The pixels of the few best-bounded cells are evaluated exactly (`search_cells`). Where a cell
   not yet searched is bounded above the best pixel found, every such cell is searched too.

The result is the argmax of the resized map, at a cost that does not grow with the RoI's size
in pixels. Exact up to float rounding: where two pixels differ by a few ULPs (plateaus), the
pick may differ from aten's by one output pixel. Exact ties go to the first pixel in row-major
order, as ``argmax`` does.

Shape shorthand:
    R   RoIs (all images)            K   keypoints
    S   heatmap side (56)            U   cells per axis (S + 1)
    P   pixels examined per cell per axis
    C   candidate cells per (RoI, keypoint)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

CUBIC_A = -0.75  # PyTorch's bicubic kernel (and OpenCV's)

# Bernstein coefficients of the four cubic-convolution weights on t in [0, 1]:
# weight_i(t) = sum_k BERNSTEIN[i, k] * binom(3, k) t^k (1 - t)^(3 - k)   (exact for A = -0.75)
BERNSTEIN = ((0.0, -0.25, 0.0, 0.0),
             (1.0, 1.0, 0.25, 0.0),
             (0.0, 0.25, 1.0, 1.0),
             (0.0, 0.0, -0.25, 0.0))


def cubic_weights(t: torch.Tensor) -> torch.Tensor:
    """(...,) fractions in [0, 1) -> (..., 4) weights of taps -1, 0, +1, +2, in PyTorch's order
    of float operations (aten's get_cubic_upsample_coefficients)."""
    def near(x: torch.Tensor) -> torch.Tensor:  # |x| <= 1
        return ((CUBIC_A + 2) * x - (CUBIC_A + 3)) * x * x + 1

    def far(x: torch.Tensor) -> torch.Tensor:  # 1 < |x| < 2
        return ((CUBIC_A * x - 5 * CUBIC_A) * x + 8 * CUBIC_A) * x - 4 * CUBIC_A

    rest = 1.0 - t
    return torch.stack([far(t + 1.0), near(t), near(rest), far(rest + 1.0)], dim=-1)


@dataclass
class AxisCells:
    """The output pixels of one axis of every RoI, grouped by the heatmap cell they fall in."""
    pixels: torch.Tensor    # (R, U, P) int64 output pixel index
    member: torch.Tensor    # (R, U, P) bool: the pixel exists and falls in this cell
    weights: torch.Tensor   # (R, U, P, 4) its tap weights (zero if not a member)
    bound: torch.Tensor     # (R, U, 4, 4) taps x control points of the cell's upper bound
    occupied: torch.Tensor  # (R, U) bool: the cell holds at least one pixel
    size: torch.Tensor      # (R,) float: number of output pixels, ceil(max(length, 1))


def pixels_per_cell(max_length: float, heatmap_size: int) -> int:
    """P: enough pixels per cell for RoIs up to `max_length` long (+3 for rounding slack)."""
    return int(math.floor(math.ceil(max(max_length, 1.0)) / heatmap_size)) + 4


def axis_cells(lengths: torch.Tensor, heatmap_size: int, num_pixels: int) -> AxisCells:
    """Group each RoI's ceil(length) output pixels by heatmap cell (one axis)."""
    size = lengths.clamp(min=1).ceil()
    scale = heatmap_size / size  # heatmap samples per output pixel, as aten computes it
    cells = torch.arange(-1, heatmap_size, device=lengths.device, dtype=lengths.dtype)  # (U,)
    # first pixel whose source coordinate reaches the cell, minus one for rounding slack
    first = torch.ceil((cells + 0.5) / scale[:, None] - 0.5) - 1  # (R, U)
    pixels = first[..., None] + torch.arange(num_pixels, device=lengths.device, dtype=lengths.dtype)
    source = scale[:, None, None] * (pixels + 0.5) - 0.5  # (R, U, P), aten's source index
    floor = source.floor()
    member = (pixels >= 0) & (pixels < size[:, None, None]) & (floor == cells[:, None])
    weights = cubic_weights(source - floor) * member[..., None]
    count = member.sum(-1)  # (R, U)
    # a lone pixel bounds its cell exactly; several share the cell polynomial's Bernstein bound
    lone = weights.sum(2)[..., None].expand(-1, -1, 4, 4)  # (R, U, 4 taps, 4 controls)
    bernstein = torch.tensor(BERNSTEIN, dtype=lengths.dtype, device=lengths.device)
    bound = torch.where((count == 1)[..., None, None], lone, bernstein.expand_as(lone))
    return AxisCells(pixels.long(), member, weights, bound, count > 0, size)


def cell_upper_bounds(padded: torch.Tensor, rows: AxisCells, cols: AxisCells) -> torch.Tensor:
    """(R, K, S+4, S+4) edge-padded heatmaps -> (R, K, U, U) upper bound of each cell's pixels.

    Cell u = c + 1 reads padded rows/columns u .. u + 3 (heatmap taps c - 1 .. c + 2, clamped).
    The bound is the largest of the 4 x 4 control points (rows.bound^T patch cols.bound).
    """
    num_cells = padded.shape[-1] - 3
    by_y = rows.bound[:, None, :, :, :, None]  # (R, 1, U, 4 taps, 4 controls, 1)
    by_x = cols.bound[:, None, None]            # (R, 1, 1, U, 4 taps, 4 controls)
    bound = None
    for k in range(4):  # control point along y; in-place sums keep the memory at (R, K, U, U)
        # (R, K, U, S+4): every y cell's rows combined with the weights of control point k
        combined = padded[:, :, 0:num_cells] * by_y[:, :, :, 0, k]
        for i in range(1, 4):
            combined.addcmul_(padded[:, :, i:i + num_cells], by_y[:, :, :, i, k])
        for l in range(4):  # control point along x
            value = combined[..., 0:num_cells] * by_x[..., 0, l]
            for j in range(1, 4):
                value.addcmul_(combined[..., j:j + num_cells], by_x[..., j, l])
            # no `out=`: the ONNX exporter has no symbolic for it (deploy graph)
            bound = value if bound is None else torch.maximum(bound, value)
    occupied = rows.occupied[:, None, :, None] & cols.occupied[:, None, None, :]
    return bound.masked_fill_(~occupied, float("-inf"))


def search_cells(padded: torch.Tensor, roi: torch.Tensor, cells: torch.Tensor, rows: AxisCells,
                 cols: AxisCells) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The best pixel of the given cells, evaluated exactly.

    padded (N, S+4, S+4) one edge-padded heatmap per row, roi (N,) its RoI, cells (N, C) flat
    cell indices uy * U + ux -> value, oy, ox, each (N,). Ties go to the first pixel in
    row-major order, as an argmax over the whole resized map would.
    """
    num_rows, num_cand = cells.shape
    side = padded.shape[-1]
    uy, ux = cells // (side - 3), cells % (side - 3)
    at = roi[:, None]
    taps = torch.arange(4, device=cells.device)
    # (N, C, 4, 4) flat indices of each cell's taps in the padded (S+4)^2 heatmap
    flat = (uy[..., None, None] + taps[:, None]) * side + ux[..., None, None] + taps
    patch = padded.flatten(1).gather(1, flat.view(num_rows, -1)).view(num_rows, num_cand, 4, 4)
    wy, wx = rows.weights[at, uy], cols.weights[at, ux]  # (N, C, P, 4)
    # x taps first, then y taps, as aten's bicubic kernel: (N, C, 4, P) then (N, C, P, P)
    values = wy @ (patch @ wx.transpose(-1, -2))
    member = rows.member[at, uy][..., :, None] & cols.member[at, ux][..., None, :]
    values = values.masked_fill(~member, float("-inf")).flatten(1)  # (N, C*P*P)
    width = cols.size.long()[roi]
    order = rows.pixels[at, uy][..., :, None] * width[:, None, None, None] + cols.pixels[at, ux][..., None, :]
    best = values.amax(-1)
    ties = order.flatten(1).masked_fill(values < best[:, None], torch.iinfo(torch.int64).max)
    first = ties.amin(-1)  # oy * width + ox of the first best pixel
    return best, first // width, first % width


def best_cells(bounds: torch.Tensor, k: int) -> torch.Tensor:
    """(N, k) indices of each row's k largest bounds, largest first, equal bounds in index order:
    the first k of a stable descending sort, found with a top-k instead of sorting every cell."""
    if bool(torch.isnan(bounds).any()):  # NaN compares unequal to itself: sort them as aten does
        return torch.sort(bounds, dim=1, descending=True, stable=True).indices[:, :k]
    kth = bounds.topk(k, dim=1).values[:, -1:]          # each row's k-th largest bound
    above = bounds > kth                                 # fewer than k per row
    tied = bounds == kth
    chosen = above | (tied & (tied.cumsum(1) <= k - above.sum(1, keepdim=True)))
    index = chosen.nonzero()[:, 1].view(-1, k)           # exactly k per row, in index order
    order = torch.sort(bounds.gather(1, index), dim=1, descending=True, stable=True).indices
    return index.gather(1, order)


def heatmaps_to_keypoints(maps: torch.Tensor, boxes: torch.Tensor, *, num_pixels: int | None = None,
                          num_candidates: int = 8, max_candidates: int = 256) -> torch.Tensor:
    """maps (R, K, S, S) logits, boxes (R, 4) XYXY -> (R, K, 3) [x, y, score] in image pixels.

    x = x1 + (ox + 0.5) * w / ceil(w) for the argmax pixel ox of the map resized to ceil(w)
    columns (likewise y); score is the resized map's value there (torchvision's keypoint score).

    num_pixels: P. None measures it from the boxes and, after searching the `num_candidates`
    best-bounded cells, searches again (up to `max_candidates` cells) where a cell not yet seen
    could still hold a better pixel: exact, at the price of two host syncs. An int keeps every
    shape static for tracing and searches `num_candidates` cells only.
    """
    if maps.shape[0] == 0:
        return maps.new_zeros((0, maps.shape[1], 3), dtype=torch.float32)
    with torch.autocast(device_type=maps.device.type, enabled=False):  # float32 throughout
        return _decode(maps.float(), boxes.float(), num_pixels, num_candidates, max_candidates)


def _decode(maps: torch.Tensor, boxes: torch.Tensor, num_pixels: int | None, num_candidates: int,
            max_candidates: int) -> torch.Tensor:
    num_rois, num_kp, side = maps.shape[0], maps.shape[1], maps.shape[-1]
    widths = (boxes[:, 2] - boxes[:, 0]).clamp(min=1)
    heights = (boxes[:, 3] - boxes[:, 1]).clamp(min=1)
    exact = num_pixels is None
    if num_pixels is None:
        num_pixels = pixels_per_cell(float(torch.maximum(widths, heights).max()), side)
    rows, cols = axis_cells(heights, side, num_pixels), axis_cells(widths, side, num_pixels)
    padded = F.pad(maps, (2, 2, 2, 2), mode="replicate")  # (R, K, S+4, S+4): clamped taps
    bounds = cell_upper_bounds(padded, rows, cols).flatten(0, 1).flatten(1)  # (R*K, U*U)
    padded = padded.flatten(0, 1)  # (R*K, S+4, S+4)
    roi = torch.arange(num_rois, device=maps.device).repeat_interleave(num_kp)
    first = min(num_candidates, bounds.shape[1])
    if exact:  # best bound first; equal bounds in row-major cell order (exact ties: first pixel)
        ranked = best_cells(bounds, first)
    else:  # static shapes for tracing and export
        ranked = bounds.topk(first, dim=1).indices
    score, oy, ox = search_cells(padded, roi, ranked, rows, cols)
    if exact:
        slack = 1e-5 * (maps.abs().flatten(0, 1).flatten(1).amax(1) + 1)  # bound vs value rounding
        unseen = (bounds >= (score - slack)[:, None]).sum(1)  # cells that may beat the best so far
        again = torch.nonzero(unseen > first).squeeze(1)
        if again.numel() > 0:
            count = min(int(unseen[again].max()), max_candidates, bounds.shape[1])
            score[again], oy[again], ox[again] = search_cells(
                padded[again], roi[again], best_cells(bounds[again], count), rows, cols)
    # (R*K,) -> (R, K)
    score, oy, ox = score.view(num_rois, num_kp), oy.view(num_rois, num_kp), ox.view(num_rois, num_kp)
    x = (ox.float() + 0.5) * (widths / cols.size)[:, None] + boxes[:, 0, None]
    y = (oy.float() + 0.5) * (heights / rows.size)[:, None] + boxes[:, 1, None]
    return torch.stack([x, y, score], dim=-1)
