"""torchvision keypoint R-CNN parameters -> this head's (the core converts the rest).

torchvision: ``roi_heads.keypoint_head.<2i>`` is conv i (a Sequential of conv, ReLU, ...) and
``roi_heads.keypoint_predictor.kps_score_lowres`` the deconvolution; plugrcnn: ``convs.<i>`` and
``score_lowres`` of ``roi_stage.heads.<name>``.
"""
from __future__ import annotations

import re

import torch

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
