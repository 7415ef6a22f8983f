"""Images as users hold them -> uint8 RGB (3, H, W) tensors, the model's input."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from plugrcnn.errors import PlugrcnnError
from plugrcnn.inference.images import read_image

# one image: a file path, a numpy (H, W, 3) array, a PIL image, or a (3, H, W) tensor
ImageLike = Any


def is_batch(images: ImageLike | Sequence[ImageLike]) -> bool:
    """A list/tuple of images or an (N, 3, H, W) tensor; a single image otherwise."""
    if isinstance(images, (list, tuple)):
        return True
    return isinstance(images, torch.Tensor) and images.dim() == 4


def to_image_tensor(image: ImageLike, where: str = "image", max_pixels: int | None = None,
                    resize_to: tuple[int, int] | None = None) -> torch.Tensor:
    """uint8 (3, H, W) RGB from a path, an (H, W, 3) uint8 numpy array (RGB), a PIL image or a
    (3, H, W) tensor (uint8 in [0, 255] or float in [0, 1]). A file is read as the CLI reads it
    (`max_pixels`, `resize_to`: the config's pixel limit and test sizes)."""
    if isinstance(image, (str, Path)):
        if max_pixels is None:
            return read_image(Path(image), resize_to=resize_to)
        return read_image(Path(image), max_pixels, resize_to)
    if isinstance(image, torch.Tensor):
        return _from_tensor(image, where)
    if isinstance(image, np.ndarray):
        return _from_numpy(image, where)
    if hasattr(image, "convert") and hasattr(image, "size"):  # PIL.Image.Image, without importing PIL
        return _from_numpy(np.asarray(image.convert("RGB")), where)
    raise PlugrcnnError(f"{where}: expected a path, a numpy HxWx3 array, a PIL image or a "
                        f"3xHxW tensor, got {type(image).__name__}")


def _from_numpy(array: np.ndarray, where: str) -> torch.Tensor:
    if array.ndim == 2:  # grey: repeat into RGB
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise PlugrcnnError(f"{where}: a numpy image must be HxWx3 (RGB), got shape {array.shape}")
    if array.dtype != np.uint8:
        raise PlugrcnnError(f"{where}: a numpy image must be uint8 in [0, 255], got {array.dtype}")
    # (H, W, 3) -> (3, H, W); copy: the caller's array may be read-only or reused
    return torch.from_numpy(np.array(array[..., :3], copy=True)).permute(2, 0, 1).contiguous()


def _from_tensor(tensor: torch.Tensor, where: str) -> torch.Tensor:
    if tensor.dim() != 3 or tensor.shape[0] != 3:
        raise PlugrcnnError(f"{where}: a tensor image must be 3xHxW (RGB), got shape {tuple(tensor.shape)}")
    if tensor.dtype == torch.uint8:
        return tensor.cpu()
    if not tensor.is_floating_point():
        raise PlugrcnnError(f"{where}: a tensor image must be uint8 or float in [0, 1], got {tensor.dtype}")
    if float(tensor.min()) < 0.0 or float(tensor.max()) > 1.0:
        raise PlugrcnnError(f"{where}: a float tensor image must lie in [0, 1] "
                            f"(got {float(tensor.min()):.3g}..{float(tensor.max()):.3g})")
    return (tensor.detach().cpu() * 255.0).round().to(torch.uint8)
