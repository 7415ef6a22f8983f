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

ARCHS = ("fasterrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn", "keypointrcnn_resnet50_fpn",
         "fasterrcnn_resnet50_fpn_v2", "maskrcnn_resnet50_fpn_v2")

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


# the v2 models (Li et al., "Benchmarking detection transfer learning with vision transformers"):
# FPN convs with BatchNorm (conv ".0", norm ".1" kept), a 2-conv RPN head, a box head of 4
# conv+BN blocks ("box_head.{0..3}") then flatten ("4") and one fc ("5")
V2_RULES = [
    (r"^backbone\.body\.", "backbone.body."),
    (r"^backbone\.fpn\.inner_blocks\.(\d+)\.", r"backbone.fpn.lateral.\1."),
    (r"^backbone\.fpn\.layer_blocks\.(\d+)\.", r"backbone.fpn.output.\1."),
    (r"^rpn\.head\.conv\.(\d+)\.0\.(weight|bias)$", r"rpn.head.conv.\1.\2"),
    (r"^rpn\.head\.cls_logits\.", "rpn.head.objectness_logits."),
    (r"^rpn\.head\.bbox_pred\.", "rpn.head.anchor_deltas."),
    (r"^roi_heads\.box_head\.([0-3])\.", r"roi_stage.trunks.box_fc.convs.\1."),
    (r"^roi_heads\.box_head\.5\.", "roi_stage.trunks.box_fc.fcs.0."),
]


def default_config_path(arch: str) -> Path:
    return Path(__file__).resolve().parents[3] / "configs" / "torchvision" / f"{arch}.yaml"


def convert_torchvision(state: dict[str, torch.Tensor], cfg: Config, arch: str,
                        source_name: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Rename a torchvision state dict into the plugrcnn model of `cfg`; check it fits exactly."""
    built = build_model(cfg)
    out: dict[str, torch.Tensor] = {}
    rules = V2_RULES if arch.endswith("_v2") else CORE_RULES
    for key, value in state.items():
        for pattern, repl in rules:
            if re.match(pattern, key):
                out[re.sub(pattern, repl, key)] = value
                break
    head_names = tuple(cfg.model.heads)
    for part in built.registry.pm.hook.plugrcnn_convert_weights(
            source="torchvision", arch=arch, state_dict=state, head_names=head_names):
        out.update(part or {})
    own = built.model.state_dict()
    # BatchNorm bookkeeping: kept where our model has BatchNorm too (v2), else dropped (frozen BN)
    out = {k: v for k, v in out.items() if not k.endswith("num_batches_tracked") or k in own}
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
