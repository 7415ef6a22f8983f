"""Config -> model: load the head plugins the config names, check their configs, order them,
check what they declare against each other, and build model and criterion."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch

from plugrcnn.backbones.registry import probe_pyramid
from plugrcnn.backbones.spec import BackboneContext
from plugrcnn.config.heads import head_configs as read_head_configs
from plugrcnn.config.schema import Config
from plugrcnn.engine.losses import DetectorCriterion
from plugrcnn.errors import PlugrcnnError, build_by_plugin
from plugrcnn.heads.base import COCO_KINDS, Head
from plugrcnn.heads.codecs import build_target_codecs, config_dataset_info
from plugrcnn.heads.spec import DatasetInfo, HeadContext, HeadSpec
from plugrcnn.modeling.detector import TwoStageDetector
from plugrcnn.modeling.roi_trunk import TRUNKS, FCTrunk
from plugrcnn.plugins.manager import HeadRegistry, load_heads

# methods of the first head contract that `predict` replaced: a head still defining one is told so
RETIRED_METHODS = {"postprocess": "predict", "export_outputs": "predict", "import_outputs": "predict",
                   "target_codec": "HeadSpec.target_codec"}


@dataclass
class BuiltModel:
    model: TwoStageDetector
    registry: HeadRegistry
    criterion: DetectorCriterion | None = None
    head_configs: dict[str, Any] | None = None
    config: Config | None = None     # the config the model was built from


def order_heads(registry: HeadRegistry, names: list[str]) -> list[str]:
    """Dependency order (a head after what it requires); roi-stage heads keep config order."""
    for name in names:
        for req in registry.spec(name).requires:
            if req not in names:
                raise PlugrcnnError(f"head '{name}' requires head '{req}': add model.heads.{req} "
                                    f"to the config")
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name in visiting:
            raise PlugrcnnError(f"heads require each other in a cycle: {sorted(visiting)}")
        visiting.add(name)
        for req in registry.spec(name).requires:
            visit(req)
        visiting.discard(name)
        ordered.append(name)

    for name in names:
        visit(name)
    return ordered


def _requirements(registry: HeadRegistry, name: str) -> list[str]:
    """Every head `name` requires, directly or not."""
    found: list[str] = []
    stack = list(registry.spec(name).requires)
    while stack:
        req = stack.pop()
        if req not in found:
            found.append(req)
            stack.extend(registry.spec(req).requires)
    return found


def build_model(cfg: Config, registry: HeadRegistry | None = None,
                data: DatasetInfo | None = None) -> BuiltModel:
    """Build the detector of `cfg` (random weights unless the backbone names a local file).

    `data`: what the training data say (their categories), for the heads' target codecs;
    default: the classes the config names."""
    mcfg = cfg.model
    names = list(mcfg.heads)
    if not names:
        raise PlugrcnnError(f"{cfg.source or 'config'}: model.heads is empty; enable the heads to run "
                            f"(`plugrcnn heads` lists the installed ones)")
    registry = registry or load_heads(names)
    head_configs = read_head_configs(cfg, registry)
    codecs = build_target_codecs(head_configs, registry, data or config_dataset_info(cfg))
    # built after the heads (as always: the same seed gives the same weights); its declared
    # channels, those of every level the RoI heads pool from, are needed first
    channels = probe_pyramid(mcfg.backbone.name, mcfg.backbone.options,
                             BackboneContext(fpn=mcfg.fpn, input=mcfg.input)).channels
    trunks: dict[str, torch.nn.Module] = {}
    heads: dict[str, Head] = {}
    for name in order_heads(registry, names):
        spec = registry.spec(name)
        ctx = HeadContext(num_classes=mcfg.num_classes, in_channels=channels,
                          class_names=tuple(mcfg.class_names),
                          pooler_sampling_ratio=mcfg.pooler.sampling_ratio,
                          pooler_aligned=mcfg.pooler.aligned,
                          trunk_channels={"box_fc": FCTrunk.output_dim(channels, mcfg.box_trunk)},
                          required={r: head_configs[r] for r in _requirements(registry, name)})
        heads[name] = _build_head(spec, head_configs[name], ctx, trunks, {"box_fc": mcfg.box_trunk}, channels)
        heads[name]._spec_codec = codecs.get(name)  # what Head.target_codec() returns
    if not any(h.stage == "roi" for h in heads.values()):
        raise PlugrcnnError(f"{cfg.source or 'config'}: no enabled head scores detections (a roi-stage "
                            f"head with candidates(); `plugrcnn heads` lists the installed heads)")
    consumes = {name: registry.spec(name).consumes for name in heads}
    model = TwoStageDetector(mcfg, heads, trunks, consumes)
    criterion = DetectorCriterion(model.heads, registry.pm.hook)
    return BuiltModel(model, registry, criterion, head_configs, cfg)


def _build_head(spec: HeadSpec, head_cfg: Any, ctx: HeadContext, trunks: dict, trunk_cfg: dict,
                in_channels: int) -> Head:
    _check_spec(spec)
    head = build_by_plugin("head", spec.name, f"model.heads.{spec.name}", spec.build, head_cfg, ctx)
    _check_head(spec, head)
    # a head may read a shared trunk of the core; it is built once, for the first head that reads it
    trunk = head.roi_input.trunk
    if trunk:
        if trunk not in TRUNKS:
            raise PlugrcnnError(f"head '{spec.name}' reads trunk '{trunk}', which the core does "
                                f"not have (known: {sorted(TRUNKS)})")
        if trunk not in trunks:
            trunks[trunk] = TRUNKS[trunk](in_channels, trunk_cfg[trunk])
    return head


def _check_spec(spec: HeadSpec) -> None:
    for ref in spec.consumes:
        producer, _, key = ref.partition(".")
        if not key or producer not in spec.requires:
            raise PlugrcnnError(f"head '{spec.name}': consumes {ref!r} must be '<head>.<key>' of a head "
                                f"it requires (requires: {list(spec.requires)})")


def _check_head(spec: HeadSpec, head: Any) -> None:
    name = spec.name
    if not isinstance(head, Head):
        raise PlugrcnnError(f"head '{name}': build() returned {type(head).__name__}, "
                            f"not a plugrcnn.heads.Head")
    for old, new in RETIRED_METHODS.items():
        if any(old in vars(cls) for cls in type(head).__mro__ if cls is not Head):
            raise PlugrcnnError(f"head '{name}' ({type(head).__module__}) defines {old}(), which the "
                                f"head contract replaced by {new}(); see docs/writing-a-head.md")
    if len(inspect.signature(head.forward).parameters) < 2:
        raise PlugrcnnError(f"head '{name}': forward() must take (x, rows); see docs/writing-a-head.md")
    if head.train_rois == "consumed" and not spec.consumes:
        raise PlugrcnnError(f"head '{name}': train_rois is \"consumed\" but its HeadSpec consumes nothing")
    if head.eval_kind and head.eval_kind not in COCO_KINDS and type(head).evaluate is Head.evaluate:
        raise PlugrcnnError(f"head '{name}': eval_kind {head.eval_kind!r} is not one COCOeval knows "
                            f"({', '.join(COCO_KINDS)}); the head must implement evaluate()")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PlugrcnnError(f"model.device is '{name}' but CUDA is not available here; use cpu or auto")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise PlugrcnnError(f"model.device: '{name}' is not a device (auto, cpu, cuda, cuda:N, mps)") from None
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise PlugrcnnError(f"model.device is '{name}' but this machine has {torch.cuda.device_count()} "
                            f"CUDA device(s) (cuda:0..cuda:{torch.cuda.device_count() - 1})")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise PlugrcnnError(f"model.device is '{name}' but MPS is not available here; use cpu or auto")
    if device.type not in ("cpu", "cuda", "mps"):
        raise PlugrcnnError(f"model.device: '{name}' is not supported (auto, cpu, cuda, cuda:N, mps)")
    return device
