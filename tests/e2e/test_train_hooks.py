"""`plugrcnn train ... solver.eval_period=N`: evaluation during training, TensorBoard events, the best
model, and a hook from a third-party package named in the config (no trainer edit)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny_config
from plugrcnn.engine.metrics import read_metrics

HEADS = "    class: {}\n    box: {}\n    mask: {num_conv: 1, conv_dim: 16}\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_synthetic: Path,
            recording_hook_paths: list[str]) -> tuple[Path, str]:
    tmp_path = tmp_path_factory.mktemp("train_hooks")
    config = tiny_config(tmp_path, tiny_synthetic, HEADS)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [*recording_hook_paths, *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run(
        [sys.executable, "-m", "plugrcnn.cli", "train", "--config", str(config), "--output-dir", str(out),
         "solver.max_iter=4", "solver.eval_period=2", "solver.log_period=1", "solver.best_metric=segm/AP",
         "solver.hooks=[{name: record_calls, every: 2}]"],
        capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout


def test_evaluation_runs_at_every_period_and_its_results_go_to_metrics_jsonl(trained):
    out, stdout = trained
    entries = {e["iteration"]: e for e in read_metrics(out / "metrics.jsonl")}
    assert [i for i, e in entries.items() if "bbox/AP" in e] == [2, 4]
    assert all("segm/AP50" in entries[i] and "total_loss" in entries[i] for i in (2, 4))
    assert "evaluation at iteration 2:" in stdout and "evaluation at iteration 4:" in stdout
    best = json.loads((out / "model_best.json").read_text())
    values = {i: entries[i]["segm/AP"] for i in (2, 4)}
    first_best = 2 if values[2] >= values[4] else 4  # a tie keeps the earlier model
    assert best == {"metric": "segm/AP", "mode": "max", "value": values[first_best],
                    "iteration": first_best}


def test_tensorboard_events_hold_the_numbers_of_metrics_jsonl(trained):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, _ = trained
    entries = {e["iteration"]: e for e in read_metrics(out / "metrics.jsonl")}
    events = EventAccumulator(str(out))
    events.Reload()
    total = {s.step: s.value for s in events.Scalars("total_loss")}
    assert sorted(total) == [1, 2, 3, 4]  # log_period 1
    for step, value in total.items():
        assert value == pytest.approx(entries[step]["total_loss"], rel=1e-6)
    ap = {s.step: s.value for s in events.Scalars("bbox/AP50")}
    assert ap == {i: pytest.approx(entries[i]["bbox/AP50"], rel=1e-6, abs=1e-7) for i in (2, 4)}


def test_a_hook_from_a_plugin_package_named_in_the_config_ran(trained):
    out, _ = trained
    calls = json.loads((out / "hook_calls.json").read_text())
    assert calls[0] == ["before_train", 0] and calls[-1] == ["after_train", 4, True]
    steps = [c[:2] for c in calls if c[0] in ("before_step", "after_step")]
    assert steps == [["before_step", 1], ["after_step", 2], ["before_step", 3], ["after_step", 4]]
    evaluated = [c[1] for c in calls if c[0] == "on_metrics" and "bbox/AP" in c[2]]
    assert evaluated == [2, 4]
