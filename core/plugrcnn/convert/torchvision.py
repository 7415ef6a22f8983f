"""torchvision detection checkpoints -> plugrcnn.

The core renames what it owns (backbone, FPN, RPN, the shared box trunk); each head plugin renames
its own parameters through the `plugrcnn_convert_weights` hook, so the core names no head.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from plugrcnn.config.schema import Config
from plugrcnn.errors import PlugrcnnError
from plugrcnn.modeling.build import build_model
from plugrcnn.modeling.weights import read_state_dict, save_weights_atomic

ARCHS = ("fasterrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn", "keypointrcnn_resnet50_fpn")

# (torchvision pattern, plugrcnn replacement); older torchvision releases lack the ".0" wrappers
CORE_RULES = [
    (r"^backbone\.body\.", "backbone.body."),
    (r"^backbone\.fpn\.inner_blocks\.(\d+)\.(?:0\.)?", r"backbone.fpn.lateral.\1."),
    (r"^backbone\.fpn\.layer_blocks\.(\d+)\.(?:0\.)?", r"backbone.fpn.output.\1."),
    (r"^rpn\.head\.conv\.(?:0\.0\.)?(weight|bias)$", r"rpn.head.conv.0.\1"),
    (r"^rpn\.head\.cls_logits\.", "rpn.head.objectness_logits."),
    (r"^rpn\.head\.bbox_pred\.", "rpn.head.anchor_deltas."),
    (r"^roi_heads\.box_head\.fc6\.", "roi_stage.trunks.box_fc.fcs.0."),
    (r"^roi_heads\.box_head\.fc7\.", "roi_stage.trunks.box_fc.fcs.1."),
]


def default_config_path(arch: str) -> Path:
    return Path(__file__).resolve().parents[3] / "configs" / "torchvision" / f"{arch}.yaml"


def convert_torchvision(state: dict[str, torch.Tensor], cfg: Config, arch: str,
                        source_name: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Rename a torchvision state dict into the plugrcnn model of `cfg`; check it fits exactly."""
    built = build_model(cfg)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):  # BatchNorm bookkeeping; frozen BN has none
            continue
        for pattern, repl in CORE_RULES:
            if re.match(pattern, key):
                out[re.sub(pattern, repl, key)] = value
                break
    head_names = tuple(cfg.model.heads)
    for part in built.registry.pm.hook.plugrcnn_convert_weights(
            source="torchvision", arch=arch, state_dict=state, head_names=head_names):
        out.update(part or {})
    own = built.model.state_dict()
    missing = [k for k in own if k not in out]
    extra = [k for k in out if k not in own]
    shapes = [k for k in own if k in out and out[k].shape != own[k].shape]
    if missing or extra or shapes:
        raise PlugrcnnError(
            f"{source_name}: does not convert to the config's model ({arch}): "
            f"missing {missing[:3]}, unexpected {extra[:3]}, shape mismatch {shapes[:3]} — "
            f"is --arch right?")
    return out


def convert_file(arch: str, input_path: Path, output_path: Path, cfg: Config) -> int:
    state = read_state_dict(input_path)
    converted = convert_torchvision(state, cfg, arch, str(input_path))
    save_weights_atomic({"model": converted, "source": f"torchvision:{arch}"}, output_path)
    return len(converted)
