"""Trainer hooks: a third-party hook named in the config, evaluation during training, best model."""
from __future__ import annotations

import json
import logging
import sys

import pytest
import torch

from plugrcnn.config import structure
from plugrcnn.engine.checkpoint import load_checkpoint
from plugrcnn.engine.eval_hooks import BestCheckpointHook, PeriodicEvalHook
from plugrcnn.engine.hook_registry import build_config_hooks
from plugrcnn.engine.hooks import HookBase
from plugrcnn.engine.metrics import read_metrics
from plugrcnn.engine.solver import SolverConfig
from plugrcnn.errors import PlugrcnnError


def _solver(toy, **overrides) -> SolverConfig:
    """The toy schedule, read the way a config's `solver:` mapping is."""
    values = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(toy.toy_solver()).items()}
    values.update(overrides)
    return structure(SolverConfig, values, key="solver")


def test_a_hook_from_a_plugin_runs_when_the_config_names_it(toy, tmp_path, recording_hook_paths):
    solver = _solver(toy, max_iter=4, log_period=2, checkpoint_period=100,
                     hooks=[{"name": "record_calls", "path": "calls.json", "every": 2}])
    hooks = build_config_hooks(solver.hooks)
    assert type(hooks[0]).__module__ == "plugrcnn_recording_hook.hook"  # the plugin's, not ours
    toy.Trainer(model=toy.ToyModel(), dataset=toy.ToyDataset(10), collate_fn=toy.collate_list,
                solver=solver, output_dir=tmp_path, device="cpu", hooks=hooks).train()
    calls = json.loads((tmp_path / "calls.json").read_text())
    losses = ["data_time", "loss_l1", "loss_mse", "lr", "time", "total_loss"]
    assert calls == [["before_train", 0],
                     ["before_step", 1], ["on_metrics", 2, losses], ["after_step", 2],
                     ["before_step", 3], ["on_metrics", 4, losses], ["after_step", 4],
                     ["after_train", 4, True]]


def test_an_unknown_hook_or_option_fails_when_the_solver_config_is_read(recording_hook_paths):
    with pytest.raises(PlugrcnnError, match=r"solver.hooks\[1\]: no installed trainer hook is named "
                                            r"'recrod_calls' \(installed: .*record_calls"):
        structure(SolverConfig, {"hooks": [{"name": "record_calls"}, {"name": "recrod_calls"}]},
                  key="solver")
    with pytest.raises(PlugrcnnError, match=r"solver.hooks\[0\] \(record_calls\): .*'colour'"):
        structure(SolverConfig, {"hooks": [{"name": "record_calls", "colour": "red"}]}, key="solver")
    with pytest.raises(PlugrcnnError, match=r"solver.hooks\[0\]: expected a mapping with a 'name'"):
        structure(SolverConfig, {"hooks": [{"path": "x.json"}]}, key="solver")


def _evaluate_drawing_random_numbers(aps: dict[int, float], seen: list[int]):
    """A stand-in evaluation: AP by call number; it draws from the global RNGs like a careless one."""
    def evaluate(model: torch.nn.Module) -> dict[str, dict[str, float]]:
        assert not model.training
        seen.append(len(seen) + 1)
        torch.rand(100)
        return {"bbox": {"AP": aps[len(seen)], "AP50": 0.9}}
    return evaluate


def test_periodic_evaluation_is_logged_picks_the_best_model_and_leaves_training_unchanged(toy, tmp_path):
    solver = toy.toy_solver(max_iter=6, period=2, log_period=2, keep_checkpoints=3)
    seen: list[int] = []
    hooks = [PeriodicEvalHook(_evaluate_drawing_random_numbers({1: 0.2, 2: 0.5, 3: 0.4}, seen), period=4),
             BestCheckpointHook("bbox/AP")]
    result = toy.Trainer(model=toy.ToyModel(), dataset=toy.ToyDataset(10), collate_fn=toy.collate_list,
                         solver=solver, output_dir=tmp_path / "eval", device="cpu", hooks=hooks).train()
    toy.make_trainer(tmp_path / "plain", solver).train()

    assert seen == [1, 2]  # at iteration 4 (the period) and 6 (the end)
    entries = {e["iteration"]: e for e in read_metrics(tmp_path / "eval" / "metrics.jsonl")}
    assert [i for i, e in entries.items() if "bbox/AP" in e] == [4, 6]
    assert entries[4]["bbox/AP"] == 0.2 and entries[6]["bbox/AP"] == 0.5
    assert "total_loss" in entries[4]  # the loss line of iteration 4 is kept beside the eval line
    assert result["bbox/AP"] == 0.5 and "total_loss" in result
    best = json.loads((tmp_path / "eval" / "model_best.json").read_text())
    assert best == {"metric": "bbox/AP", "mode": "max", "value": 0.5, "iteration": 6}
    eval_final = load_checkpoint(tmp_path / "eval" / "model_final.pth")["model"]
    plain_final = load_checkpoint(tmp_path / "plain" / "model_final.pth")["model"]
    for name, value in plain_final.items():  # dropout draws continue as if nothing was evaluated
        assert torch.equal(eval_final[name], value), name
    best_weights = load_checkpoint(tmp_path / "eval" / "model_best.pth")["model"]
    assert all(torch.equal(best_weights[n], eval_final[n]) for n in eval_final)


def test_best_model_keeps_the_earlier_iteration_when_later_results_are_worse(toy, tmp_path):
    solver = toy.toy_solver(max_iter=6, period=2, log_period=2, keep_checkpoints=3)
    hooks = [PeriodicEvalHook(_evaluate_drawing_random_numbers({1: 0.3, 2: 0.6, 3: 0.1}, []), period=2),
             BestCheckpointHook("bbox/AP")]
    toy.Trainer(model=toy.ToyModel(), dataset=toy.ToyDataset(10), collate_fn=toy.collate_list,
                solver=solver, output_dir=tmp_path, device="cpu", hooks=hooks).train()
    best = load_checkpoint(tmp_path / "model_best.pth")
    assert (best["iteration"], best["metric"], best["value"]) == (4, "bbox/AP", 0.6)
    at_four = load_checkpoint(tmp_path / "model_0000004.pth")["model"]
    assert all(torch.equal(best["model"][n], at_four[n]) for n in at_four)



def test_without_the_tensorboard_package_training_goes_on_and_says_so_once(toy, tmp_path, monkeypatch,
                                                                            caplog):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import raises ImportError
    with caplog.at_level(logging.WARNING, logger="plugrcnn.engine.trainer"):
        result = toy.make_trainer(tmp_path, toy.toy_solver(max_iter=2, log_period=1)).train()
    assert result["iteration"] == 2
    assert [r.message for r in caplog.records].count(
        "TensorBoard: the tensorboard package is not installed; no event files (pip install "
        "tensorboard); metrics.jsonl is written as always") == 1
    assert not list(tmp_path.glob("events.out.tfevents.*"))
    assert len(read_metrics(tmp_path / "metrics.jsonl")) == 2


class _FailsToStart(HookBase):
    def before_train(self) -> None:
        raise PlugrcnnError("data.val.instances: no such file")


class _OpensAFile(HookBase):
    def before_train(self) -> None:
        self.file = (self.trainer.output_dir / "log.txt").open("w")

    def after_train(self) -> None:
        self.file.close()  # AttributeError if called without before_train


def test_a_hook_that_fails_to_start_stops_training_with_its_own_error(toy, tmp_path):
    with pytest.raises(PlugrcnnError, match="^data.val.instances: no such file$"):
        toy.Trainer(model=toy.ToyModel(), dataset=toy.ToyDataset(10), collate_fn=toy.collate_list,
                    solver=toy.toy_solver(max_iter=2), output_dir=tmp_path, device="cpu",
                    hooks=[_FailsToStart(), _OpensAFile()]).train()
    assert not (tmp_path / "model_final.pth").exists()
