"""Which loss drives which parameters: the L2 norm of each loss term's weighted gradient on each
parameter group (backbone body, FPN, RPN, each RoI head and trunk), and of their sum — the norm
that `solver.clip_grad_norm` clips. A term whose gradient dominates the shared groups steers the
features every head reads; a summed norm above the clip scales every head's update down.

    python tools/loss_gradient_norms.py --config configs/demo/synthetic_demo.yaml \\
        --weights output/demo/train/model_0000400.pth [--batches 2] [key=value ...]

(the config's data paths must point at the training split; without --weights: the initial
weights). Uses the training split's first images, mapped with the training augmentation.
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from plugrcnn.config import load_config
from plugrcnn.engine.training import prepare_training


def parameter_group(name: str) -> str:
    """"backbone.body.layer1.0.conv1.weight" -> "backbone.body"; "roi_stage.heads.mask.x" -> "mask"."""
    parts = name.split(".")
    if parts[0] == "roi_stage" and len(parts) > 2:
        return parts[2]
    return ".".join(parts[:2]) if parts[0] == "backbone" else parts[0]


def gradient_norms(model: torch.nn.Module, criterion: Any, batch: list, weights: Mapping[str, float]
                   ) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """Loss values, and {(loss name or "total", group or "ALL"): gradient norm} for one batch."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    losses = criterion(model(batch))
    norms: dict[tuple[str, str], float] = {}
    summed: list[torch.Tensor | None] = [None] * len(params)
    for loss_name, loss in losses.items():
        grads = torch.autograd.grad(loss * weights.get(loss_name, 1.0), [p for _, p in params],
                                    retain_graph=True, allow_unused=True)
        squares: dict[str, float] = defaultdict(float)
        for i, ((param_name, _), grad) in enumerate(zip(params, grads)):
            if grad is not None:
                squares[parameter_group(param_name)] += float(grad.pow(2).sum())
                summed[i] = grad if summed[i] is None else summed[i] + grad
        norms.update({(loss_name, group): value ** 0.5 for group, value in squares.items()})
        norms[(loss_name, "ALL")] = sum(squares.values()) ** 0.5
    norms[("total", "ALL")] = sum(float(g.pow(2).sum()) for g in summed if g is not None) ** 0.5
    return {k: float(v.detach()) for k, v in losses.items()}, norms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("opts", nargs="*")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    cfg = load_config(args.config, args.opts)
    built, dataset, solver = prepare_training(cfg)
    model = built.model
    if args.weights is not None:
        model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True)["model"])
    model.train()
    torch.manual_seed(solver.seed)
    values: dict[str, float] = defaultdict(float)
    norms: dict[tuple[str, str], float] = defaultdict(float)
    per_batch = solver.ims_per_batch
    for b in range(args.batches):
        batch = [dataset[b * per_batch + j] for j in range(per_batch)]
        batch_values, batch_norms = gradient_norms(model, built.criterion, batch, cfg.model.loss_weights)
        for key, value in batch_values.items():
            values[key] += value / args.batches
        for key, value in batch_norms.items():
            norms[key] += value / args.batches
    groups = sorted({g for _, g in norms if g != "ALL"})
    print(f"mean over {args.batches} batches of {per_batch} images; clip_grad_norm: {solver.clip_grad_norm}")
    print(f"{'loss':16}{'value':>9}{'ALL':>9}" + "".join(f"{g:>15}" for g in groups))
    for name in [*sorted(values), "total"]:
        print(f"{name:16}{values.get(name, float('nan')):9.3f}{norms[(name, 'ALL')]:9.3f}"
              + "".join(f"{norms.get((name, g), 0.0):15.3f}" for g in groups))


if __name__ == "__main__":
    main()
