"""RoIAlign with a faster backward on the CPU.

The forward is torchvision's `roi_align` (same samples, same sums: bit-identical outputs). Its
CPU backward is one thread walking every output element and adding four weighted values into
the feature gradient; in a training step of the demo it was a fifth of the step
(`torchvision::_roi_align_backward`, 0.16 s of 0.8 s). Here the backward is one sparse matrix
product instead:

    grad_features (N*H*W, C) = A (N*H*W, R*P*Q) @ grad_out (R*P*Q, C)

where A holds, for every output bin, the bilinear weights of its samples on the feature map,
divided by the bin's sample count: the same weights, boundary rules and sample positions as
torchvision's kernel (a sample more than one pixel outside the map contributes nothing; one in
the last pixel or the border strip reads the edge). The interpolation is separable, so the
weights are built per axis, summed per pixel row / column within a bin (a bin's samples share
most of their rows and columns), then combined. Only the summation order differs from
torchvision's, so gradients agree to float rounding (tests/unit/test_roi_align.py).

Used only where it pays and is safe: features on the CPU that need a gradient (float32, or
bf16 / fp16 under autocast, computed in float32 like torchvision's autocast path), outside
tracing, scripting and compilation (exported graphs keep torchvision's op).
"""
from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torchvision.ops import roi_align as tv_roi_align


def _axis_weights(start: Tensor, size: Tensor, bins: int, grid: Tensor, max_grid: int,
                  limit: int) -> tuple[Tensor, Tensor]:
    """Pixel indices (R, bins, K) along one axis and their summed weights (R, bins, K).

    start, size: (R,) the RoI's start and extent on this axis, in feature pixels;
    grid: (R,) samples per bin along the axis; limit: the feature map's extent."""
    dtype = start.dtype
    bin_size = size / bins
    b = torch.arange(bins, dtype=dtype, device=start.device)
    i = torch.arange(max_grid, dtype=dtype, device=start.device)
    # torchvision's sample position: start + b * bin + (i + 0.5) * bin / grid
    pos = (start[:, None, None] + b[None, :, None] * bin_size[:, None, None]
           + (i[None, None, :] + 0.5) * bin_size[:, None, None] / grid.to(dtype).clamp(min=1)[:, None, None])
    sampled = i[None, None, :] < grid[:, None, None]
    valid = sampled & (pos >= -1.0) & (pos <= limit)
    pos = torch.where(sampled, pos, pos[..., :1])  # padding samples: keep the window tight
    pos = pos.clamp(min=0)
    low = pos.floor()
    edge = low >= limit - 1  # the last pixel: both taps read it
    low = torch.where(edge, torch.full_like(low, limit - 1), low)
    pos = torch.where(edge, low, pos)
    frac = pos - low
    taps = torch.stack([low, torch.where(edge, low, low + 1)], -1).flatten(2)       # (R, bins, 2G)
    weights = (torch.stack([1 - frac, frac], -1) * valid[..., None]).flatten(2)
    # sum the taps of one bin per pixel: a window from the bin's first tap
    first = taps.amin(-1, keepdim=True)
    offset = (taps - first).long()
    width = int(offset.max()) + 1 if offset.numel() else 1
    summed = torch.zeros(*taps.shape[:2], width, dtype=dtype, device=start.device)
    summed.scatter_add_(2, offset, weights)
    index = (first.long() + torch.arange(width, device=start.device)).clamp_(0, limit - 1)
    return index, summed


def roi_align_input_grad(grad_out: Tensor, rois: Tensor, shape: torch.Size, spatial_scale: float,
                         sampling_ratio: int, aligned: bool) -> Tensor:
    """d(loss)/d(features) of torchvision's roi_align, given d(loss)/d(output) (R, C, P, Q).

    Returns (N, C, H, W) in channels-last strides (the product's natural layout)."""
    n, c, h, w = shape
    r, _, ph, pw = grad_out.shape
    dtype, device = grad_out.dtype, grad_out.device
    boxes = rois.to(dtype)
    offset = 0.5 if aligned else 0.0
    x1 = boxes[:, 1] * spatial_scale - offset
    y1 = boxes[:, 2] * spatial_scale - offset
    roi_w = boxes[:, 3] * spatial_scale - offset - x1
    roi_h = boxes[:, 4] * spatial_scale - offset - y1
    if not aligned:  # torchvision: legacy RoIs are at least one pixel
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    if sampling_ratio > 0:
        grid_h = grid_w = torch.full((r,), sampling_ratio, dtype=torch.long, device=device)
    else:  # adaptive: ceil(roi / bins) samples per bin side
        grid_h, grid_w = torch.ceil(roi_h / ph).long(), torch.ceil(roi_w / pw).long()
    grad = torch.zeros(n * h * w, c, dtype=dtype, device=device)
    max_h = int(grid_h.max()) if r else 0
    max_w = int(grid_w.max()) if r else 0
    if max_h > 0 and max_w > 0:
        rows, wy = _axis_weights(y1, roi_h, ph, grid_h, max_h, h)      # (R, P, Ky)
        cols, wx = _axis_weights(x1, roi_w, pw, grid_w, max_w, w)      # (R, Q, Kx)
        count = (grid_h * grid_w).clamp(min=1).to(dtype)
        image = rois[:, 0].long()
        ky, kx = rows.shape[2], cols.shape[2]
        pixel = (image.view(r, 1, 1, 1, 1) * (h * w) + rows.view(r, ph, 1, ky, 1) * w
                 + cols.view(r, 1, pw, 1, kx)).reshape(-1)
        weight = (wy.view(r, ph, 1, ky, 1) * wx.view(r, 1, pw, 1, kx)
                  / count.view(r, 1, 1, 1, 1)).reshape(-1)
        bins = torch.arange(r * ph * pw, device=device).repeat_interleave(ky * kx)
        keep = weight != 0
        pixel, bins, weight = pixel[keep], bins[keep], weight[keep]
        order = torch.argsort(pixel)
        pixel = pixel[order]
        crow = torch.zeros(n * h * w + 1, dtype=torch.long, device=device)
        crow[1:] = torch.bincount(pixel, minlength=n * h * w).cumsum(0)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": a plain product here
            warnings.simplefilter("ignore", UserWarning)
            matrix = torch.sparse_csr_tensor(crow, bins[order], weight[order],
                                             (n * h * w, r * ph * pw), check_invariants=False)
        grad = matrix @ grad_out.permute(0, 2, 3, 1).reshape(r * ph * pw, c)
    return grad.view(n, h, w, c).permute(0, 3, 1, 2)


class _RoIAlign(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, features: Tensor, rois: Tensor, output_size: int, spatial_scale: float,
                sampling_ratio: int, aligned: bool) -> Tensor:
        ctx.save_for_backward(rois)
        ctx.shape, ctx.dtype = features.shape, features.dtype
        ctx.args = (spatial_scale, sampling_ratio, aligned)
        # in float32, as torchvision's autocast wrapper does for bf16 / fp16 features
        out = tv_roi_align(features.float(), rois.float(), output_size, spatial_scale, sampling_ratio, aligned)
        return out.to(features.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        (rois,) = ctx.saved_tensors
        grad = roi_align_input_grad(grad_out.float().contiguous(), rois, ctx.shape, *ctx.args)
        return grad.to(ctx.dtype), None, None, None, None, None


def _fast_backward_applies(features: Tensor) -> bool:
    # float32, or a lower precision under CPU autocast (where torchvision also computes in float32)
    dtype_ok = features.dtype == torch.float32 or (
        features.dtype in (torch.bfloat16, torch.float16) and torch.is_autocast_enabled("cpu"))
    return (features.requires_grad and torch.is_grad_enabled() and features.device.type == "cpu"
            and dtype_ok and not torch.jit.is_scripting()
            and not torch.jit.is_tracing() and not torch.compiler.is_compiling()
            and not torch.onnx.is_in_onnx_export())


def roi_align(features: Tensor, rois: Tensor, output_size: int, spatial_scale: float,
              sampling_ratio: int, aligned: bool) -> Tensor:
    """torchvision's roi_align (rois: (R, 5) image index, x1, y1, x2, y2), with the sparse
    backward above when the features need a gradient on the CPU."""
    if _fast_backward_applies(features):
        return _RoIAlign.apply(features, rois, output_size, spatial_scale, sampling_ratio, aligned)
    return tv_roi_align(features, rois, output_size=output_size, spatial_scale=spatial_scale,
                        sampling_ratio=sampling_ratio, aligned=aligned)


__all__ = ["roi_align", "roi_align_input_grad"]
