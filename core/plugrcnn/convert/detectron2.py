"""detectron2 checkpoints (model-zoo .pkl or trained .pth) -> plugrcnn.

The core renames what it owns (ResNet, FPN, RPN, the box trunk); each head plugin converts its
own keys through `plugrcnn_convert_weights(source="detectron2")` and reports the source keys it
used (`ConvertedWeights.sources`). Every key of the source must be used or be listed in
`DROPPED` with the reason, and every converted tensor must have the shape of the config's model.

Two differences from torchvision are folded into the weights, so the model keeps plugrcnn's RGB
[0, 1] input convention (and export and video need no special case):
- detectron2 feeds BGR pixels in 0..255, normalised by its mean/std. The configs in
  configs/detectron2/ hold that mean/std reversed to RGB and divided by 255, and the stem
  convolution's input channels are reversed here: (x/255 - m/255) / (s/255) = (x - m) / s.
- MSRA ResNets stride in the 1x1 conv: `model.backbone.stride_in_1x1: true` in those configs.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from plugrcnn.config.schema import Config
from plugrcnn.convert import ConvertedWeights
from plugrcnn.convert.safe_pickle import load_restricted_pickle
from plugrcnn.errors import PlugrcnnError
from plugrcnn.modeling.build import build_model
from plugrcnn.modeling.weights import save_weights_atomic

# the architectures of configs/detectron2/ (detectron2's model-zoo config names)
ARCHS = ("mask_rcnn_R_50_FPN_1x", "mask_rcnn_R_50_FPN_3x", "mask_rcnn_R_101_FPN_3x",
         "mask_rcnn_X_101_32x8d_FPN_3x", "keypoint_rcnn_R_50_FPN_1x", "keypoint_rcnn_R_50_FPN_3x",
         "faster_rcnn_R_50_FPN_3x")

_NORM = r"(weight|bias|running_mean|running_var)"
# (detectron2 pattern, plugrcnn replacement) for the parts the core owns
CORE_RULES = [
    (rf"^backbone\.bottom_up\.stem\.conv1\.norm\.{_NORM}$", r"backbone.body.bn1.\1"),
    (r"^backbone\.bottom_up\.stem\.conv1\.weight$", "backbone.body.conv1.weight"),
    (rf"^backbone\.bottom_up\.res(\d)\.(\d+)\.conv(\d)\.norm\.{_NORM}$",
     lambda m: f"backbone.body.layer{int(m[1]) - 1}.{m[2]}.bn{m[3]}.{m[4]}"),
    (r"^backbone\.bottom_up\.res(\d)\.(\d+)\.conv(\d)\.weight$",
     lambda m: f"backbone.body.layer{int(m[1]) - 1}.{m[2]}.conv{m[3]}.weight"),
    (rf"^backbone\.bottom_up\.res(\d)\.(\d+)\.shortcut\.norm\.{_NORM}$",
     lambda m: f"backbone.body.layer{int(m[1]) - 1}.{m[2]}.downsample.1.{m[3]}"),
    (r"^backbone\.bottom_up\.res(\d)\.(\d+)\.shortcut\.weight$",
     lambda m: f"backbone.body.layer{int(m[1]) - 1}.{m[2]}.downsample.0.weight"),
    (r"^backbone\.fpn_lateral(\d)\.(weight|bias)$", lambda m: f"backbone.fpn.lateral.{int(m[1]) - 2}.{m[2]}"),
    (r"^backbone\.fpn_output(\d)\.(weight|bias)$", lambda m: f"backbone.fpn.output.{int(m[1]) - 2}.{m[2]}"),
    (r"^proposal_generator\.rpn_head\.conv\.(weight|bias)$", r"rpn.head.conv.0.\1"),
    (r"^proposal_generator\.rpn_head\.objectness_logits\.(weight|bias)$", r"rpn.head.objectness_logits.\1"),
    (r"^proposal_generator\.rpn_head\.anchor_deltas\.(weight|bias)$", r"rpn.head.anchor_deltas.\1"),
    (r"^roi_heads\.box_head\.fc(\d)\.(weight|bias)$", lambda m: f"roi_stage.trunks.box_fc.fcs.{int(m[1]) - 1}.{m[2]}"),
]

# source keys used by nobody, on purpose: (pattern, why)
DROPPED = [
    (r"^pixel_(mean|std)$", "the input normalisation is the config's (checked against these)"),
    (r"^proposal_generator\.anchor_generator\.cell_anchors\.\d+$", "anchors are built from the config"),
    (r"(^|\.)num_batches_tracked$", "batch-norm bookkeeping; frozen batch norm has none"),
]

# detectron2's default input normalisation: BGR, 0..255
_D2_PIXEL_MEAN_BGR = (103.530, 116.280, 123.675)


def read_detectron2_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The model tensors of a detectron2 checkpoint: a model-zoo .pkl ({"model": {name: numpy
    array}, "__author__": ...}) read with a restricted unpickler, or a .pth written by its
    trainer ({"model": state dict, ...}) read with torch.load(weights_only=True)."""
    if not path.is_file():
        raise PlugrcnnError(f"{path}: detectron2 checkpoint not found")
    if path.suffix == ".pkl":
        obj = load_restricted_pickle(path)
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise PlugrcnnError(f"{path}: not a readable torch checkpoint ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj:
        raise PlugrcnnError(f"{path}: no 'model' dict of arrays (not a detectron2 checkpoint)")
    return {str(k): _as_tensor(path, str(k), v) for k, v in obj.items()}


def _as_tensor(path: Path, key: str, value: object) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
        return torch.from_numpy(np.ascontiguousarray(value))
    raise PlugrcnnError(f"{path}: key {key} is a {type(value).__name__}"
                        f"{' of ' + str(value.dtype) if isinstance(value, np.ndarray) else ''}, "
                        f"not a numeric array")


def infer_arch(state: dict[str, torch.Tensor]) -> str:
    """The configs/detectron2/ architecture a checkpoint's keys and shapes describe (3x for the
    R50 ones: 1x and 3x differ only in their training schedule)."""
    if any(k.startswith("roi_heads.keypoint_head.") for k in state):
        return "keypoint_rcnn_R_50_FPN_3x"
    if not any(k.startswith("roi_heads.mask_head.") for k in state):
        return "faster_rcnn_R_50_FPN_3x"
    conv2 = state.get("backbone.bottom_up.res2.0.conv2.weight")
    if conv2 is not None and conv2.shape[1] * 32 == conv2.shape[0]:  # grouped 3x3: ResNeXt 32 groups
        return "mask_rcnn_X_101_32x8d_FPN_3x"
    if "backbone.bottom_up.res4.22.conv1.weight" in state:
        return "mask_rcnn_R_101_FPN_3x"
    return "mask_rcnn_R_50_FPN_3x"


def default_config_path(arch: str) -> Path:
    return Path(__file__).resolve().parents[3] / "configs" / "detectron2" / f"{arch}.yaml"


def _convert_core(state: dict[str, torch.Tensor]) -> ConvertedWeights:
    out = ConvertedWeights()
    for key, value in state.items():
        for pattern, repl in CORE_RULES:
            match = re.match(pattern, key)
            if match:
                new = repl(match) if callable(repl) else match.expand(repl)
                out[new] = value
                out.sources.add(key)
                break
    # BGR input -> RGB input: reverse the stem's input channels (N, 3, 7, 7)
    if "backbone.body.conv1.weight" in out:
        out["backbone.body.conv1.weight"] = out["backbone.body.conv1.weight"].flip(1).contiguous()
    return out


def _check_normalisation(state: dict[str, torch.Tensor], cfg: Config, source_name: str) -> None:
    """A checkpoint that carries detectron2's pixel mean/std must agree with the config's."""
    for key, ours in (("pixel_mean", cfg.model.input.pixel_mean), ("pixel_std", cfg.model.input.pixel_std)):
        if key not in state:
            continue
        theirs = state[key].flatten().double()
        expected = torch.tensor(ours, dtype=torch.float64).flip(0) * 255  # RGB [0,1] -> BGR 0..255
        if theirs.shape != (3,) or not torch.allclose(theirs, expected, atol=1e-3):
            raise PlugrcnnError(f"{source_name}: {key} {theirs.tolist()} (BGR, 0..255) is not the "
                                f"config's model.input.{key} {list(ours)} (RGB, 0..1) x 255 — "
                                f"use the matching configs/detectron2/ config")


def convert_detectron2(state: dict[str, torch.Tensor], cfg: Config, arch: str,
                       source_name: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Rename a detectron2 state dict into the plugrcnn model of `cfg`; check that every source
    key is used or dropped on purpose, and that the result fits the model exactly."""
    built = build_model(cfg)
    _check_normalisation(state, cfg, source_name)
    out = _convert_core(state)
    used = set(out.sources)
    for part in built.registry.pm.hook.plugrcnn_convert_weights(
            source="detectron2", arch=arch, state_dict=state, head_names=tuple(cfg.model.heads)):
        if not part:
            continue
        if not isinstance(part, ConvertedWeights):
            raise PlugrcnnError(f"{source_name}: a head plugin converted {sorted(part)[:3]} "
                                f"without naming the source keys it used (return ConvertedWeights)")
        clash = set(part) & set(out)
        if clash:
            raise PlugrcnnError(f"{source_name}: two converters write {sorted(clash)[:3]}")
        out.update(part)
        used |= part.sources
    dropped = {k for k in state if any(re.search(p, k) for p, _ in DROPPED)}
    unused = sorted(set(state) - used - dropped)
    if unused:
        raise PlugrcnnError(f"{source_name}: {len(unused)} detectron2 keys that nothing converts "
                            f"(e.g. {', '.join(unused[:3])}) — does the config ({arch}) enable "
                            f"the heads this checkpoint has?")
    _check_fits(dict(out), built.model.state_dict(), source_name, arch)
    return dict(out)


def _check_fits(out: dict[str, torch.Tensor], own: dict[str, torch.Tensor], source_name: str,
                arch: str) -> None:
    missing = [k for k in own if k not in out]
    extra = [k for k in out if k not in own]
    shapes = [f"{k} {tuple(out[k].shape)} vs {tuple(own[k].shape)}"
              for k in own if k in out and out[k].shape != own[k].shape]
    if missing or extra or shapes:
        raise PlugrcnnError(f"{source_name}: does not convert to the config's model ({arch}): "
                            f"missing {missing[:3]}, unexpected {extra[:3]}, shape mismatch "
                            f"{shapes[:3]}")


def convert_file(input_path: Path, output_path: Path, arch: str | None = None,
                 cfg: Config | None = None) -> tuple[str, int]:
    """Convert `input_path` into plugrcnn weights at `output_path`; returns (arch, tensor count)."""
    from plugrcnn.config import load_config

    state = read_detectron2_checkpoint(input_path)
    arch = arch or infer_arch(state)
    cfg = cfg or load_config(default_config_path(arch))
    converted = convert_detectron2(state, cfg, arch, str(input_path))
    converted = {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in converted.items()}
    save_weights_atomic({"model": converted, "source": f"detectron2:{arch}"}, output_path)
    return arch, len(converted)
