"""Config -> trained model: data, model, loss reduction and the Trainer, wired together."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from plugrcnn.config.loader import structure, to_dict
from plugrcnn.config.schema import Config
from plugrcnn.data.build import load_split, sync_model_with_dataset
from plugrcnn.data.mapper import DatasetMapper, trivial_batch_collator
from plugrcnn.data.transforms import TrainAugmentation
from plugrcnn.engine.losses import make_loss_reducer
from plugrcnn.engine.solver import SolverConfig
from plugrcnn.engine.trainer import Trainer
from plugrcnn.engine.training_hooks import hooks_from_config
from plugrcnn.modeling.build import BuiltModel, build_model, resolve_device
from plugrcnn.modeling.weights import load_model_weights
from plugrcnn.outputs import write_text_atomic


def save_config(cfg: Config, path: Path) -> None:
    data = to_dict(cfg)
    data.pop("provenance", None)
    data.pop("source", None)
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))


def prepare_training(cfg: Config) -> tuple[BuiltModel, Any, SolverConfig]:
    """Load the training split, fit the model's classes to it, build model + mapped data set."""
    solver = structure(SolverConfig, cfg.solver, cfg.provenance, "solver", cfg.source or "config")
    dataset = load_split(cfg, "train", training=True)
    sync_model_with_dataset(cfg, dataset)
    torch.manual_seed(solver.seed)  # the initial weights, like everything after, follow the seed
    built = build_model(cfg)
    if cfg.model.weights:
        load_model_weights(built.model, cfg.model.weights)
    codecs = {name: codec for name, head in built.model.heads.items()
              if (codec := head.target_codec()) is not None}
    inp = cfg.model.input
    dataset.transform = DatasetMapper(codecs, TrainAugmentation(
        min_sizes=tuple(inp.min_size_train), max_size=inp.max_size_train, flip_prob=inp.flip_prob))
    return built, dataset, solver


def train_from_config(cfg: Config, resume: bool = False) -> dict[str, Any]:
    built, dataset, solver = prepare_training(cfg)
    output_dir = Path(cfg.output_dir)
    device = None if cfg.model.device == "auto" else resolve_device(cfg.model.device)
    trainer = Trainer(model=built.model, dataset=dataset, collate_fn=trivial_batch_collator,
                      solver=solver, output_dir=output_dir, criterion=built.criterion,
                      reduce_losses=make_loss_reducer(built.registry.pm.hook, cfg.model.loss_weights),
                      device=device, hooks=hooks_from_config(cfg, solver, built, save_config))
    return trainer.train(resume=resume)  # joins the process group (torchrun) first


__all__ = ["prepare_training", "save_config", "train_from_config"]
