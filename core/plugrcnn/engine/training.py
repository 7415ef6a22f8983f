"""Config -> trained model: data, model, loss reduction and the Trainer, wired together.

One way: the loaded config (typed and checked, heads and solver included) -> the training split
and what it says (`DatasetInfo`) -> each head's target codec from its spec -> the model. Nothing
is written into the loaded config; the model is built from `config_for_data(cfg, info)`, a new
config that also becomes the run's config.yaml."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from plugrcnn.config.heads import head_configs
from plugrcnn.config.loader import to_dict
from plugrcnn.config.schema import Config
from plugrcnn.data.build import config_for_data, dataset_info, load_split
from plugrcnn.data.mapper import DatasetMapper, trivial_batch_collator
from plugrcnn.data.transforms import TrainAugmentation
from plugrcnn.engine.losses import make_loss_reducer
from plugrcnn.engine.solver import SolverConfig
from plugrcnn.heads.codecs import build_target_codecs
from plugrcnn.engine.trainer import Trainer
from plugrcnn.engine.training_hooks import hooks_from_config
from plugrcnn.modeling.build import BuiltModel, build_model, resolve_device
from plugrcnn.modeling.weights import load_model_weights
from plugrcnn.plugins.manager import load_heads
from plugrcnn.outputs import write_text_atomic


def save_config(cfg: Config, path: Path) -> None:
    data = to_dict(cfg)
    data.pop("provenance", None)
    data.pop("source", None)
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))


def prepare_training(cfg: Config) -> tuple[BuiltModel, Any, SolverConfig]:
    """Load the training split, build each head's target codec from its spec and the data, then
    the model for the data's classes (`built.config`); `cfg` is left as loaded."""
    registry = load_heads(list(cfg.model.heads))
    dataset = load_split(cfg, "train", training=True)
    info = dataset_info(cfg, dataset)
    fitted = config_for_data(cfg, info)
    # a config that does not fit the data (e.g. a keypoint count) fails here, in one line
    codecs = build_target_codecs(head_configs(fitted, registry), registry, info)
    inp = cfg.model.input
    dataset.transform = DatasetMapper(codecs, TrainAugmentation(
        min_sizes=tuple(inp.min_size_train), max_size=inp.max_size_train, flip_prob=inp.flip_prob))
    torch.manual_seed(cfg.solver.seed)  # the initial weights, like everything after, follow the seed
    built = build_model(fitted, registry, data=info)
    if cfg.model.weights:
        load_model_weights(built.model, cfg.model.weights)
    return built, dataset, cfg.solver


def train_from_config(cfg: Config, resume: bool = False) -> dict[str, Any]:
    built, dataset, solver = prepare_training(cfg)
    output_dir = Path(cfg.output_dir)
    device = None if cfg.model.device == "auto" else resolve_device(cfg.model.device)
    trainer = Trainer(model=built.model, dataset=dataset, collate_fn=trivial_batch_collator,
                      solver=solver, output_dir=output_dir, criterion=built.criterion,
                      reduce_losses=make_loss_reducer(built.registry.pm.hook, cfg.model.loss_weights),
                      device=device, hooks=hooks_from_config(built.config, solver, built, save_config))
    return trainer.train(resume=resume)  # joins the process group (torchrun) first


__all__ = ["prepare_training", "save_config", "train_from_config"]
