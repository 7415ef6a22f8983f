"""A built model with its weights, turning images into detections, COCO records and pictures."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from plugrcnn.config.schema import Config
from plugrcnn.inference.draw_detections import draw_detections, keep_confident
from plugrcnn.inference.runtime import InferenceRuntime
from plugrcnn.modeling.build import BuiltModel, build_model, resolve_device
from plugrcnn.modeling.weights import load_model_weights


@dataclass
class Predictor:
    cfg: Config
    built: BuiltModel
    device: torch.device
    runtime: InferenceRuntime | None = None  # precision, folded batch norms; made on first call

    @classmethod
    def from_config(cls, cfg: Config, weights: str | None) -> Predictor:
        built = build_model(cfg)
        if weights:
            load_model_weights(built.model, weights)
        device = resolve_device(cfg.model.device)
        built.model.to(device).eval()
        return cls(cfg, built, device, InferenceRuntime(built.model, cfg.model.precision, device))

    @property
    def model(self) -> torch.nn.Module:
        return self.built.model

    def __call__(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        if self.runtime is None:
            self.runtime = InferenceRuntime(self.model, self.cfg.model.precision, self.device)
        with self.runtime.applied():
            return self.model.predict([im.to(self.device) for im in images])

    def category_id(self, label: int) -> int:
        ids = self.cfg.model.category_ids
        return int(ids[label - 1]) if ids else int(label)

    def coco_records(self, detection: dict[str, torch.Tensor], image_id: Any = None) -> list[dict[str, Any]]:
        """One COCO result record per detection; heads add their fields (segmentation, ...).

        ``score`` is the detection's score; a head that scores detections for its own kind
        (`Head.kind_scores`) adds ``scores: {kind: value}``, used by that kind's evaluation."""
        boxes = detection["pred_boxes"].detach().cpu()
        records = []
        for (x1, y1, x2, y2), score, label in zip(boxes.tolist(), detection["scores"].tolist(),
                                                  detection["pred_classes"].tolist()):
            record: dict[str, Any] = {} if image_id is None else {"image_id": image_id}
            record.update(category_id=self.category_id(label),
                          bbox=[x1, y1, x2 - x1, y2 - y1], score=float(score))
            records.append(record)
        for head in self.model.heads.values():
            head.coco_results(detection, records)
            for kind, key in head.kind_scores().items():
                for record, value in zip(records, detection[f"pred_{key}"].tolist()):
                    record.setdefault("scores", {})[kind] = float(value)
        return records

    def draw(self, image: torch.Tensor, detection: dict[str, torch.Tensor],
             score_thresh: float = 0.5) -> torch.Tensor:
        """Each head draws the detections scoring at least `score_thresh`, lowest `draw_order`
        first (masks under boxes)."""
        shown = {k: v.detach().cpu() for k, v in keep_confident(detection, score_thresh).items()}
        return draw_detections(self.model.heads.values(), image.cpu(), shown)
