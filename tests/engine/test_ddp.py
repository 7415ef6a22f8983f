"""Two CPU processes with gloo, started by torchrun exactly as a user would start training."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from plugrcnn.engine.checkpoint import load_checkpoint
from plugrcnn.engine.metrics import read_metrics

DDP_SCRIPT = Path(__file__).with_name("ddp_gradients.py")


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("ddp")
    # --standalone: a local rendezvous on a free port, so parallel test runs do not collide.
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(DDP_SCRIPT), str(output_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return output_dir


def test_each_rank_gets_different_data_and_together_they_make_the_full_step(ddp_run):
    result = json.loads((ddp_run / "result.json").read_text())
    assert result["world_size"] == 2
    rank0, rank1 = (torch.tensor(x) for x in result["inputs"])
    assert not torch.allclose(rank0, rank1)
    full = torch.tensor(result["full_batch_inputs"])  # (4, 4): ranks take alternate images
    assert torch.equal(full[0::2], rank0) and torch.equal(full[1::2], rank1)


def test_ddp_gradients_agree_across_ranks_and_equal_the_full_batch_gradient(ddp_run):
    result = json.loads((ddp_run / "result.json").read_text())
    rank0, rank1 = (torch.tensor(g) for g in result["gradients"])
    assert torch.equal(rank0, rank1)
    full = torch.tensor(result["full_batch_gradient"])
    assert full.abs().max() > 1e-3  # a real gradient, not zeros
    torch.testing.assert_close(rank0, full, rtol=1e-5, atol=1e-6)


def test_two_process_training_matches_one_process_with_the_same_total_batch(ddp_run, toy, tmp_path):
    solver = toy.toy_solver(max_iter=4, period=2)
    toy.make_trainer(tmp_path, solver, toy.ToyModel(dropout=0.0)).train()
    two_processes = load_checkpoint(ddp_run / "trainer" / "model_final.pth")
    one_process = load_checkpoint(tmp_path / "model_final.pth")
    assert two_processes["iteration"] == 4 and len(two_processes["rng"]) == 2  # one per rank
    for name, weight in one_process["model"].items():
        torch.testing.assert_close(two_processes["model"][name], weight, rtol=1e-5, atol=1e-6)
    assert len(list((ddp_run / "trainer").glob("events.out.tfevents.*"))) == 1  # rank 0's only
    assert sorted(p.name for p in (ddp_run / "trainer").iterdir() if not p.name.startswith("events.")) == [
        "last_checkpoint", "loss_curves.png", "metrics.jsonl", "model_0000002.pth", "model_best.json",
        "model_best.pth", "model_final.pth"]


def test_only_rank_0_evaluates_during_ddp_training_and_the_best_model_is_its(ddp_run):
    result = json.loads((ddp_run / "result.json").read_text())
    assert result["evaluated_at_by_rank"] == [[2, 4], []]
    entries = read_metrics(ddp_run / "trainer" / "metrics.jsonl")
    assert [(e["iteration"], e.get("toy/score")) for e in entries] == [(2, 2.0), (4, 4.0)]
    best = json.loads((ddp_run / "trainer" / "model_best.json").read_text())
    assert (best["iteration"], best["value"]) == (4, 4.0)
