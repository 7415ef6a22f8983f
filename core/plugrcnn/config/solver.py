"""The solver's configuration (`solver:` in a config), checked when the config loads.

Value ranges are checked in `__post_init__`; the optimiser and schedule built from it live in
`plugrcnn.engine.solver`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from plugrcnn.config.ranges import ranged, range_problems
from plugrcnn.errors import PlugrcnnError


@dataclass
class SolverConfig:
    """Optimisation schedule of one training run (detectron2's COCO defaults unless noted)."""

    base_lr: float = ranged(0.02, gt=0, le=100)             # for `ims_per_batch` images a step, summed over processes
    momentum: float = ranged(0.9, ge=0, le=1)
    weight_decay: float = ranged(1e-4, ge=0, le=1)
    weight_decay_norm: float = ranged(0.0, ge=0, le=1)      # weight decay of norm-layer scales and shifts
    bias_lr_factor: float = ranged(1.0, ge=0, le=100)       # lr of biases = base_lr * bias_lr_factor
    warmup_iters: int = ranged(1000, ge=0)                  # lr rises linearly from base_lr * warmup_factor ...
    warmup_factor: float = ranged(0.001, gt=0, le=1)        # ... to base_lr over the first warmup_iters iterations
    steps: tuple[int, ...] = ranged((60000, 80000), ge=1)   # iterations where lr is multiplied by gamma
    gamma: float = ranged(0.1, ge=0, le=1)
    max_iter: int = ranged(90000, ge=1)
    clip_grad_norm: float | None = None  # max L2 norm of all gradients together; None: no clipping
    amp: bool = False                    # mixed precision: float16 autocast + GradScaler on CUDA, bfloat16 autocast on a CPU with bf16 instructions
    ims_per_batch: int = ranged(16, ge=1, le=4096)          # images per step over all processes (divisible by them)
    checkpoint_period: int = ranged(5000, ge=1)             # iterations between checkpoints (an interruption loses < this)
    keep_checkpoints: int = ranged(2, ge=1)                 # periodic checkpoints kept on disk (model_final is extra)
    log_period: int = ranged(20, ge=1)                      # iterations averaged into one metrics.jsonl line
    seed: int = ranged(0, ge=0, lt=2**63)                   # data order, augmentation and the model's own randomness
    num_workers: int = ranged(2, ge=0, le=256)              # DataLoader worker processes per training process
    eval_period: int = ranged(0, ge=0)   # evaluate on the val split every this many iterations and at the end; 0: never
    best_metric: str = "bbox/AP"         # evaluation result that picks model_best.pth ("<kind>/<metric>")
    best_mode: Literal["max", "min"] = "max"  # whether a higher or a lower best_metric is better
    hooks: tuple[dict[str, Any], ...] = ()    # [{name: <installed hook>, <option>: value, ...}] (engine.hook_registry)

    def __post_init__(self) -> None:
        self.steps = tuple(int(s) for s in self.steps)
        # ranges are declared beside the defaults; checked here too for SolverConfig(...) in code
        for key, problem in range_problems(self):
            raise PlugrcnnError(f"solver.{key}: {problem}")
        if list(self.steps) != sorted(set(self.steps)) or any(s <= 0 for s in self.steps):
            raise PlugrcnnError(
                f"solver.steps: must be strictly increasing positive iterations, got {list(self.steps)}")
        if "/" not in self.best_metric:
            raise PlugrcnnError(f"solver.best_metric: expected '<kind>/<metric>' such as 'bbox/AP', "
                                f"got {self.best_metric!r}")
        if self.hooks:
            from plugrcnn.engine.hook_registry import check_hook_entries

            self.hooks = tuple(self.hooks)
            check_hook_entries(self.hooks)
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise PlugrcnnError(
                f"solver.clip_grad_norm: must be > 0 or null (no clipping), got {self.clip_grad_norm!r}")
