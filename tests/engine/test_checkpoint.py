from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from plugrcnn.engine import checkpoint as checkpoint_module
from plugrcnn.engine.checkpoint import (
    capture_rng_state,
    find_last_checkpoint,
    isolated_global_rng,
    load_checkpoint,
    prune_periodic_checkpoints,
    remove_stale_temp_files,
    restore_rng_state,
    save_checkpoint,
    write_last_checkpoint,
)
from plugrcnn.errors import PlugrcnnError


def _state(value: float) -> dict:
    return {"model": {"weight": torch.full((64, 64), value)}, "iteration": int(value)}


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_save_load_round_trip(tmp_path):
    state = _state(3.0) | {"rng": [capture_rng_state()], "solver": {"steps": (2, 3), "clip": None}}
    save_checkpoint(tmp_path / "model_0000003.pth", state)
    loaded = load_checkpoint(tmp_path / "model_0000003.pth")
    assert torch.equal(loaded["model"]["weight"], state["model"]["weight"])
    assert loaded["iteration"] == 3 and loaded["solver"] == {"steps": (2, 3), "clip": None}
    assert _leftovers(tmp_path) == []


def _torch_save_that_dies_halfway(state, file):
    file.write(b"PK\x03\x04 half of a zip archive")  # bytes reach the temp file, then the crash
    raise OSError("No space left on device")


def test_crash_inside_torch_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "model_final.pth"
    save_checkpoint(path, _state(1.0))
    monkeypatch.setattr(checkpoint_module.torch, "save", _torch_save_that_dies_halfway)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(path, _state(2.0))
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["weight"], torch.full((64, 64), 1.0))
    assert _leftovers(tmp_path) == []  # the temp file is removed too


def test_crash_before_rename_never_creates_the_final_name(tmp_path, monkeypatch):
    def replace_that_dies(src, dst):
        raise KeyboardInterrupt  # e.g. Ctrl-C between the write and the rename

    monkeypatch.setattr(checkpoint_module.os, "replace", replace_that_dies)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "model_0000005.pth", _state(5.0))
    assert not (tmp_path / "model_0000005.pth").exists()
    assert _leftovers(tmp_path) == []


def test_kill_leftover_temp_file_is_ignored_and_cleaned(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "model_0000003.pth", _state(3.0))
    write_last_checkpoint(tmp_path, "model_0000003.pth")
    # A SIGKILL during a save leaves a temp file (no cleanup runs); simulate one.
    (tmp_path / ".model_0000006.pth.1a2b3c4d.tmp").write_bytes(b"PK\x03\x04 truncated")
    assert find_last_checkpoint(tmp_path) == tmp_path / "model_0000003.pth"
    assert [p.name for p in remove_stale_temp_files(tmp_path)] == [".model_0000006.pth.1a2b3c4d.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000003.pth"]


def test_truncated_checkpoint_is_reported_by_name(tmp_path):
    path = tmp_path / "model_0000009.pth"
    save_checkpoint(path, _state(9.0))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(PlugrcnnError, match="model_0000009.pth: not a readable checkpoint"):
        load_checkpoint(path)
    with pytest.raises(PlugrcnnError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pth")


def test_find_last_checkpoint_follows_pointer_then_falls_back_to_newest(tmp_path):
    assert find_last_checkpoint(tmp_path) is None
    for iteration in (3, 12, 6):
        save_checkpoint(tmp_path / f"model_{iteration:07d}.pth", _state(float(iteration)))
    assert find_last_checkpoint(tmp_path) == tmp_path / "model_0000012.pth"  # no pointer: newest
    write_last_checkpoint(tmp_path, "model_0000006.pth")
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000006.pth\n"
    assert find_last_checkpoint(tmp_path) == tmp_path / "model_0000006.pth"
    save_checkpoint(tmp_path / "model_final.pth", _state(20.0))
    (tmp_path / "model_0000006.pth").unlink()  # pointer to a deleted file: newest on disk wins
    assert find_last_checkpoint(tmp_path) == tmp_path / "model_final.pth"


def test_prune_keeps_the_newest_periodic_checkpoints(tmp_path):
    for iteration in (100, 1000, 200, 300):
        save_checkpoint(tmp_path / f"model_{iteration:07d}.pth", _state(1.0))
    save_checkpoint(tmp_path / "model_final.pth", _state(1.0))
    deleted = prune_periodic_checkpoints(tmp_path, keep=2)
    assert [p.name for p in deleted] == ["model_0000100.pth", "model_0000200.pth"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model_0000300.pth", "model_0001000.pth", "model_final.pth"]


def _draws() -> tuple:
    return random.random(), float(np.random.rand()), float(np.random.randn()), torch.rand(3).tolist()


def test_rng_state_survives_a_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    torch.manual_seed(3)
    save_checkpoint(tmp_path / "c.pth", {"rng": [capture_rng_state()]})
    expected = _draws()
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    restore_rng_state(load_checkpoint(tmp_path / "c.pth")["rng"][0])
    assert _draws() == expected


def test_isolated_global_rng_is_seeded_inside_and_transparent_outside():
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    with isolated_global_rng(42):
        inside = _draws()
    after = _draws()
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    assert after == _draws()  # as if the block had not been there
    with isolated_global_rng(42):
        assert _draws() == inside
