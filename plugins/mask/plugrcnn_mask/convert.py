"""torchvision's Mask R-CNN mask branch -> this plugin's parameter names.

torchvision >= 0.13 stores the head as ``roi_heads.mask_head.{i}.0`` (Conv2dNormActivation
blocks); older releases as ``roi_heads.mask_head.mask_fcn{i + 1}``. Both are accepted.
"""
from __future__ import annotations

import re

import torch

from plugrcnn.heads import ConvertedWeights

_CONV = re.compile(r"^roi_heads\.mask_head\.(?:(\d+)\.0|mask_fcn(\d+))\.(weight|bias)$")
# v2: conv + BatchNorm blocks, ".0" the conv (no bias), ".1" the norm
_CONV_NORM = re.compile(r"^roi_heads\.mask_head\.(\d+)\.([01])\.(weight|bias|running_mean|running_var|num_batches_tracked)$")
_PREDICTOR = {
    "roi_heads.mask_predictor.conv5_mask.": "deconv.",          # the 2x2 stride-2 deconvolution
    "roi_heads.mask_predictor.mask_fcn_logits.": "predictor.",  # 1x1 conv to the mask logits
}


def convert_torchvision_mask(state_dict: dict[str, torch.Tensor],
                             prefix: str = "roi_stage.heads.mask.",
                             with_norm: bool = False) -> dict[str, torch.Tensor]:
    """The mask-branch tensors of a torchvision state dict, renamed for a MaskHead at `prefix`
    (`with_norm`: the v2 head, conv + BatchNorm blocks kept as ``convs.{i}.{0,1}``)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if with_norm:
            if block := _CONV_NORM.match(key):
                out[f"{prefix}convs.{block[1]}.{block[2]}.{block[3]}"] = value
                continue
        conv = _CONV.match(key)
        if conv:
            new_index, old_number, param = conv.groups()
            index = int(new_index) if new_index is not None else int(old_number) - 1
            out[f"{prefix}convs.{index}.{param}"] = value
            continue
        for source, target in _PREDICTOR.items():
            if key.startswith(source) and key[len(source):] in ("weight", "bias"):
                out[f"{prefix}{target}{key[len(source):]}"] = value
    return out


_D2_CONV = re.compile(r"^roi_heads\.mask_head\.mask_fcn(\d+)\.(weight|bias)$")
_D2_LAYER = re.compile(r"^roi_heads\.mask_head\.(deconv|predictor)\.(weight|bias)$")


def convert_detectron2_mask(state_dict: dict[str, torch.Tensor],
                            prefix: str = "roi_stage.heads.mask.") -> ConvertedWeights:
    """detectron2's MaskRCNNConvUpsampleHead: ``mask_fcn{i}`` (i from 1) -> ``convs.{i - 1}``,
    ``deconv`` -> ``deconv``; its ``predictor`` has C channels (no background): a zero channel is
    put first for plugrcnn's label 0 (a class-agnostic predictor, 1 channel, is kept as is)."""
    out = ConvertedWeights()
    for key, value in state_dict.items():
        if conv := _D2_CONV.match(key):
            out[f"{prefix}convs.{int(conv[1]) - 1}.{conv[2]}"] = value
        elif layer := _D2_LAYER.match(key):
            if layer[1] == "predictor" and value.shape[0] > 1:  # (C, 256, 1, 1) or (C,)
                value = torch.cat([value.new_zeros((1, *value.shape[1:])), value])
            out[f"{prefix}{layer[1]}.{layer[2]}"] = value
        else:
            continue
        out.sources.add(key)
    return out
