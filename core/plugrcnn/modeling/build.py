"""Config -> model: load the head plugins the config names, check their configs, order them."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from plugrcnn.config.loader import structure
from plugrcnn.config.schema import Config
from plugrcnn.errors import PlugrcnnError
from plugrcnn.heads.base import Head, HeadContext
from plugrcnn.modeling.detector import TwoStageDetector
from plugrcnn.modeling.roi_trunk import TRUNKS, FCTrunk
from plugrcnn.plugins.manager import HeadRegistry, load_heads


@dataclass
class BuiltModel:
    model: TwoStageDetector
    registry: HeadRegistry


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


def build_model(cfg: Config, registry: HeadRegistry | None = None) -> BuiltModel:
    """Build the detector of `cfg` (random weights unless the backbone names a local file)."""
    mcfg = cfg.model
    names = list(mcfg.heads)
    if not names:
        raise PlugrcnnError(f"{cfg.source or 'config'}: model.heads is empty; enable at least "
                            f"'class' (e.g. model.heads.class: {{}})")
    registry = registry or load_heads(names)
    trunk_cfg = {"box_fc": mcfg.box_trunk}
    trunks = {}
    ctx = HeadContext(num_classes=mcfg.num_classes, in_channels=mcfg.fpn.out_channels,
                      class_names=tuple(mcfg.class_names),
                      pooler_sampling_ratio=mcfg.pooler.sampling_ratio,
                      pooler_aligned=mcfg.pooler.aligned,
                      trunk_channels={"box_fc": FCTrunk.output_dim(mcfg.fpn.out_channels, mcfg.box_trunk)})
    heads: dict[str, Head] = {}
    for name in order_heads(registry, names):
        spec = registry.spec(name)
        head_cfg = structure(spec.config_class, mcfg.heads[name] or {}, cfg.provenance,
                             f"model.heads.{name}", cfg.source or "config")
        head = _build_head(spec, head_cfg, ctx, trunks, trunk_cfg, mcfg.fpn.out_channels)
        heads[name] = head
    if not any(h.stage == "roi" for h in heads.values()):
        raise PlugrcnnError(f"{cfg.source or 'config'}: no enabled head scores detections; "
                            f"enable 'class' (model.heads.class: {{}})")
    model = TwoStageDetector(mcfg, heads, trunks, extra_losses=registry.pm.hook.plugrcnn_extra_losses)
    return BuiltModel(model, registry)


def _build_head(spec, head_cfg, ctx: HeadContext, trunks: dict, trunk_cfg: dict, in_channels: int) -> Head:
    # a head may read a shared trunk of the core; it is built once, for the first head that reads it
    head = spec.build(head_cfg, ctx)
    if not isinstance(head, Head):
        raise PlugrcnnError(f"head '{spec.name}': build() returned {type(head).__name__}, "
                            f"not a plugrcnn.heads.Head")
    trunk = head.roi_input.trunk
    if trunk:
        if trunk not in TRUNKS:
            raise PlugrcnnError(f"head '{spec.name}' reads trunk '{trunk}', which the core does "
                                f"not have (known: {sorted(TRUNKS)})")
        if trunk not in trunks:
            trunks[trunk] = TRUNKS[trunk](in_channels, trunk_cfg[trunk])
    return head


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
