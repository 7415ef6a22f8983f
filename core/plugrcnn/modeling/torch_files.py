"""Reading .pth files safely, with every failure said in one line: what was wrong and why.

`torch.load(weights_only=True)` refuses pickles that hold anything but tensors and plain
containers (a pickle can run code when loaded); its message is a long paragraph whose middle
names the refused object. `load_error_reason` turns that, a zero-byte file, a truncated zip
and the rest into one line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from plugrcnn.errors import PlugrcnnError

# where torch's weights_only message names what it refused (the wording differs by version)
_REFUSAL_MARKERS = ("Unsupported global", "Trying to load", "WeightsUnpickler error: ")
_NOT_A_TORCH_FILE = "its bytes are neither a torch zip archive nor a pickle"


def load_error_reason(exc: BaseException) -> str:
    """One line: why torch.load failed on a file."""
    text = str(exc).strip()
    if text.startswith("Weights only load failed"):
        # paragraphs after the first: what was refused, then a pointer to the docs
        paragraphs = [" ".join(p.split()) for p in text.split("\n\n")[1:] if p.strip()]
        refused = next((p for p in paragraphs if any(m in p for m in _REFUSAL_MARKERS)),
                       paragraphs[0] if paragraphs else "")
        refused = refused.split("WeightsUnpickler error: ")[-1].rstrip(".")
        if refused.startswith("Unsupported operand"):  # not a pickle opcode: not a torch file
            return f"{_NOT_A_TORCH_FILE} ({refused.lower()})"
        return (f"refused by torch.load(weights_only=True): {refused}. The file holds Python "
                "objects besides tensors, which could run code when loaded; only state dicts "
                "and plugrcnn checkpoints are read")
    if isinstance(exc, KeyError):  # the unpickler met a byte that is no opcode
        return f"{_NOT_A_TORCH_FILE} (unknown opcode {text})"
    if isinstance(exc, EOFError):
        return "the file ends early (truncated or not a torch file)"
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def load_torch_file(path: str | Path, what: str = "weights") -> Any:
    """`torch.load(path, weights_only=True)` on the CPU; PlugrcnnError naming the file and why."""
    path = Path(path)
    if not path.exists():
        raise PlugrcnnError(f"{path}: {what} file not found")
    if not path.is_file():
        raise PlugrcnnError(f"{path}: is not a file (a folder?); give the {what} .pth file")
    if path.stat().st_size == 0:
        raise PlugrcnnError(f"{path}: {what} file is empty (0 bytes); an interrupted copy or download?")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises anything from a corrupt zip or pickle
        reason = load_error_reason(exc)
        if _starts_like_zip(path) and not reason.startswith("refused"):
            reason = f"a damaged or truncated zip archive: {reason}"
        raise PlugrcnnError(f"{path}: not a readable torch checkpoint ({reason})") from None


def torchvision_arch(state: dict[str, Any]) -> str | None:
    """The `plugrcnn convert torchvision --arch` of a torchvision detection state dict, else None."""
    keys = list(state)
    if not any(k.startswith("backbone.body.") for k in keys) or not any(k.startswith("roi_heads.") for k in keys):
        return None
    if any(k.startswith("roi_heads.mask_predictor.") for k in keys):
        return "maskrcnn_resnet50_fpn"
    if any(k.startswith("roi_heads.keypoint_predictor.") for k in keys):
        return "keypointrcnn_resnet50_fpn"
    return "fasterrcnn_resnet50_fpn"


def _starts_like_zip(path: Path) -> bool:
    with open(path, "rb") as file:
        return file.read(4) == b"PK\x03\x04"
