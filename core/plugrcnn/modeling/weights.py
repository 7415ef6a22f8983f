"""Load and save plugrcnn model weights, with errors that name the keys that do not fit."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from plugrcnn.errors import PlugrcnnError
from plugrcnn.modeling.torch_files import load_torch_file, torchvision_arch
from plugrcnn.outputs import write_atomic


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a plugrcnn checkpoint ({"model": ...}) or a bare state dict file."""
    path = Path(path)
    obj = load_torch_file(path, "weights")
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PlugrcnnError(f"{path}: does not contain a state dict of tensors")
    return obj


def load_model_weights(model: nn.Module, path: str | Path) -> None:
    """Load `path` into `model`; every missing, unexpected or mis-shaped key is an error."""
    state = read_state_dict(path)
    arch = torchvision_arch(state)
    if arch is not None:
        raise PlugrcnnError(f"{path}: a torchvision checkpoint, not plugrcnn weights; convert it "
                            f"first: plugrcnn convert torchvision --arch {arch} --input {path} "
                            f"--output ours.pth")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
    if shapes:
        problems.append(f"{len(shapes)} with another shape (e.g. {'; '.join(shapes[:3])})")
    if problems:
        raise PlugrcnnError(f"{path}: weights do not fit the config's model: {'; '.join(problems)}")
    model.load_state_dict(state)


def save_weights_atomic(state: dict[str, Any], path: str | Path) -> None:
    """torch.save to a temp file in the same folder, fsync, then rename over `path`."""
    write_atomic(path, lambda file: torch.save(state, file))
