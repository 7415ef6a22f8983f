"""Mask R-CNN's mask head: a small FCN on 14x14 RoI features -> class-specific 28x28 logits.

Outputs of `forward`: ``mask_logits`` (R, C+1, M, M) and ``mask_class_logits`` (R, M, M), the
channel of each row's class: the GT class in training, the predicted class at inference (what a
head that builds on masks, such as mask scoring, consumes).
Training: foreground RoIs whose GT has a mask; BCE on the GT class's channel (loss.py).
Inference: `predict` -> ``masks`` (D, M, M) probabilities (also the deploy graph's output);
`finalize` pastes them into the original image (paste.py) and thresholds them ->
``pred_masks`` (D, H, W) bool.

Shape shorthand:
    R   RoIs (all images concatenated); D detections of one image; N images, K slots each
    C   foreground classes (C + 1 mask channels, 0 = background), or 1 channel if agnostic
    S   pooler resolution (14); M = 2 * S mask resolution (28)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.utils import draw_segmentation_masks

from plugrcnn.heads import (
    Check,
    Head,
    HeadContext,
    ImageTargets,
    PredictContext,
    RoIInput,
    RoIRows,
    class_color,
    in_float32,
    ranged,
)
from plugrcnn_mask.loss import build_roi_mask_targets, class_channel_loss, select_class_channel
from plugrcnn_mask.paste import paste_masks
from plugrcnn_mask.rle import encode_masks
from plugrcnn_mask.targets import MaskCodec, MaskTargets, render_masks


@dataclass
class MaskHeadConfig:
    pooler_resolution: int = ranged(14, ge=1, le=64)  # RoIAlign output; masks are twice this (28)
    num_conv: int = ranged(4, ge=0, le=16)  # conv3x3 + ReLU layers before the 2x deconvolution
    conv_dim: int = ranged(256, ge=1, le=4096)
    cls_agnostic_mask: bool = False  # one mask channel for every class
    mask_threshold: float = ranged(0.5, ge=0, le=1)  # pasted probability >= this is inside the mask
    # "aligned": detectron2's paste (continuous box); "torchvision": its integer-box paste
    paste: Literal["aligned", "torchvision"] = "aligned"
    norm: Literal["", "bn"] = ""     # "bn": each conv without bias + BatchNorm (torchvision v2)
    draw_alpha: float = ranged(0.5, ge=0, le=1)


class MaskHead(Head):
    stage = "instance"
    # foreground RoIs whose GT carries a mask (box-only annotations do not train the mask head)
    train_rois = "foreground_with_targets"
    eval_kind = "segm"
    draw_order = 20  # under boxes and keypoints

    def __init__(self, cfg: MaskHeadConfig, ctx: HeadContext, name: str = "mask") -> None:
        super().__init__(name, RoIInput(resolution=cfg.pooler_resolution))
        self.cfg = cfg
        self.mask_resolution = 2 * cfg.pooler_resolution
        channels = ctx.in_channels
        self.convs = nn.ModuleList()
        for _ in range(cfg.num_conv):
            self.convs.append(conv_block(channels, cfg.conv_dim, cfg.norm))
            channels = cfg.conv_dim
        self.deconv = nn.ConvTranspose2d(channels, cfg.conv_dim, 2, stride=2)
        out_channels = 1 if cfg.cls_agnostic_mask else ctx.num_classes + 1
        self.predictor = nn.Conv2d(cfg.conv_dim, out_channels, 1)
        for layer in [*self.convs, self.deconv]:  # detectron2's MSRA fill
            layer = layer[0] if isinstance(layer, nn.Sequential) else layer
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.zeros_(self.predictor.bias)

    def forward(self, x: torch.Tensor, rows: RoIRows) -> dict[str, torch.Tensor]:
        for conv in self.convs:
            x = F.relu(conv(x), inplace=True)     # (R, 256, S, S)
        x = F.relu(self.deconv(x), inplace=True) # (R, 256, S, S) -> (R, 256, M, M)
        logits = in_float32(self.predictor, x)    # (R, C+1, M, M)
        classes = rows.classes if rows.classes is not None else torch.zeros_like(logits[:, 0, 0, 0], dtype=torch.int64)
        return {"mask_logits": logits, "mask_class_logits": select_class_channel(logits, classes)}

    # -- training -------------------------------------------------------------------------------
    def loss(self, outputs: dict[str, torch.Tensor], rois: list[Any],
             targets: list[ImageTargets]) -> dict[str, torch.Tensor]:
        # In training the rows' classes are their GT classes, so forward already gathered each
        # row's GT-class channel (R, M, M): the loss reads it instead of gathering it again.
        class_logits = outputs["mask_class_logits"]
        keep, _, gt_masks = build_roi_mask_targets(
            rois, [t.heads[self.name] for t in targets], self.mask_resolution)
        if not bool(keep.all()):  # RoIs whose GT has no mask are left out (copy only then)
            class_logits = class_logits[keep.to(class_logits.device)]
        return {f"loss_{self.name}": class_channel_loss(class_logits, gt_masks)}

    # -- inference ------------------------------------------------------------------------------
    def predict(self, outputs: dict[str, torch.Tensor], rows: RoIRows,
                ctx: PredictContext) -> dict[str, torch.Tensor]:
        return {"masks": outputs["mask_class_logits"].float().sigmoid()}  # (D, M, M) probabilities

    def finalize(self, detection: dict[str, torch.Tensor], scale_xy: tuple[float, float],
                 original_size: tuple[int, int]) -> None:
        detection["pred_masks"] = paste_masks(
            detection["pred_masks"], detection["pred_boxes"], original_size,  # (D, M, M) probabilities
            threshold=self.cfg.mask_threshold, mode=self.cfg.paste)

    # -- outputs --------------------------------------------------------------------------------
    def coco_results(self, detection: dict[str, torch.Tensor],
                     records: list[dict[str, Any]]) -> None:
        for record, rle in zip(records, encode_masks(detection["pred_masks"])):
            record["segmentation"] = rle

    def draw(self, image: torch.Tensor, detection: dict[str, torch.Tensor]) -> torch.Tensor:
        masks = detection["pred_masks"]
        if masks.shape[0] == 0 or masks.dtype != torch.bool:
            return image
        colors = [class_color(c) for c in detection["pred_classes"].tolist()]
        return draw_segmentation_masks(image, masks.to(image.device), alpha=self.cfg.draw_alpha,
                                       colors=colors)

    def ground_truth_fields(self, target: MaskTargets, height: int, width: int) -> dict[str, torch.Tensor]:
        return {"pred_masks": render_masks(target, height, width)}

    def output_checks(self) -> dict[str, Check]:
        return {"masks": "binary_mask"}


def conv_block(in_channels: int, out_channels: int, norm: str) -> nn.Module:
    """conv3x3 with bias, or for norm "bn" Sequential(conv3x3 without bias, BatchNorm2d)."""
    conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not norm)
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels)) if norm == "bn" else conv
