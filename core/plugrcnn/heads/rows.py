"""What the core passes a head beside its features: the rows it runs on.

Shape shorthand: R rows (RoIs of all images, image-major).

Rows are sampled RoIs in training, proposals for roi-stage heads at inference, and the final
detections for instance heads at inference and in the deploy graph (there: N images x K slots,
flattened image-major, padding slots included).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class RoIRows:
    """The rows a head's `forward` and `predict` run on.

    boxes:    (R, 4) XYXY in network-input pixels.
    classes:  (R,) int64. Training: the label of each sampled RoI (the GT class of its matched
              box, 0 for background). Inference: the predicted class of each detection. None for
              roi-stage heads at inference (proposals have no class yet).
    scores:   (R,) the detection score (inference, instance heads); None otherwise.
    consumed: ``"<head>.<key>"`` -> that head's forward output on these same rows, for every
              output the head's spec `consumes`.
    """
    boxes: Tensor
    classes: Tensor | None = None
    scores: Tensor | None = None
    consumed: dict[str, Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def select(self, index: Tensor) -> RoIRows:
        """The rows at `index` (a (R',) long or (R,) bool tensor)."""
        return RoIRows(self.boxes[index],
                       None if self.classes is None else self.classes[index],
                       None if self.scores is None else self.scores[index],
                       {k: v[index] for k, v in self.consumed.items()})


@dataclass(frozen=True)
class PredictContext:
    """How `Head.predict` is being run.

    static: True inside the deploy graph (traced for ONNX / TensorRT / AOTInductor): every shape
        must be fixed by the input shapes (no host syncs, no data-dependent sizes). The eager
        model runs with False and may use an exact, data-dependent variant of the same function.
    """
    static: bool = False
