"""Checkpoints that are never half-written, the `last_checkpoint` pointer, and RNG state capture.

A checkpoint is a dict (see `Trainer`): "model" (state_dict of the unwrapped model), "optimizer",
"scheduler", "grad_scaler", "iteration" (completed steps), "data" (the index stream's position),
"rng" (one `capture_rng_state()` per rank), "solver" (the config, for the record).

Everything is written to a temporary file in the destination directory, flushed and fsynced,
then renamed over the final name with `os.replace` (atomic on POSIX and Windows): a crash or a
SIGKILL at any moment leaves either the old file or the new one under the final name, plus at
worst a stray `.<name>.*.tmp` that `remove_stale_temp_files` cleans up.
"""
from __future__ import annotations

import contextlib
import os
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from plugrcnn.errors import PlugrcnnError
from plugrcnn.modeling.torch_files import load_error_reason
from plugrcnn.outputs import replace_atomically

LAST_CHECKPOINT_FILE = "last_checkpoint"
FINAL_CHECKPOINT_NAME = "model_final.pth"
_PERIODIC_NAME = re.compile(r"^model_(\d{7})\.pth$")
_TEMP_SUFFIX = ".tmp"


def periodic_checkpoint_name(iteration: int) -> str:
    return f"model_{iteration:07d}.pth"


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """`write(file)` into a temp file, renamed to `path` in one step (see `replace_atomically`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_atomically(path, write)


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` to `path` atomically (the previous file stays intact if this fails)."""
    atomic_write(Path(path), lambda file: torch.save(state, file))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (tensors, numbers, strings only)."""
    path = Path(path)
    if not path.is_file():
        raise PlugrcnnError(f"{path}: checkpoint not found")
    if path.stat().st_size == 0:
        raise PlugrcnnError(f"{path}: not a readable checkpoint (empty file); delete it or pass another")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a corrupt zip or pickle raises nearly anything
        raise PlugrcnnError(f"{path}: not a readable checkpoint ({load_error_reason(exc)}); delete "
                            "it or pass another") from None
    if not isinstance(state, dict):
        raise PlugrcnnError(f"{path}: not a plugrcnn checkpoint (a {type(state).__name__}, not a dict)")
    return state


def write_last_checkpoint(output_dir: str | Path, checkpoint_name: str) -> None:
    """Point `output_dir/last_checkpoint` at `checkpoint_name` (a file name in output_dir)."""
    data = checkpoint_name.encode() + b"\n"
    atomic_write(Path(output_dir) / LAST_CHECKPOINT_FILE, lambda file: file.write(data))


def _newest_checkpoint_on_disk(output_dir: Path) -> Path | None:
    final = output_dir / FINAL_CHECKPOINT_NAME
    if final.is_file():
        return final
    periodic = list_periodic_checkpoints(output_dir)
    return periodic[-1] if periodic else None


def find_last_checkpoint(output_dir: str | Path) -> Path | None:
    """The checkpoint to resume from: the pointer's target, else the newest one on disk, else None."""
    output_dir = Path(output_dir)
    pointer = output_dir / LAST_CHECKPOINT_FILE
    if pointer.is_file():
        target = output_dir / pointer.read_text().strip()
        if target.is_file():
            return target
    return _newest_checkpoint_on_disk(output_dir)


def list_periodic_checkpoints(output_dir: str | Path) -> list[Path]:
    """`model_<iteration>.pth` files in `output_dir`, oldest first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), output_dir / p.name) for p in output_dir.iterdir()
             if (m := _PERIODIC_NAME.match(p.name))]
    return [path for _, path in sorted(found)]


def prune_periodic_checkpoints(output_dir: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` periodic checkpoints; returns what was deleted."""
    doomed = list_periodic_checkpoints(output_dir)[:-keep] if keep > 0 else []
    for path in doomed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return doomed


def remove_stale_temp_files(output_dir: str | Path) -> list[Path]:
    """Delete temp files left by a process killed in the middle of `atomic_write`."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    stale = [p for p in output_dir.iterdir() if p.name.startswith(".") and p.name.endswith(_TEMP_SUFFIX)]
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return stale


def _capture_cpu_rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    return {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "torch": torch.get_rng_state(),
    }


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy, torch CPU and (if initialised) CUDA RNG states, as checkpoint-safe values."""
    state = _capture_cpu_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()  # the current device's generator
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng_state`."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["pos"], numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())


@contextlib.contextmanager
def isolated_global_rng(seed: int) -> Iterator[None]:
    """Seed python / numpy / torch CPU RNGs with `seed` inside, give back the caller's states after."""
    saved = _capture_cpu_rng_state()  # no CUDA: this also runs in forked DataLoader workers
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        restore_rng_state(saved)
