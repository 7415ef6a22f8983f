"""Fixed-size graph outputs -> per-frame detections in frame coordinates, through the heads.

The graph's outputs are already the heads' final results (each head's ``predict`` runs inside
the graph), so output ``<head>.<key>`` becomes detection field ``pred_<key>`` as in the eager
model, and each head's own ``finalize`` moves it to the frame (mask pasting, keypoint scaling,
...) on the device the runtime left it on. No head is named here.
"""
from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from plugrcnn.heads.base import Head
from plugrcnn.modeling.finalize import finalize_detection
from plugrcnn_deploy.formats.spec import DeploySpec
from plugrcnn_deploy.video.frames import Letterbox


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
        # a letterboxed box may reach into the padding around the resized frame
        return finalize_detection(det, self.heads.values(), box.resized_size, box.original_size,
                                  clip_boxes=box.resized_size != self.canvas)
