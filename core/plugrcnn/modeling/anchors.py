"""Anchor boxes tiled over every location of every feature level.

Shape shorthand:
    L: number of feature levels
    H, W: height and width of one level's feature map
    A: anchors per location (sizes of the level x aspect ratios)

Anchors of one level are ordered location-major (row, then column), then by anchor, then by
(aspect ratio, size), which is also the channel order the RPN head predicts in.

Two conventions are supported:
- torchvision: base anchors rounded to whole pixels, centred on the top-left corner of each
  feature cell (offset 0), and each level's stride taken as padded_image_size // feature_size,
  per dimension (an 800-px-high image gives a 13-px-high P6 and therefore stride 61, not 64).
- detectron2: unrounded base anchors, configured strides, optional offset (0.5 centres them).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from plugrcnn.errors import PlugrcnnError


def make_base_anchors(
    sizes: Sequence[float], aspect_ratios: Sequence[float], round_to_pixels: bool
) -> Tensor:
    """Zero-centred anchors (A, 4), A = len(aspect_ratios) * len(sizes), ratio-major.

    aspect ratio = height / width, and the anchor area stays size**2.
    """
    # torchvision rounds float32 values; unrounded anchors are computed in float64 for precision.
    dtype = torch.float32 if round_to_pixels else torch.float64
    size_t = torch.as_tensor(sizes, dtype=dtype)
    ratio_t = torch.as_tensor(aspect_ratios, dtype=dtype)
    h_ratios = torch.sqrt(ratio_t)
    w_ratios = 1 / h_ratios
    widths = (w_ratios[:, None] * size_t[None, :]).view(-1)
    heights = (h_ratios[:, None] * size_t[None, :]).view(-1)
    base = torch.stack([-widths, -heights, widths, heights], dim=1) / 2
    if round_to_pixels:
        base = base.round()
    return base.to(torch.float32)


class AnchorGenerator(nn.Module):
    """Generate the anchors of every feature level for a padded batch.

    Args:
        sizes: anchor sizes (square-root of the area, pixels) per level, e.g. ((32,), (64,), ...).
        aspect_ratios: height / width ratios, the same for every level, e.g. (0.5, 1.0, 2.0).
        strides: stride of each level in pixels, e.g. (4, 8, 16, 32, 64).
        round_base_anchors: round the zero-centred anchors to whole pixels (torchvision).
        strides_from_image: take each level's stride as padded_size // feature_size per
            dimension instead of `strides` (torchvision).
        offset: anchor centre offset in units of the stride, in [0, 1) (detectron2 option).
    """

    def __init__(
        self,
        *,
        sizes: Sequence[Sequence[float]],
        aspect_ratios: Sequence[float],
        strides: Sequence[int],
        round_base_anchors: bool = False,
        strides_from_image: bool = False,
        offset: float = 0.0,
    ) -> None:
        super().__init__()
        if len(sizes) != len(strides):
            raise PlugrcnnError(
                f"anchor generator: {len(sizes)} levels of sizes but {len(strides)} strides; "
                "give one size tuple per stride"
            )
        if any(r <= 0 for r in aspect_ratios) or any(s <= 0 for lvl in sizes for s in lvl):
            raise PlugrcnnError("anchor generator: sizes and aspect_ratios must all be positive")
        if not 0.0 <= offset < 1.0:
            raise PlugrcnnError(f"anchor generator: offset must be in [0, 1), got {offset}")
        self.sizes = tuple(tuple(float(s) for s in level) for level in sizes)
        self.aspect_ratios = tuple(float(r) for r in aspect_ratios)
        self.strides = tuple(int(s) for s in strides)
        self.round_base_anchors = round_base_anchors
        self.strides_from_image = strides_from_image
        self.offset = float(offset)
        for level, level_sizes in enumerate(self.sizes):
            base = make_base_anchors(level_sizes, self.aspect_ratios, round_base_anchors)
            # Not in the state dict: anchors are derived from the config, not learned.
            self.register_buffer(f"base_anchors_{level}", base, persistent=False)

    @property
    def num_anchors_per_location(self) -> int:
        """A, the number of anchors at each location (the same on every level)."""
        counts = {len(level) * len(self.aspect_ratios) for level in self.sizes}
        if len(counts) != 1:
            raise PlugrcnnError("anchor generator: every level needs the same number of sizes")
        return counts.pop()

    def level_strides(
        self, feature_sizes: Sequence[tuple[int, int]], padded_image_size: tuple[int, int]
    ) -> list[tuple[float, float]]:
        """(stride_y, stride_x) per level."""
        if not self.strides_from_image:
            return [(float(s), float(s)) for s in self.strides]
        pad_h, pad_w = padded_image_size
        return [(float(pad_h // h), float(pad_w // w)) for h, w in feature_sizes]

    def forward(
        self,
        feature_sizes: Sequence[tuple[int, int]],
        padded_image_size: tuple[int, int],
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> list[Tensor]:
        """One (H*W*A, 4) XYXY anchor tensor per level."""
        if len(feature_sizes) != len(self.sizes):
            raise PlugrcnnError(
                f"anchor generator: got {len(feature_sizes)} feature maps, configured for "
                f"{len(self.sizes)} levels; make anchor sizes match the FPN levels"
            )
        strides = self.level_strides(feature_sizes, padded_image_size)
        anchors = []
        for level, ((height, width), (stride_y, stride_x)) in enumerate(zip(feature_sizes, strides)):
            # Tiled in float32 (pixel coordinates are exact there), then cast once.
            base = getattr(self, f"base_anchors_{level}").to(device=device, dtype=torch.float32)
            grid = self._grid_anchors(base, height, width, stride_y, stride_x)
            anchors.append(grid.to(dtype))
        return anchors

    def _grid_anchors(
        self, base: Tensor, height: int, width: int, stride_y: float, stride_x: float
    ) -> Tensor:
        shifts_x = (torch.arange(width, device=base.device, dtype=base.dtype) + self.offset) * stride_x
        shifts_y = (torch.arange(height, device=base.device, dtype=base.dtype) + self.offset) * stride_y
        shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
        shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
        shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
        # (H*W, 1, 4) + (1, A, 4) -> (H*W*A, 4)
        return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)

