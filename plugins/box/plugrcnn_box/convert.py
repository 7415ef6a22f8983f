"""detectron2's class-specific box deltas -> this head's `bbox_pred`.

detectron2 predicts 4 deltas for each of its C foreground classes, (C * 4, D); plugrcnn has a
(never used) set for background at label 0 too, ((C + 1) * 4, D): zeros are put first.
"""
from __future__ import annotations

import torch

from plugrcnn.heads import ConvertedWeights

SOURCE_PREFIX = "roi_heads.box_predictor.bbox_pred."


def convert_detectron2_box(state_dict: dict[str, torch.Tensor], name: str = "box") -> ConvertedWeights:
    out = ConvertedWeights()
    for param in ("weight", "bias"):
        key = SOURCE_PREFIX + param
        if key in state_dict:
            value = state_dict[key]                           # (C * 4, D) or (C * 4,)
            background = value.new_zeros((4, *value.shape[1:]))
            out[f"roi_stage.heads.{name}.bbox_pred.{param}"] = torch.cat([background, value])
            out.sources.add(key)
    return out
