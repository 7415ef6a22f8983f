"""A tiny detector with one head under test, on generated data: what the conformance checks use.

ResNet-18 FPN (32 channels) on 96 x 128 images of the synthetic data set (shapes with masks,
stick figures with 11 keypoints; `SYNTHETIC_KEYPOINTS` holds their metadata for a keypoint-style
head). Built once per (head, configs) and shared by that head's checks.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
import yaml

from plugrcnn.config import load_config
from plugrcnn.config.schema import Config
from plugrcnn.data.synthetic import generate_synthetic_coco
from plugrcnn.data.synthetic_geometry import FIGURE_FLIP_PAIRS, FIGURE_KEYPOINT_NAMES
from plugrcnn.modeling.build import BuiltModel, build_model
from plugrcnn.heads.spec import HeadContext
from plugrcnn.plugins.manager import installed_head_entry_points, load_heads

HEIGHT, WIDTH = 96, 128
# the stick figures' keypoints (label 4: the figure category after the three shapes)
SYNTHETIC_KEYPOINTS: dict[str, Any] = {
    "keypoints": list(FIGURE_KEYPOINT_NAMES),
    "flip_pairs": [list(pair) for pair in FIGURE_FLIP_PAIRS],
    "oks_sigmas": [0.08] * len(FIGURE_KEYPOINT_NAMES),
    "categories": [4],
}


@dataclass(frozen=True)
class HeadUnderTest:
    """The head to check, its config, and the configs of the other heads enabled with it
    (its requirements default to ``{}``; ``class`` is always enabled)."""
    name: str
    config: tuple[tuple[str, Any], ...] = ()
    others: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()

    @classmethod
    def of(cls, name: str, config: dict[str, Any] | None = None,
           heads: dict[str, dict[str, Any]] | None = None) -> HeadUnderTest:
        def freeze(options: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
            return tuple(sorted((k, _frozen(v)) for k, v in (options or {}).items()))
        return cls(name, freeze(config), tuple(sorted((k, freeze(v)) for k, v in (heads or {}).items())))

    def heads(self) -> dict[str, dict[str, Any]]:
        """Config entries of every enabled head: a head that scores detections (unless one is
        among them), the requirements, the others given, the head itself."""
        given = {k: _thawed(dict(v)) for k, v in self.others}
        registry = load_heads([self.name, *given])
        enabled: dict[str, dict[str, Any]] = {}
        pending = [*registry.spec(self.name).requires, *given]
        if not any(_scores_detections(n) for n in {self.name, *pending}):
            pending += [n for n in sorted(installed_head_entry_points()) if not load_heads([n]).spec(n).requires
                        and _scores_detections(n)][:1]
        while pending:
            req = pending.pop()
            if req not in enabled:
                enabled[req] = given.get(req, {})
                pending.extend(load_heads([req]).spec(req).requires)
        for key, value in given.items():
            enabled.setdefault(key, value)
        enabled[self.name] = _thawed(dict(self.config))
        return enabled


def _frozen(value: Any) -> Any:
    """Lists and dicts as tuples, so a HeadUnderTest can key the cache."""
    if isinstance(value, dict):
        return ("__dict__", tuple(sorted((k, _frozen(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _thawed(value: Any) -> Any:
    """The inverse of `_frozen`, with lists (what YAML writes) for tuples."""
    if isinstance(value, dict):
        return {k: _thawed(v) for k, v in value.items()}
    if isinstance(value, tuple):
        if len(value) == 2 and value[0] == "__dict__":
            return {k: _thawed(v) for k, v in value[1]}
        return [_thawed(v) for v in value]
    return value


def _scores_detections(name: str) -> bool:
    """Whether head `name` (built with its default config) is a roi-stage head with candidates()."""
    from plugrcnn.heads.base import Head

    spec = load_heads([name]).spec(name)
    try:
        head = spec.build(spec.config_class(), HeadContext(num_classes=2, in_channels=8,
                                                           trunk_channels={"box_fc": 8}))
    except Exception:  # a head that needs settings to build is not the default scorer
        return False
    return head.stage == "roi" and type(head).candidates is not Head.candidates


@dataclass
class Workbench:
    """Data, config and a built model for one `HeadUnderTest` (a temporary folder of its own)."""
    subject: HeadUnderTest
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="plugrcnn-conformance-")))

    @cached_property
    def data(self) -> Path:
        generate_synthetic_coco(self.root / "data", seed=5, num_train=4, num_val=2, image_size=HEIGHT)
        return self.root / "data"

    def config(self, **detection: Any) -> Config:
        data = self.data
        tree = {
            "model": {
                "device": "cpu",
                "backbone": {"name": "resnet18", "norm": "frozen_bn", "freeze_at": 0},
                "fpn": {"out_channels": 32},
                "input": {"min_size_train": [HEIGHT], "max_size_train": WIDTH, "min_size_test": HEIGHT,
                          "max_size_test": WIDTH},
                "anchors": {"sizes": [[16], [32], [64], [128], [256]]},
                "rpn": {"pre_nms_topk_train": 200, "post_nms_topk_train": 100, "pre_nms_topk_test": 100,
                        "post_nms_topk_test": 50},
                "sampler": {"batch_size_per_image": 32},
                "box_trunk": {"fc_dim": 64},
                "detection": {"score_thresh": 0.0, "detections_per_image": 10, **detection},
                "heads": self.subject.heads(),
            },
            "data": {"train": {"instances": f"{data}/annotations/instances_train.json", "images": f"{data}/train"},
                     "val": {"instances": f"{data}/annotations/instances_val.json", "images": f"{data}/val"}},
            "solver": {"base_lr": 0.01, "ims_per_batch": 2, "max_iter": 1, "warmup_iters": 1, "steps": [],
                       "checkpoint_period": 100, "log_period": 1, "num_workers": 0},
            "output_dir": str(self.root / "out"),
        }
        path = self.root / "config.yaml"
        path.write_text(yaml.safe_dump(tree, sort_keys=False))
        return load_config(path)

    def build(self, seed: int = 0, **detection: Any) -> tuple[Config, BuiltModel]:
        """The model with its classes fitted to the data and weights that give varied outputs."""
        from plugrcnn.data.build import config_for_data, dataset_info, load_split

        loaded = self.config(**detection)
        info = dataset_info(loaded, load_split(loaded, "train", training=True))
        cfg = config_for_data(loaded, info)
        torch.manual_seed(seed)
        built = build_model(cfg, data=info)
        spread_weights(built.model, seed)
        return cfg, built


def randomize_norm_statistics(model: torch.nn.Module, gen: torch.Generator) -> None:
    """Batch-norm statistics that are not the identity (any model: torchvision's or ours)."""
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(torch.randn(buf.shape, generator=gen) * 0.1)
            elif name.endswith("running_var"):
                buf.copy_(torch.rand(buf.shape, generator=gen) * 0.5 + 0.75)


def spread_weights(model: torch.nn.Module, seed: int) -> None:
    """A fresh detector scores every RoI nearly the same; wider random weights make scores,
    classes and boxes differ, so comparisons (state dict round trip, export) mean something."""
    gen = torch.Generator().manual_seed(seed)
    randomize_norm_statistics(model, gen)
    with torch.no_grad():
        for part in (model.rpn, model.roi_stage):
            for module in part.modules():
                if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
                    fan_in = module.weight[0].numel()
                    module.weight.normal_(0, 1.0 / fan_in ** 0.5, generator=gen)
                    if module.bias is not None:
                        module.bias.normal_(0, 0.1, generator=gen)
