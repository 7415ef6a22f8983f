"""The hooks a config asks for: config.yaml, evaluation on the val split, best model, `solver.hooks`."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from plugrcnn.config.schema import Config
from plugrcnn.engine.distributed import is_main_process
from plugrcnn.engine.eval_hooks import BestCheckpointHook, PeriodicEvalHook
from plugrcnn.engine.hook_registry import build_config_hooks
from plugrcnn.engine.hooks import HookBase
from plugrcnn.engine.solver import SolverConfig
from plugrcnn.modeling.build import BuiltModel


class SaveConfigHook(HookBase):
    """Writes the run's config (rank 0) before the first step: `save(cfg, output_dir / "config.yaml")`."""

    def __init__(self, cfg: Config, save: Callable[[Config, Any], None]) -> None:
        self.cfg = cfg
        self.save = save

    def before_train(self) -> None:
        if is_main_process():
            self.save(self.cfg, self.trainer.output_dir / "config.yaml")


class ValidationSplitEvaluator:
    """`evaluate(model)` on the config's val split, like `plugrcnn eval` (no report files).

    The val split is read on the first call's process only (rank 0), and kept.
    """

    def __init__(self, cfg: Config, built: BuiltModel) -> None:
        self.cfg = cfg
        self.built = built
        self.dataset: Any = None

    def load(self) -> None:
        from plugrcnn.data.build import load_split

        if self.dataset is None:
            self.dataset = load_split(self.cfg, "val", training=False)

    def __call__(self, model: nn.Module) -> dict[str, dict[str, float]]:
        from plugrcnn.evaluation.coco_evaluator import evaluate
        from plugrcnn.inference.predictor import Predictor

        self.load()
        device = next(model.parameters()).device
        predictor = Predictor(self.cfg, self.built, device)  # the model being trained, not a copy
        return evaluate(predictor, self.dataset, output_dir=None, progress=False, report=False)


class _LoadValSplitHook(HookBase):
    """Reads the val split before the first step (rank 0): a bad path fails now, not at the first eval."""

    def __init__(self, evaluator: ValidationSplitEvaluator) -> None:
        self.evaluator = evaluator

    def before_train(self) -> None:
        if is_main_process():
            self.evaluator.load()


def hooks_from_config(cfg: Config, solver: SolverConfig, built: BuiltModel,
                      save_config: Callable[[Config, Any], None]) -> list[HookBase]:
    """The config's hooks, in order: config.yaml, evaluation + best model, then `solver.hooks`."""
    from plugrcnn.evaluation.coco_evaluator import format_table

    hooks: list[HookBase] = [SaveConfigHook(cfg, save_config)]
    if solver.eval_period > 0:
        evaluator = ValidationSplitEvaluator(cfg, built)
        hooks += [_LoadValSplitHook(evaluator),
                  PeriodicEvalHook(evaluator, solver.eval_period, format_results=format_table),
                  BestCheckpointHook(solver.best_metric, solver.best_mode)]
    return hooks + build_config_hooks(solver.hooks)
