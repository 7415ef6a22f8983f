"""Evaluation during training, and the best model by one of its results.

`PeriodicEvalHook` evaluates every `period` iterations and at the last one, on rank 0 (the other
ranks wait at a barrier), and publishes {"iteration": N, "<kind>/<metric>": value, ...}: one more
line in metrics.jsonl, scalars in TensorBoard, a table on stdout. It leaves training exactly as it
would be without it: every module gets its mode back and the RNG states are restored.

`BestCheckpointHook` keeps `model_best.pth` ({"model", "iteration", "metric", "value"}) and
`model_best.json` (the same without the weights) for the best value of one published metric.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any, Literal

from torch import nn

from plugrcnn.engine.checkpoint import capture_rng_state, restore_rng_state, save_checkpoint
from plugrcnn.engine.distributed import barrier, is_main_process
from plugrcnn.engine.hooks import HookBase
from plugrcnn.outputs import write_json_atomic

logger = logging.getLogger("plugrcnn.engine.trainer")

BEST_CHECKPOINT_NAME = "model_best.pth"
BEST_RECORD_NAME = "model_best.json"

# (unwrapped model in eval mode) -> {kind: {metric: value}}, e.g. {"bbox": {"AP": 0.31, ...}}
EvaluateFn = Callable[[nn.Module], dict[str, dict[str, float]]]


def flatten_results(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """{"bbox": {"AP": 0.3}} -> {"bbox/AP": 0.3}."""
    return {f"{kind}/{name}": float(value) for kind, metrics in results.items()
            for name, value in metrics.items()}


class PeriodicEvalHook(HookBase):
    """Calls `evaluate(model)` at iterations `period, 2*period, ...` and at `solver.max_iter`."""

    def __init__(self, evaluate: EvaluateFn, period: int,
                 format_results: Callable[[dict[str, dict[str, float]]], str] | None = None) -> None:
        self.evaluate = evaluate
        self.period = period
        self.format_results = format_results

    def after_step(self) -> None:
        iteration = self.trainer.iteration
        if self.period > 0 and (iteration % self.period == 0 or iteration == self.trainer.solver.max_iter):
            self.run_evaluation()

    def run_evaluation(self) -> None:
        iteration = self.trainer.iteration
        if is_main_process():
            results = self._evaluate_without_side_effects()
            if self.format_results is not None:
                print(f"evaluation at iteration {iteration}:\n{self.format_results(results)}", flush=True)
            self.trainer.publish({"iteration": iteration, **flatten_results(results)})
        barrier()  # the other ranks wait: the next step's gradients need every rank

    def _evaluate_without_side_effects(self) -> dict[str, dict[str, float]]:
        model = self.trainer.run.model
        rng = capture_rng_state()
        # each module's own mode, not model.train(): a frozen part may be kept in eval mode
        modes = [(module, module.training) for module in model.modules()]
        try:
            model.eval()
            return self.evaluate(model)
        finally:
            for module, training in modes:
                module.training = training
            restore_rng_state(rng)


class BestCheckpointHook(HookBase):
    """`model_best.pth` whenever a published `metric` beats the best so far (rank 0)."""

    def __init__(self, metric: str, mode: Literal["max", "min"] = "max") -> None:
        self.metric = metric
        self.mode = mode
        self.best: float | None = None
        self.warned = False

    def before_train(self) -> None:
        record = self.trainer.output_dir / BEST_RECORD_NAME
        # a resumed run goes on from the best of the run it continues, if that tracked this metric
        if self.trainer.iteration > 0 and record.is_file():
            saved = json.loads(record.read_text(encoding="utf-8"))
            if saved.get("metric") == self.metric and saved.get("mode", "max") == self.mode:
                self.best = float(saved["value"])

    def _is_better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_metrics(self, entry: dict[str, Any]) -> None:
        if not is_main_process() or not any("/" in key for key in entry):
            return  # loss lines carry no evaluation results
        value = entry.get(self.metric)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            if not self.warned:
                known = ", ".join(sorted(k for k in entry if "/" in k))
                logger.warning("solver.best_metric: the evaluation gave no %s (it gave: %s); "
                               "no model_best.pth", self.metric, known)
                self.warned = True
            return
        if self._is_better(float(value)):
            self.best = float(value)
            self._save(int(entry["iteration"]), float(value))

    def _save(self, iteration: int, value: float) -> None:
        trainer = self.trainer
        record = {"metric": self.metric, "mode": self.mode, "value": value, "iteration": iteration}
        save_checkpoint(trainer.output_dir / BEST_CHECKPOINT_NAME,
                        {"model": trainer.run.model.state_dict(), **record})
        write_json_atomic(trainer.output_dir / BEST_RECORD_NAME, record, indent=2)
        logger.info("best %s so far: %.4g at iteration %d -> %s", self.metric, value, iteration,
                    BEST_CHECKPOINT_NAME)
