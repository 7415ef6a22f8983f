"""Fixed-size graph outputs -> per-frame detections in frame coordinates, through the heads.

The graph's outputs are already the heads' final results (each head's ``predict`` runs inside
the graph), so output ``<head>.<key>`` becomes detection field ``pred_<key>`` as in the eager
model, and each head's own ``finalize`` moves it to the frame (mask pasting, keypoint scaling,
...) on the device the runtime left it on. No head is named here.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from plugrcnn.heads.base import Head
from plugrcnn.modeling.preprocess import rescale_boxes
from plugrcnn_deploy.frames import Letterbox
from plugrcnn_deploy.spec import DeploySpec


class DetectionDecoder:
    def __init__(self, heads: Mapping[str, Head], spec: DeploySpec) -> None:
        self.heads = dict(heads)
        self.spec = spec
        self.head_outputs = {name: spec.head_outputs(name) for name in self.heads}
        self.canvas = (spec.height, spec.width)

    def decode(self, raw: Mapping[str, Tensor], letterboxes: list[Letterbox]) -> list[dict[str, Tensor]]:
        counts = raw["valid_count"].tolist()
        return [self._one(raw, i, int(counts[i]), box) for i, box in enumerate(letterboxes)]

    def _one(self, raw: Mapping[str, Tensor], i: int, count: int, box: Letterbox) -> dict[str, Tensor]:
        det = {"pred_boxes": raw["boxes"][i, :count].float(), "scores": raw["scores"][i, :count].float(),
               "pred_classes": raw["classes"][i, :count].long()}
        for name in self.heads:
            for key, output in self.head_outputs[name].items():
                det[f"pred_{key}"] = raw[output][i, :count]
        det["pred_boxes"], scale = rescale_boxes(det["pred_boxes"], box.resized_size, box.original_size)
        for head in self.heads.values():
            head.finalize(det, scale, box.original_size)
        height, width = box.original_size
        if box.resized_size != self.canvas:  # a letterboxed box may reach into the padding
            boxes = det["pred_boxes"]
            det["pred_boxes"] = torch.stack([boxes[:, 0].clamp(0, width), boxes[:, 1].clamp(0, height),
                                             boxes[:, 2].clamp(0, width), boxes[:, 3].clamp(0, height)], 1)
        return det
