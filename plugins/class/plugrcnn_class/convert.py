"""detectron2's classifier -> this head's `cls_score`.

detectron2 orders its C + 1 scores foreground first, background last (index C); plugrcnn puts
background at label 0. The rows of weight (C + 1, D) and bias (C + 1,) move accordingly.
"""
from __future__ import annotations

import torch

from plugrcnn.heads import ConvertedWeights

SOURCE_PREFIX = "roi_heads.box_predictor.cls_score."


def background_first(value: torch.Tensor) -> torch.Tensor:
    """(C + 1, ...) with background last -> background first."""
    return torch.cat([value[-1:], value[:-1]], dim=0)


def convert_detectron2_class(state_dict: dict[str, torch.Tensor],
                             name: str = "class") -> ConvertedWeights:
    out = ConvertedWeights()
    for param in ("weight", "bias"):
        key = SOURCE_PREFIX + param
        if key in state_dict:
            out[f"roi_stage.heads.{name}.cls_score.{param}"] = background_first(state_dict[key])
            out.sources.add(key)
    return out
