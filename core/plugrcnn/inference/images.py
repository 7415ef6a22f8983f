"""Reading images, in one place for every command: header first, then decode to 8-bit RGB.

Why not decode straight away: an image file states its size in a few header bytes, and a decoder
allocates what the header claims before it reads the pixels. A 60 KB PNG can claim 20000x20000
(1.2 GB of RGB, more while decoding). So `open_image` reads the header only (PIL's `Image.open`
is lazy) and refuses, before any decoding:
- images over `max_pixels` (default `DEFAULT_MAX_IMAGE_PIXELS`, 40 megapixels; the config key
  `model.input.max_image_pixels` changes it);
- images with a side under `MIN_IMAGE_SIDE` pixels, or so thin that the model's shortest-edge
  resize would leave them less than one pixel high or wide (a 3x300 strip at short side 64 /
  long side at most 96): they have nothing a detector can find and break the resize; the error
  names the size.
Then `read_image` decodes the first frame (an animated GIF or a multi-page TIFF gives its first
frame) and converts it to 8-bit RGB: 16-bit grey / RGB are scaled (65535 -> 255, not clipped),
grey, palette and CMYK are converted, and transparent pixels are composited onto white.

Suffixes: only those whose decoder this Pillow build has (`image_suffixes()`).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFile, UnidentifiedImageError, features

from plugrcnn.errors import PlugrcnnError

DEFAULT_MAX_IMAGE_PIXELS = 40_000_000   # 40 MP: 120 MB as uint8 RGB; a 20000x20000 file is 400 MP
MIN_IMAGE_SIDE = 2                      # pixels; 1-pixel strips are refused (see module doc)

# suffix -> the Pillow feature that decodes it (None: always built in)
_SUFFIX_CODECS: dict[str, str | None] = {
    ".png": None, ".bmp": None, ".gif": None, ".tif": None, ".tiff": None,
    ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp",
}
# modes whose conversion to RGB is a plain `convert("RGB")` (1-bit, grey, RGB, CMYK, YCbCr, HSV)
_CONVERT_MODES = {"1", "L", "RGB", "CMYK", "YCbCr", "HSV", "RGBX"}
# 16- and 32-bit integer grey modes: scaled by 1/257 (0..65535 -> 0..255)
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


def image_suffixes() -> tuple[str, ...]:
    """The suffixes (lower case, with the dot) this installation can decode."""
    return tuple(sorted(s for s, codec in _SUFFIX_CODECS.items() if codec is None or features.check(codec)))


IMAGE_SUFFIXES = set(image_suffixes())


@dataclass(frozen=True)
class ImageHeader:
    path: Path
    format: str
    mode: str
    height: int
    width: int
    frames: int


def list_images(path: Path) -> list[Path]:
    """`path` itself if it is a file, else the images directly inside the folder, sorted."""
    suffixes = image_suffixes()
    if path.is_file():
        if path.suffix.lower() not in suffixes:
            raise PlugrcnnError(f"{path}: not an image this installation can read (suffix "
                                f"{path.suffix or '(none)'}; readable: {', '.join(suffixes)})")
        return [path]
    if not path.exists():
        raise PlugrcnnError(f"{path}: no such image or folder")
    if not path.is_dir():
        raise PlugrcnnError(f"{path}: not an image file or a folder")
    try:
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes and p.is_file())
    except OSError as exc:
        raise PlugrcnnError(f"{path}: cannot list the folder ({exc.strerror})") from None
    if not files:
        raise PlugrcnnError(f"{path}: folder holds no images ({', '.join(suffixes)})")
    return files


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _open(path: Path) -> Image.Image:
    saved = Image.MAX_IMAGE_PIXELS
    try:
        # Pillow's own bomb check is switched off for the header read only: our limit (which the
        # config can move) runs next on the header's size, before anything is decoded
        Image.MAX_IMAGE_PIXELS = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except UnidentifiedImageError:
        raise PlugrcnnError(f"{path}: cannot read image (not an image format Pillow knows, "
                            "or a corrupt header)") from None
    except Image.DecompressionBombError as exc:
        raise PlugrcnnError(f"{path}: image refused before decoding ({_reason(exc)})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise PlugrcnnError(f"{path}: cannot read image ({_reason(exc)})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def resized_size(height: int, width: int, min_size: int, max_size: int) -> tuple[int, int]:
    """(h, w) after the model's shortest-edge resize (floor(side * scale), as F.interpolate)."""
    scale = min(min_size / min(height, width), max_size / max(height, width))
    return math.floor(height * scale), math.floor(width * scale)


def check_size(path: Path, height: int, width: int, max_pixels: int,
               resize_to: tuple[int, int] | None = None) -> None:
    """PlugrcnnError if an image of this size is too large, too small, or too thin for the model
    (`resize_to`: its (min_size, max_size); an image whose short side would shrink below one
    pixel has nothing to detect and breaks the resize)."""
    if width * height > max_pixels:
        raise PlugrcnnError(f"{path}: image is {width}x{height} ({width * height / 1e6:.1f} MP), "
                            f"over the limit of {max_pixels / 1e6:g} MP; refused before decoding "
                            "(raise model.input.max_image_pixels to accept it)")
    if min(width, height) < MIN_IMAGE_SIDE:
        raise PlugrcnnError(f"{path}: image is {width}x{height} pixels (width x height); each side "
                            f"must be at least {MIN_IMAGE_SIDE}")
    if resize_to is not None:
        new_h, new_w = resized_size(height, width, *resize_to)
        if min(new_h, new_w) < 1:
            raise PlugrcnnError(f"{path}: image is {width}x{height} pixels (width x height), too thin "
                                f"for the model: resized to a short side of {resize_to[0]} and a long "
                                f"side of at most {resize_to[1]} it would be {new_w}x{new_h}")


def check_header(image: Image.Image, path: Path, max_pixels: int,
                 resize_to: tuple[int, int] | None = None) -> ImageHeader:
    """The header's facts, or PlugrcnnError if the image is too large or too small to use."""
    width, height = image.size
    check_size(path, height, width, max_pixels, resize_to)
    return ImageHeader(path, str(image.format), image.mode, height, width,
                       int(getattr(image, "n_frames", 1)))


def read_header(path: str | Path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
                resize_to: tuple[int, int] | None = None) -> ImageHeader:
    """Size, mode and frame count from the header alone (nothing is decoded)."""
    path = Path(path)
    with _open(path) as image:
        return check_header(image, path, max_pixels, resize_to)


def _to_rgb_array(image: Image.Image, path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB from any decoded Pillow image (see the module doc for each mode)."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise PlugrcnnError(f"{path}: {mode} image with values outside 0..65535; "
                                "convert it to 8-bit RGB first")
        grey = ((values * 255 + 32767) // 65535).astype(np.uint8)   # rounded 16 -> 8 bit
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "F":
        raise PlugrcnnError(f"{path}: floating-point image (mode F) has no defined 8-bit range; "
                            "convert it to 8-bit RGB first")
    if mode in ("P", "PA", "LA", "RGBA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.array(Image.alpha_composite(background, rgba).convert("RGB"))
    if mode in _CONVERT_MODES:
        return np.array(image.convert("RGB"))
    try:
        return np.array(image.convert("RGB"))
    except (ValueError, OSError) as exc:
        raise PlugrcnnError(f"{path}: image mode {mode} cannot be converted to RGB ({_reason(exc)})") from None


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
               resize_to: tuple[int, int] | None = None) -> torch.Tensor:
    """uint8 RGB (3, H, W) of the first frame; PlugrcnnError naming the file and the reason.

    `resize_to`: the model's (min_size, max_size), to refuse images too thin for it."""
    path = Path(path)
    with _open(path) as image:
        check_header(image, path, max_pixels, resize_to)
        try:
            image.seek(0)
            image.load()
            pixels = _to_rgb_array(image, path)
        except PlugrcnnError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
            raise PlugrcnnError(f"{path}: cannot decode image ({_reason(exc)}: the file is "
                                "corrupt or truncated)") from None
    if not pixels.flags.writeable:  # a read-only view of Pillow's buffer: torch needs its own
        pixels = pixels.copy()
    # (H, W, 3) -> (3, H, W)
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


# a truncated file is an error, never a silently grey-filled image
ImageFile.LOAD_TRUNCATED_IMAGES = False
