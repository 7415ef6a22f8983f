"""torchvision keypoint R-CNN parameters -> this head's (the core converts the rest).

torchvision: ``roi_heads.keypoint_head.<2i>`` is conv i (a Sequential of conv, ReLU, ...) and
``roi_heads.keypoint_predictor.kps_score_lowres`` the deconvolution; plugrcnn: ``convs.<i>`` and
``score_lowres`` of ``roi_stage.heads.<name>``.
"""
from __future__ import annotations

import re

import torch

from plugrcnn.heads import ConvertedWeights

CONV = re.compile(r"^roi_heads\.keypoint_head\.(\d+)\.(weight|bias)$")
DECONV = re.compile(r"^roi_heads\.keypoint_predictor\.kps_score_lowres\.(weight|bias)$")


def convert_torchvision_keypoint_head(state_dict: dict[str, torch.Tensor],
                                      name: str = "keypoint") -> dict[str, torch.Tensor]:
    prefix = f"roi_stage.heads.{name}."
    converted = {}
    for key, value in state_dict.items():
        if match := CONV.match(key):
            converted[f"{prefix}convs.{int(match[1]) // 2}.{match[2]}"] = value
        elif match := DECONV.match(key):
            converted[f"{prefix}score_lowres.{match[1]}"] = value
    return converted


D2_CONV = re.compile(r"^roi_heads\.keypoint_head\.conv_fcn(\d+)\.(weight|bias)$")
D2_DECONV = re.compile(r"^roi_heads\.keypoint_head\.score_lowres\.(weight|bias)$")


def convert_detectron2_keypoint_head(state_dict: dict[str, torch.Tensor],
                                     name: str = "keypoint") -> ConvertedWeights:
    """detectron2's KRCNNConvDeconvUpsampleHead: ``conv_fcn{i}`` (i from 1) -> ``convs.{i - 1}``,
    ``score_lowres`` (the 4x4 stride-2 deconvolution) -> ``score_lowres``."""
    prefix = f"roi_stage.heads.{name}."
    out = ConvertedWeights()
    for key, value in state_dict.items():
        if match := D2_CONV.match(key):
            out[f"{prefix}convs.{int(match[1]) - 1}.{match[2]}"] = value
        elif match := D2_DECONV.match(key):
            out[f"{prefix}score_lowres.{match[1]}"] = value
        else:
            continue
        out.sources.add(key)
    return out
