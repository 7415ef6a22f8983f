"""The assembled two-stage detector: preprocess -> backbone+FPN -> RPN -> RoI stage (heads).

`forward(batch)` takes a list of per-image dicts: ``{"image": (3, H, W) uint8 or float in [0, 1],
"targets": ImageTargets}``. In training mode it returns `TrainingOutputs` (the RPN's losses and
every head's outputs on its RoIs), which the criterion (``plugrcnn.engine.losses``) turns into
named losses outside `forward`; in eval mode, per image, a dict of detections in original-image
coordinates (``pred_boxes``, ``scores``, ``pred_classes`` and each head's ``pred_*`` fields).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from plugrcnn.backbones.registry import build_backbone
from plugrcnn.backbones.spec import Backbone, BackboneContext
from plugrcnn.config.schema import ModelConfig
from plugrcnn.errors import PlugrcnnError
from plugrcnn.heads.base import Head
from plugrcnn.heads.targets import ImageTargets
from plugrcnn.modeling.anchors import AnchorGenerator
from plugrcnn.modeling.box_coder import BoxCoder
from plugrcnn.modeling.matcher import Matcher
from plugrcnn.modeling.finalize import finalize_detection
from plugrcnn.modeling.preprocess import Preprocessor
from plugrcnn.modeling.roi_stage import HeadRun, RoIStage
from plugrcnn.modeling.rpn import RPN, RPNHead


def build_rpn(cfg: ModelConfig, in_channels: int, strides: list[int]) -> RPN:
    a, r = cfg.anchors, cfg.rpn
    anchors = AnchorGenerator(sizes=a.sizes, aspect_ratios=a.aspect_ratios, strides=strides,
                              round_base_anchors=a.round_base_anchors,
                              strides_from_image=a.strides_from_image, offset=a.offset)
    return RPN(
        in_channels=in_channels, anchor_generator=anchors,
        box_coder=BoxCoder(r.box_coder_weights),
        head=RPNHead(in_channels, anchors.num_anchors_per_location, conv_depth=r.conv_depth),
        matcher=Matcher(list(r.iou_thresholds), [0, -1, 1], True),
        batch_size_per_image=r.batch_size_per_image, positive_fraction=r.positive_fraction,
        pre_nms_topk_train=r.pre_nms_topk_train, pre_nms_topk_test=r.pre_nms_topk_test,
        post_nms_topk_train=r.post_nms_topk_train, post_nms_topk_test=r.post_nms_topk_test,
        nms_thresh=r.nms_thresh, min_box_size=r.min_box_size, score_thresh=r.score_thresh,
        smooth_l1_beta=r.smooth_l1_beta, loss_normalization=r.loss_normalizer)


@dataclass
class TrainingOutputs:
    """What the model's training forward returns: tensors for the criterion, no loss of a head."""
    losses: dict[str, torch.Tensor]   # the core's own losses (RPN: loss_rpn_cls, loss_rpn_loc)
    heads: dict[str, HeadRun]         # each head's outputs on its training RoIs
    targets: list[ImageTargets]


def build_model_backbone(cfg: ModelConfig) -> Backbone:
    """The backbone `model.backbone.name` selects, checked against the anchors it must feed."""
    backbone = build_backbone(cfg.backbone.name, cfg.backbone.options, BackboneContext(fpn=cfg.fpn, input=cfg.input))
    rpn_levels = backbone.pyramid.rpn_levels
    if len(cfg.anchors.sizes) != len(rpn_levels):
        raise PlugrcnnError(f"key model.anchors.sizes: {len(cfg.anchors.sizes)} levels of anchor sizes, but "
                            f"backbone '{cfg.backbone.name}' feeds the RPN {len(rpn_levels)} levels "
                            f"{list(rpn_levels)}; give one tuple of sizes per level")
    return backbone


class TwoStageDetector(nn.Module):
    def __init__(self, cfg: ModelConfig, heads: dict[str, Head], trunks: dict[str, nn.Module],
                 consumes: dict[str, tuple[str, ...]] | None = None, backbone: Backbone | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.preprocess = Preprocessor(cfg.input)
        self.backbone = backbone if backbone is not None else build_model_backbone(cfg)
        pyramid = self.backbone.pyramid
        self.rpn = build_rpn(cfg, pyramid.channels, pyramid.rpn_strides)
        self.roi_stage = RoIStage(cfg, heads, trunks, pyramid.pooler_scales, consumes)

    @property
    def heads(self) -> nn.ModuleDict:
        return self.roi_stage.heads

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, batch: list[dict[str, Any]]) -> Any:
        if self.training:
            return self.losses(batch)
        return self.predict([item["image"] for item in batch])

    def losses(self, batch: list[dict[str, Any]]) -> TrainingOutputs:
        images = self.preprocess([item["image"] for item in batch], resize=False)
        targets: list[ImageTargets] = [item["targets"].to(self.device) for item in batch]
        features = self.backbone(images.tensor)
        pyramid = self.backbone.pyramid
        gt_boxes = [t.gt_boxes[~t.gt_crowd] for t in targets]
        proposals, losses = self.rpn(pyramid.rpn_features(features), images.image_sizes,
                                     tuple(images.tensor.shape[-2:]), gt_boxes)
        runs = self.roi_stage.forward_train(pyramid.pooler_features(features), proposals, targets)
        return TrainingOutputs(losses=losses, heads=runs, targets=targets)

    @torch.no_grad()
    def predict(self, images: list[torch.Tensor], resize: bool = True) -> list[dict[str, torch.Tensor]]:
        """Detections per image in original-image coordinates."""
        batch = self.preprocess(images, resize=resize)
        features = self.backbone(batch.tensor)
        pyramid = self.backbone.pyramid
        proposals, _ = self.rpn(pyramid.rpn_features(features), batch.image_sizes, tuple(batch.tensor.shape[-2:]))
        detections = self.roi_stage.forward_infer(pyramid.pooler_features(features), proposals, batch.image_sizes)
        for det, size, original in zip(detections, batch.image_sizes, batch.original_sizes):
            finalize_detection(det, self.heads.values(), size, original)
        return detections
