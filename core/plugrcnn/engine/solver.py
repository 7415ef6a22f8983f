"""The solver: SGD with per-parameter-kind groups and a linear warm-up followed by step decay.

The config's `solver:` mapping is checked against `SolverConfig` with
`plugrcnn.config.structure(SolverConfig, cfg.solver, cfg.provenance, key="solver")`; value ranges
are checked here, in `__post_init__`.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

import torch
from torch import nn

from plugrcnn.errors import PlugrcnnError

# Layers whose parameters are normalisation scales and shifts: weight decay pulls them towards 0,
# which is not a prior anyone wants, so they get `weight_decay_norm` (0 by default).
NORM_LAYER_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)


@dataclass
class SolverConfig:
    """Optimisation schedule of one training run (detectron2's COCO defaults unless noted)."""

    base_lr: float = 0.02                # for `ims_per_batch` images a step, summed over processes
    momentum: float = 0.9
    weight_decay: float = 1e-4
    weight_decay_norm: float = 0.0       # weight decay of norm-layer scales and shifts
    bias_lr_factor: float = 1.0          # lr of biases = base_lr * bias_lr_factor
    warmup_iters: int = 1000             # lr rises linearly from base_lr * warmup_factor ...
    warmup_factor: float = 0.001         # ... to base_lr over the first warmup_iters iterations
    steps: tuple[int, ...] = (60000, 80000)  # iterations where lr is multiplied by gamma
    gamma: float = 0.1
    max_iter: int = 90000
    clip_grad_norm: float | None = None  # max L2 norm of all gradients together; None: no clipping
    amp: bool = False                    # float16 autocast + GradScaler; CUDA only (noted on CPU)
    ims_per_batch: int = 16              # images per step over all processes (divisible by them)
    checkpoint_period: int = 5000        # iterations between checkpoints (an interruption loses < this)
    keep_checkpoints: int = 2            # periodic checkpoints kept on disk (model_final is extra)
    log_period: int = 20                 # iterations averaged into one metrics.jsonl line
    seed: int = 0                        # data order, augmentation and the model's own randomness
    num_workers: int = 2                 # DataLoader worker processes per training process

    def __post_init__(self) -> None:
        self.steps = tuple(int(s) for s in self.steps)
        positive = ("base_lr", "max_iter", "ims_per_batch", "checkpoint_period", "log_period",
                    "keep_checkpoints")
        for key in positive:
            if not getattr(self, key) > 0:
                raise PlugrcnnError(f"solver.{key}: must be > 0, got {getattr(self, key)!r}")
        non_negative = ("momentum", "weight_decay", "weight_decay_norm", "bias_lr_factor",
                        "warmup_iters", "gamma", "num_workers")
        for key in non_negative:
            if getattr(self, key) < 0:
                raise PlugrcnnError(f"solver.{key}: must be >= 0, got {getattr(self, key)!r}")
        if not 0.0 < self.warmup_factor <= 1.0:
            raise PlugrcnnError(f"solver.warmup_factor: must be in (0, 1], got {self.warmup_factor!r}")
        if list(self.steps) != sorted(set(self.steps)) or any(s <= 0 for s in self.steps):
            raise PlugrcnnError(
                f"solver.steps: must be strictly increasing positive iterations, got {list(self.steps)}")
        if self.clip_grad_norm is not None and not self.clip_grad_norm > 0:
            raise PlugrcnnError(
                f"solver.clip_grad_norm: must be > 0 or null (no clipping), got {self.clip_grad_norm!r}")


def lr_factor_at(iteration: int, cfg: SolverConfig) -> float:
    """The lr multiplier of the step with 0-based index `iteration` (warm-up x step decay)."""
    factor = cfg.gamma ** bisect.bisect_right(cfg.steps, iteration)
    if iteration < cfg.warmup_iters:
        progress = iteration / cfg.warmup_iters
        factor *= cfg.warmup_factor * (1.0 - progress) + progress
    return factor


def _parameter_groups(model: nn.Module, cfg: SolverConfig) -> list[dict]:
    """Parameters bucketed by (lr, weight decay); shared parameters are counted once."""
    buckets: dict[tuple[float, float], list[nn.Parameter]] = {}
    seen: set[int] = set()
    for module in model.modules():
        is_norm = isinstance(module, NORM_LAYER_TYPES)
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            lr = cfg.base_lr * (cfg.bias_lr_factor if name == "bias" else 1.0)
            weight_decay = cfg.weight_decay_norm if is_norm else cfg.weight_decay
            buckets.setdefault((lr, weight_decay), []).append(param)
    return [{"params": params, "lr": lr, "weight_decay": wd} for (lr, wd), params in buckets.items()]


def build_optimizer(model: nn.Module, cfg: SolverConfig) -> torch.optim.SGD:
    """SGD with momentum; norm layers get `weight_decay_norm`, biases `base_lr * bias_lr_factor`."""
    groups = _parameter_groups(model, cfg)
    if not groups:
        raise PlugrcnnError("model: no trainable parameters (all have requires_grad=False); "
                            "check backbone.freeze_at and the heads")
    return torch.optim.SGD(groups, lr=cfg.base_lr, momentum=cfg.momentum)


def build_lr_scheduler(optimizer: torch.optim.Optimizer,
                       cfg: SolverConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up then step decay; call `.step()` once after every optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda iteration: lr_factor_at(iteration, cfg))
