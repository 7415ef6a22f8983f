"""Fixed-size graph outputs -> per-frame detections in frame coordinates, through the heads.

For every head, its exported tensors (rows of the valid detections) become detection fields,
then each head's own ``finalize`` moves them to the frame (mask pasting, keypoint scaling, ...),
on the device the runtime left them on. No head is named here.

Rebuilding a head's fields is the head's ``import_outputs(exported, detection)`` (the inverse of
its ``export_outputs``; see plugrcnn.heads.base.Head for the default).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from plugrcnn.heads.base import Head
from plugrcnn.modeling.preprocess import rescale_boxes
from plugrcnn_deploy.frames import Letterbox
from plugrcnn_deploy.spec import DeploySpec


def import_head_outputs(head: Head, exported: dict[str, Tensor], detection: dict[str, Tensor]) -> None:
    head.import_outputs(exported, detection)


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
        for name, head in self.heads.items():
            exported = {key: raw[output][i, :count] for key, output in self.head_outputs[name].items()}
            import_head_outputs(head, exported, det)
        det["pred_boxes"], scale = rescale_boxes(det["pred_boxes"], box.resized_size, box.original_size)
        for head in self.heads.values():
            head.finalize(det, scale, box.original_size)
        height, width = box.original_size
        if box.resized_size != self.canvas:  # a letterboxed box may reach into the padding
            boxes = det["pred_boxes"]
            det["pred_boxes"] = torch.stack([boxes[:, 0].clamp(0, width), boxes[:, 1].clamp(0, height),
                                             boxes[:, 2].clamp(0, width), boxes[:, 3].clamp(0, height)], 1)
        return det
