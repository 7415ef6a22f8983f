from __future__ import annotations

import pytest
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

from plugrcnn.config import structure
from plugrcnn.engine.solver import SolverConfig, build_lr_scheduler, build_optimizer, lr_factor_at
from plugrcnn.errors import PlugrcnnError


def _schedule_config(**overrides) -> SolverConfig:
    values = dict(base_lr=0.1, warmup_iters=10, warmup_factor=0.001, steps=(20, 30), gamma=0.1,
                  max_iter=40)
    values.update(overrides)
    return SolverConfig(**values)


def _lrs_per_step(cfg: SolverConfig, model: nn.Module, num_steps: int) -> list[list[float]]:
    """The lr of every param group used by steps 0..num_steps-1 (the lr in effect at each step)."""
    optimizer = build_optimizer(model, cfg)
    scheduler = build_lr_scheduler(optimizer, cfg)
    lrs = []
    for _ in range(num_steps):
        lrs.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return lrs


def test_lr_schedule_is_linear_warmup_then_step_decay():
    cfg = _schedule_config()
    lrs = [step_lrs[0] for step_lrs in _lrs_per_step(cfg, nn.Linear(2, 2, bias=False), 35)]
    # warm-up: lr = base * (f * (1 - i / W) + i / W), f = 0.001, W = 10
    assert lrs[0] == pytest.approx(1e-4)
    assert lrs[1] == pytest.approx(0.1 * (0.001 * 0.9 + 0.1))          # 0.010090
    assert lrs[5] == pytest.approx(0.1 * (0.001 * 0.5 + 0.5))          # 0.05005
    assert lrs[9] == pytest.approx(0.1 * (0.001 * 0.1 + 0.9))          # 0.09001
    assert lrs[10] == pytest.approx(0.1)
    assert lrs[19] == pytest.approx(0.1)
    assert lrs[20] == pytest.approx(0.01)   # first decay at step 20
    assert lrs[29] == pytest.approx(0.01)
    assert lrs[30] == pytest.approx(0.001)  # second decay at step 30
    assert lrs[34] == pytest.approx(0.001)


def test_decay_step_inside_warmup_multiplies_both():
    cfg = _schedule_config(steps=(4,))
    assert lr_factor_at(5, cfg) == pytest.approx(0.1 * (0.001 * 0.5 + 0.5))
    assert lr_factor_at(3, cfg) == pytest.approx(0.001 * 0.7 + 0.3)


class _NetWithNorms(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)                 # weight + bias
        self.bn = nn.BatchNorm2d(4)                    # norm
        self.gn = nn.GroupNorm(2, 4)                   # norm
        self.frozen = FrozenBatchNorm2d(4)             # buffers only: nothing to optimise
        self.fc = nn.Linear(4, 2)                      # weight + bias
        self.tied = self.fc                            # the same parameters twice
        self.frozen_fc = nn.Linear(2, 2)
        self.frozen_fc.requires_grad_(False)


def test_param_groups_norm_layers_get_weight_decay_norm_and_biases_their_lr_factor():
    model = _NetWithNorms()
    cfg = _schedule_config(weight_decay=1e-4, weight_decay_norm=0.0, bias_lr_factor=2.0,
                           warmup_iters=0)
    optimizer = build_optimizer(model, cfg)
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    expected = {  # parameter -> (lr, weight decay)
        model.conv.weight: (0.1, 1e-4), model.conv.bias: (0.2, 1e-4),
        model.bn.weight: (0.1, 0.0), model.bn.bias: (0.2, 0.0),
        model.gn.weight: (0.1, 0.0), model.gn.bias: (0.2, 0.0),
        model.fc.weight: (0.1, 1e-4), model.fc.bias: (0.2, 1e-4),
    }
    for param, (lr, weight_decay) in expected.items():
        assert (group_of[id(param)]["lr"], group_of[id(param)]["weight_decay"]) == (lr, weight_decay)
    optimised = [p for g in optimizer.param_groups for p in g["params"]]
    assert len(optimised) == len(expected)  # tied fc once, frozen fc not at all
    assert all(g["momentum"] == 0.9 for g in optimizer.param_groups)


def test_bias_group_follows_the_schedule_at_its_own_scale():
    cfg = _schedule_config(bias_lr_factor=2.0)
    lrs = _lrs_per_step(cfg, nn.Linear(2, 2), 21)
    weight_lr, bias_lr = lrs[5]
    assert weight_lr == pytest.approx(0.05005)
    assert bias_lr == pytest.approx(2 * 0.05005)
    assert lrs[20][1] == pytest.approx(0.02)


@pytest.mark.parametrize("values, key", [
    (dict(steps=(30, 20)), "solver.steps"),
    (dict(base_lr=0.0), "solver.base_lr"),
    (dict(warmup_factor=1.5), "solver.warmup_factor"),
    (dict(clip_grad_norm=-1.0), "solver.clip_grad_norm"),
])
def test_bad_values_name_the_key(values, key):
    with pytest.raises(PlugrcnnError, match=key):
        SolverConfig(**values)


def test_config_mapping_is_checked_through_the_config_loader():
    cfg = structure(SolverConfig, {"base_lr": 0.01, "steps": [100, 200], "clip_grad_norm": None},
                    key="solver")
    assert cfg.steps == (100, 200) and cfg.base_lr == 0.01 and cfg.clip_grad_norm is None
    with pytest.raises(PlugrcnnError, match="unknown key solver.base_lrr"):
        structure(SolverConfig, {"base_lrr": 0.01}, key="solver")
