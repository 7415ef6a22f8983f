"""The deploy graph: the assembled model with a fixed input size and a fixed number of detections.

Shape shorthand:
    N   images (the spec's batch);  H, W input size;  Hp, Wp padded to the size divisibility
    P   proposal slots;  C foreground classes;  K detection slots

images (N, 3, H, W) uint8 RGB (or float in [0, 1])
  -> normalize (+ zero padding)              module ``normalize``
  -> model.backbone: its pyramid's levels    module ``backbone``
  -> model.rpn.head                          module ``rpn_head``
  -> fixed-count proposals                   module ``proposals``
  -> RoI trunks and heads: roi-stage heads score the P proposals, per-class NMS keeps K
     detections, instance heads run on the K detection boxes, every head's ``predict``
     (static) gives its outputs             module ``roi_heads``

Every weight is the core model's own module (``model.backbone``, ``model.rpn.head``,
``model.roi_stage.poolers / trunks / heads``): nothing is copied or re-implemented but the steps
whose shapes the core lets depend on the data. The graph never names a head.
"""
from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from plugrcnn.errors import PlugrcnnError
from plugrcnn.heads.base import Head
from plugrcnn.heads.rows import PredictContext, RoIRows
from plugrcnn.heads.spec import RoIInput
from plugrcnn.modeling.detector import TwoStageDetector
from plugrcnn.modeling.poolers import MultiLevelRoIAlign
from plugrcnn.modeling.roi_stage import HeadRunner, RoIStage, group_features
from plugrcnn_deploy.formats.spec import CORE_OUTPUTS, DeploySpec
from plugrcnn_deploy.graph.static_detections import StaticDetections
from plugrcnn_deploy.graph.static_ops import pool_static
from plugrcnn_deploy.graph.static_proposals import StaticProposals


def _module_key(name: str) -> str:
    return re.sub(r"\W", "_", name) + "_"


class InputNormalizer(nn.Module):
    """(N, 3, H, W) uint8 [0, 255] or float [0, 1] -> normalised float, zero-padded to (Hp, Wp)."""

    def __init__(self, pixel_mean: Tensor, pixel_std: Tensor, padded_size: tuple[int, int]) -> None:
        super().__init__()
        self.register_buffer("pixel_mean", pixel_mean.reshape(1, 3, 1, 1).clone(), persistent=False)
        self.register_buffer("pixel_std", pixel_std.reshape(1, 3, 1, 1).clone(), persistent=False)
        self.padded_size = padded_size

    def forward(self, images: Tensor) -> Tensor:
        x = images.float()
        if images.dtype == torch.uint8:
            x = x / 255.0
        x = (x - self.pixel_mean) / self.pixel_std
        pad_h, pad_w = self.padded_size[0] - x.shape[-2], self.padded_size[1] - x.shape[-1]
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))  # right and bottom, as the core pads a batch
        return x


class StaticRoIHeads(nn.Module):
    """features, proposals (N, P, 4), valid (N, P) -> the named fixed-size outputs.

    The heads run as in the eager model (`HeadRunner`: forward grouped by RoIInput, consumed
    outputs aligned, then each head's `predict` with ``static=True``); only pooling and the
    detection selection are the static versions. Every ``predict`` tensor (N*K, ...) becomes
    the output ``<head>.<key>`` (N, K, ...).
    """

    def __init__(self, roi_stage: RoIStage, num_classes: int, num_proposals: int, spec: DeploySpec) -> None:
        super().__init__()
        # the core's modules under attribute-safe keys: torch.export writes `self.<path>` into
        # Python source, and a head may be called `class`
        self.head_modules = nn.ModuleDict({_module_key(n): h for n, h in roi_stage.heads.items()})
        self.trunk_modules = nn.ModuleDict({_module_key(n): t for n, t in roi_stage.trunks.items()})
        self.trunk_names = list(roi_stage.trunks.keys())
        self.poolers: dict[str, MultiLevelRoIAlign] = dict(roi_stage.poolers.items())  # no weights
        self.head_names = list(roi_stage.heads.keys())  # dependency order, as the core runs them
        self.consumes = dict(roi_stage.consumes)
        self.image_size = (spec.height, spec.width)
        self.fp16 = spec.fp16
        self.select = StaticDetections(roi_stage.cfg.detection, num_classes, num_proposals,
                                       spec.max_detections, spec.max_candidates, spec.nms_rounds)

    @property
    def heads(self) -> dict[str, Head]:
        return {name: self.head_modules[_module_key(name)] for name in self.head_names}

    def forward(self, features: Sequence[Tensor], proposals: Tensor, valid: Tensor) -> dict[str, Tensor]:
        """features: the levels RoIAlign reads (the backbone pyramid's pooler_levels)."""
        features = list(features)
        n, p, _ = proposals.shape
        heads = self.heads
        runner = HeadRunner(heads, self.consumes)
        roi_names = [name for name, head in heads.items() if head.stage == "roi"]
        on_proposals: dict[str, dict[str, Tensor]] = {}
        runner.run_on_rows(roi_names, RoIRows(boxes=proposals.reshape(n * p, 4)),
                           self._pooler_on(features, proposals), on_proposals)
        candidates: dict[str, Tensor] = {}
        for name in roi_names:
            outputs = {k: v.float() for k, v in on_proposals[name].items()}
            candidates.update(heads[name].candidates(outputs, list(proposals.unbind(0)), [self.image_size] * n))
        scores = candidates["scores"].reshape(n, p, -1)  # (N*P, C+1) -> (N, P, C+1)
        if "boxes" in candidates:
            boxes = candidates["boxes"].reshape(n, p, -1, 4)
        else:  # no box head: every class keeps the proposal box
            boxes = proposals[:, :, None, :].expand(n, p, scores.shape[-1], 4)
        det_boxes, det_scores, labels, slot, det_valid = self.select(scores, boxes, valid)
        k = det_scores.shape[1]
        rows = RoIRows(boxes=det_boxes.reshape(n * k, 4), classes=labels.reshape(n * k),
                       scores=det_scores.reshape(n * k))
        index = (torch.arange(n, device=slot.device)[:, None] * p + slot).reshape(-1)  # (N*K,) into N*P
        on_detections = {name: {key: value[index] for key, value in on_proposals[name].items()}
                         for name in roi_names}
        runner.run_on_rows([name for name, head in heads.items() if head.stage == "instance"], rows,
                           self._pooler_on(features, det_boxes), on_detections)
        floats = {name: {key: value.float() for key, value in outs.items()} for name, outs in on_detections.items()}
        predictions = runner.predict_on_rows(rows, floats, PredictContext(static=True))
        outputs = {"boxes": det_boxes, "scores": det_scores, "classes": labels.to(torch.int32),
                   "valid_count": det_valid.float().sum(dim=1).to(torch.int32)}
        for name, fields in predictions.items():
            outputs.update(self._named(name, fields, n, k))
        return outputs

    def _pooler_on(self, features: list[Tensor], boxes: Tensor) -> Callable[[RoIInput], Tensor]:
        """RoIInput -> the group's features on `boxes` (N, R, 4): the core's `group_features`
        with static pooling (half precision for an fp16 graph)."""
        trunks = {name: self.trunk_modules[_module_key(name)] for name in self.trunk_names}

        def pool_on_boxes(pooler: MultiLevelRoIAlign) -> Tensor:
            x = pool_static(pooler, features, boxes)
            return x.half() if self.fp16 else x
        return lambda roi_input: group_features(roi_input, self.poolers, trunks, pool_on_boxes)

    @staticmethod
    def _named(name: str, fields: dict[str, Tensor], n: int, k: int) -> dict[str, Tensor]:
        named = {}
        for key, value in fields.items():
            if not isinstance(value, Tensor) or value.dim() == 0 or value.shape[0] != n * k:
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise PlugrcnnError(f"head '{name}': predict()['{key}'] is {shape}; it must be a "
                                    f"tensor with one row per detection ({n * k} rows here)")
            named[f"{name}.{key}"] = value.reshape(n, k, *value.shape[1:])  # (N*K, ...) -> (N, K, ...)
        return named


class DeployGraph(nn.Module):
    """images (N, 3, H, W) -> the tuple of outputs named by ``self.spec.outputs``."""

    def __init__(self, model: TwoStageDetector, spec: DeploySpec) -> None:
        super().__init__()
        divisibility = max(model.cfg.input.size_divisibility, 1)
        padded = (math.ceil(spec.height / divisibility) * divisibility,
                  math.ceil(spec.width / divisibility) * divisibility)
        device = model.device
        self.normalize = InputNormalizer(model.preprocess.pixel_mean, model.preprocess.pixel_std, padded)
        self.backbone = model.backbone
        self.pyramid = model.backbone.pyramid  # which levels the RPN and RoIAlign read
        with torch.no_grad():
            features = self.pyramid.rpn_features(self.backbone(torch.zeros((1, 3, *padded), device=device)))
        anchors = model.rpn.anchor_generator([tuple(f.shape[-2:]) for f in features], padded, device=device)
        self.rpn_head = model.rpn.head
        self.proposals = StaticProposals(model.rpn, anchors, (spec.height, spec.width), spec.nms_rounds)
        self.roi_heads = StaticRoIHeads(model.roi_stage, model.cfg.num_classes, self.proposals.num_proposals, spec)
        self.fp16 = spec.fp16
        if spec.fp16:  # half copies: the model itself stays float32
            self.backbone = copy.deepcopy(self.backbone).half()
            self.rpn_head = copy.deepcopy(self.rpn_head).half()
            self.roi_heads.trunk_modules = copy.deepcopy(self.roi_heads.trunk_modules).half()
            self.roi_heads.head_modules = copy.deepcopy(self.roi_heads.head_modules).half()
        self.spec = spec
        self.eval()
        with torch.no_grad():  # one dry run names the heads' outputs (and checks their shapes)
            example = torch.zeros(spec.input_shape, dtype=getattr(torch, spec.input_dtype), device=device)
            names = tuple(self.forward_named(example))
        self.spec = spec.with_outputs(names, tuple(model.heads.keys()))

    def dense(self, images: Tensor) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """The part without data-dependent steps: normalise, backbone, RPN head convolutions."""
        x = self.normalize(images)
        features = self.backbone(x.half() if self.fp16 else x)
        objectness, deltas = self.rpn_head(self.pyramid.rpn_features(features))
        return [f.float() for f in self.pyramid.pooler_features(features)], objectness, deltas

    def sparse(self, features: list[Tensor], objectness: list[Tensor], deltas: list[Tensor]) -> dict[str, Tensor]:
        """features: the pooled levels, as `dense` returns them."""
        proposals, valid = self.proposals(objectness, deltas)
        return self.roi_heads(features, proposals, valid)

    def forward_named(self, images: Tensor) -> dict[str, Tensor]:
        outputs = self.sparse(*self.dense(images))
        assert tuple(outputs)[:len(CORE_OUTPUTS)] == CORE_OUTPUTS
        return outputs

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        outputs = self.forward_named(images)
        return tuple(outputs[name] for name in self.spec.outputs)
