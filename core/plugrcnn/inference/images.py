"""Reading images for inference, with errors that name the file."""
from __future__ import annotations

from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_image, read_file

from plugrcnn.errors import PlugrcnnError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def list_images(path: Path) -> list[Path]:
    """`path` itself if it is a file, else the images directly inside the folder, sorted."""
    if path.is_file():
        return [path]
    if not path.exists():
        raise PlugrcnnError(f"{path}: no such image or folder")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise PlugrcnnError(f"{path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def read_image(path: Path) -> torch.Tensor:
    """uint8 RGB (3, H, W)."""
    try:
        data = read_file(str(path))
        return decode_image(data, mode=ImageReadMode.RGB)
    except Exception as exc:
        raise PlugrcnnError(f"{path}: cannot read image ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:100] if str(exc) else 'unreadable'})") from None
