"""A tiny model and data set for the Trainer tests, and a script that trains it.

    python tests/engine/toy_training.py --output-dir DIR --max-iter 12 --period 3 [--sleep 0.2] [--resume]

Prints one JSON line at the end: {"start_iteration": ..., "forward_calls": ...}.
The data set draws augmentation noise from the global numpy and torch RNGs and the model uses
dropout, so an exact resume needs the data position and the RNG states to be restored.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from plugrcnn.engine.solver import SolverConfig
from plugrcnn.engine.trainer import Trainer

IN_FEATURES = 4


class ToyDataset(Dataset):
    """Item i: a fixed input x_i plus random jitter (an "augmentation"), target y_i = w . x_i."""

    def __init__(self, size: int = 10) -> None:
        generator = torch.Generator().manual_seed(1234)
        self.inputs = torch.randn(size, IN_FEATURES, generator=generator)
        self.targets = self.inputs @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.25

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        jitter = 0.05 * torch.rand(IN_FEATURES) + 0.01 * float(np.random.randn())
        return {"index": index, "x": self.inputs[index] + jitter, "y": self.targets[index]}


def collate_list(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return items


class ToyModel(nn.Module):
    """Returns two named losses; `nan_at_call` makes the n-th forward (1-based) return a NaN loss."""

    def __init__(self, seed: int = 0, dropout: float = 0.2, sleep_s: float = 0.0,
                 nan_at_call: int | None = None) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.hidden = nn.Linear(IN_FEATURES, 16)
        self.norm = nn.LayerNorm(16)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(16, 1)
        self.sleep_s = sleep_s
        self.nan_at_call = nan_at_call
        self.forward_calls = 0

    def forward(self, batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        self.forward_calls += 1
        if self.sleep_s:
            time.sleep(self.sleep_s)
        device = self.out.weight.device
        x = torch.stack([item["x"] for item in batch]).to(device)  # (B, IN_FEATURES)
        y = torch.stack([item["y"] for item in batch]).to(device)  # (B,)
        prediction = self.out(self.dropout(torch.relu(self.norm(self.hidden(x))))).squeeze(1)
        loss_mse = ((prediction - y) ** 2).mean()
        if self.forward_calls == self.nan_at_call:
            loss_mse = loss_mse * math.nan
        return {"loss_mse": loss_mse, "loss_l1": 0.1 * (prediction - y).abs().mean()}


def toy_solver(max_iter: int = 12, period: int = 3, **overrides: Any) -> SolverConfig:
    values: dict[str, Any] = dict(base_lr=0.05, warmup_iters=3, steps=(8,), max_iter=max_iter,
                                  ims_per_batch=4, checkpoint_period=period, log_period=2, seed=7,
                                  num_workers=0)
    values.update(overrides)
    return SolverConfig(**values)


def make_trainer(output_dir: Path, solver: SolverConfig, model: ToyModel | None = None,
                 dataset_size: int = 10) -> Trainer:
    return Trainer(model=model or ToyModel(), dataset=ToyDataset(dataset_size),
                   collate_fn=collate_list, solver=solver, output_dir=output_dir, device="cpu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--max-iter", type=int, default=12)
    parser.add_argument("--period", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    model = ToyModel(sleep_s=args.sleep)
    trainer = make_trainer(args.output_dir, toy_solver(args.max_iter, args.period), model)
    trainer.train(resume=args.resume)
    print(json.dumps({"start_iteration": trainer.start_iteration,
                      "forward_calls": model.forward_calls}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
