"""Trainer hooks: what happens around the steps (checkpoints, metrics, progress, plots).

A hook sees the trainer (`self.trainer`, set when the trainer registers it) and is called:

    before_train()            once, after resume, before the first step (rank 0 and the others)
    before_step()             before each step; `trainer.iteration` = steps completed so far
    after_step()              after each step; `trainer.iteration` = steps completed, this one too
    after_train()             once, also when a step raised (`trainer.finished` says which)
    on_metrics(entry)         for each metrics entry published with `trainer.publish(entry)`

Every process runs every hook (a hook may need a collective call, like the checkpoint's RNG
gather); a hook that writes files or evaluates acts on rank 0 only (`is_main_process()`).
Hooks run in the order the trainer lists them: `default_hooks()`, then the caller's.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from plugrcnn.engine.checkpoint import (
    FINAL_CHECKPOINT_NAME,
    capture_rng_state,
    periodic_checkpoint_name,
    prune_periodic_checkpoints,
    save_checkpoint,
    write_last_checkpoint,
)
from plugrcnn.engine.distributed import all_gather_objects, all_reduce_mean_dict, is_main_process
from plugrcnn.engine.metrics import MetricsWriter, plot_loss_curves
from plugrcnn.engine.solver import lr_factor_at

if TYPE_CHECKING:
    from plugrcnn.engine.trainer import Trainer

logger = logging.getLogger("plugrcnn.engine.trainer")

METRICS_FILE = "metrics.jsonl"
LOSS_PLOT_FILE = "loss_curves.png"


class HookBase:
    """Override the calls you need; the trainer sets `self.trainer` before `before_train`."""

    trainer: Trainer

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def before_step(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def on_metrics(self, entry: dict[str, Any]) -> None:
        """`entry`: {"iteration": int, name: float, ...} (losses, lr, or evaluation results)."""


class CheckpointHook(HookBase):
    """`model_<iteration>.pth` every `solver.checkpoint_period` steps and `model_final.pth` at the end.

    Saving is a collective call (every rank's RNG state is gathered); rank 0 writes the file.
    """

    def after_step(self) -> None:
        trainer = self.trainer
        iteration = trainer.iteration
        if iteration % trainer.solver.checkpoint_period == 0 and iteration < trainer.solver.max_iter:
            self.save(periodic_checkpoint_name(iteration))

    def after_train(self) -> None:
        trainer = self.trainer
        # Same decision on every rank (no file-system look-up): save is a collective call.
        if trainer.finished and (trainer.iteration > trainer.start_iteration
                                 or trainer.run.resumed_from != FINAL_CHECKPOINT_NAME):
            self.save(FINAL_CHECKPOINT_NAME)

    def save(self, name: str) -> None:
        """Write checkpoint `name` (rank 0), pointing `last_checkpoint` at it; collective call."""
        trainer, run = self.trainer, self.trainer.run
        rng_states = all_gather_objects(capture_rng_state())
        if not is_main_process():
            return
        state = {
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "grad_scaler": run.scaler.state_dict(),
            "iteration": run.iteration,
            "data": {"position": run.data_position, "seed": trainer.solver.seed,
                     "dataset_size": len(trainer.dataset)},
            "rng": rng_states,
            "solver": dataclasses.asdict(trainer.solver),
        }
        save_checkpoint(trainer.output_dir / name, state)
        write_last_checkpoint(trainer.output_dir, name)
        prune_periodic_checkpoints(trainer.output_dir, keep=trainer.solver.keep_checkpoints)


class LossWindowHook(HookBase):
    """Averages the losses of `solver.log_period` steps and publishes them as one metrics entry.

    The sums stay device tensors between log points (no sync per step); `means` is a collective
    call, so every rank runs this hook.
    """

    def before_train(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.step_seconds = 0.0
        self.data_seconds = 0.0

    def after_step(self) -> None:
        step = self.trainer.last_step
        for name, value in {**step.losses, "total_loss": step.total}.items():
            value = value.detach().float()
            self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.steps += 1
        self.step_seconds += step.step_seconds
        self.data_seconds += step.data_seconds
        solver, iteration = self.trainer.solver, self.trainer.iteration
        if iteration % solver.log_period == 0 or iteration == solver.max_iter:
            means = all_reduce_mean_dict({k: v / self.steps for k, v in self.sums.items()})
            self.trainer.publish({
                "iteration": iteration, **means,
                "lr": solver.base_lr * lr_factor_at(iteration - 1, solver),
                "time": self.step_seconds / self.steps, "data_time": self.data_seconds / self.steps})
            self._reset()


class MetricsFileHook(HookBase):
    """Appends every published entry to `<output_dir>/metrics.jsonl` (rank 0)."""

    def before_train(self) -> None:
        self.writer = MetricsWriter(self.trainer.output_dir / METRICS_FILE) if is_main_process() else None

    def on_metrics(self, entry: dict[str, Any]) -> None:
        if self.writer is not None:
            self.writer.write(entry)

    def after_train(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class ProgressHook(HookBase):
    """A tqdm bar on an interactive terminal (rank 0); otherwise a log line per loss entry."""

    def before_train(self) -> None:
        trainer = self.trainer
        # disable=None: a bar only on an interactive terminal; progress also goes to the log.
        self.bar = tqdm(total=trainer.solver.max_iter, initial=trainer.iteration, desc="train",
                        dynamic_ncols=True, disable=None if is_main_process() else True)

    def after_step(self) -> None:
        self.bar.update(1)

    def on_metrics(self, entry: dict[str, Any]) -> None:
        if "total_loss" not in entry:
            return
        self.bar.set_postfix(loss=f"{entry['total_loss']:.4g}", lr=f"{entry['lr']:.3g}", refresh=False)
        if self.bar.disable and is_main_process():
            logger.info("iter %d/%d  total_loss %.4g  lr %.3g  %.3f s/iter", entry["iteration"],
                        self.trainer.solver.max_iter, entry["total_loss"], entry["lr"], entry["time"])

    def after_train(self) -> None:
        self.bar.close()


class LossPlotHook(HookBase):
    """`loss_curves.png` from metrics.jsonl at the end of a finished run (rank 0)."""

    def after_train(self) -> None:
        trainer = self.trainer
        metrics = trainer.output_dir / METRICS_FILE
        if trainer.finished and is_main_process() and metrics.is_file():
            plot_loss_curves(metrics, trainer.output_dir / LOSS_PLOT_FILE)


__all__ = ["CheckpointHook", "HookBase", "LOSS_PLOT_FILE", "LossPlotHook", "LossWindowHook",
           "METRICS_FILE", "MetricsFileHook", "ProgressHook"]
