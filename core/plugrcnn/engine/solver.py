"""The solver: SGD with per-parameter-kind groups and a linear warm-up followed by step decay.

`SolverConfig` (the config's `solver:` section, checked when the config loads) lives in
`plugrcnn.config.solver`; it is re-exported here.
"""
from __future__ import annotations

import bisect

import torch
from torch import nn

from plugrcnn.config.solver import SolverConfig
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
