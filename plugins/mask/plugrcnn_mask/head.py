"""Mask R-CNN's mask head: a small FCN on 14x14 RoI features -> class-specific 28x28 logits.

Training: foreground RoIs whose GT has a mask; BCE on the GT class's channel (loss.py).
Inference: the detections' boxes; the predicted class's channel, sigmoid -> ``pred_masks``
(D, 1, M, M) probabilities; `finalize` pastes them into the original image (paste.py) and
thresholds them -> ``pred_masks`` (D, H, W) bool.

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

from plugrcnn.config.ranges import ranged
from plugrcnn.heads import Head, HeadContext, ImageTargets
from plugrcnn.plugins import RoIInput
from plugrcnn_mask.loss import build_roi_mask_targets, mask_rcnn_loss, select_class_channel
from plugrcnn_mask.paste import paste_masks
from plugrcnn_mask.rle import encode_masks
from plugrcnn_mask.targets import MaskCodec


@dataclass
class MaskHeadConfig:
    pooler_resolution: int = ranged(14, ge=1, le=64)  # RoIAlign output; masks are twice this (28)
    num_conv: int = ranged(4, ge=0, le=16)  # conv3x3 + ReLU layers before the 2x deconvolution
    conv_dim: int = ranged(256, ge=1, le=4096)
    cls_agnostic_mask: bool = False  # one mask channel for every class
    loss_weight: float = 1.0
    mask_threshold: float = ranged(0.5, ge=0, le=1)  # pasted probability >= this is inside the mask
    # "aligned": detectron2's paste (continuous box); "torchvision": its integer-box paste
    paste: Literal["aligned", "torchvision"] = "aligned"
    draw_alpha: float = ranged(0.5, ge=0, le=1)


class MaskHead(Head):
    stage = "instance"
    # foreground RoIs whose GT carries a mask (box-only annotations do not train the mask head)
    train_rois = "foreground_with_targets"
    coco_iou_type = "segm"
    draw_order = 20  # under boxes and keypoints

    def __init__(self, cfg: MaskHeadConfig, ctx: HeadContext, name: str = "mask") -> None:
        super().__init__(name, RoIInput(resolution=cfg.pooler_resolution))
        self.cfg = cfg
        self.mask_resolution = 2 * cfg.pooler_resolution
        channels = ctx.in_channels
        self.convs = nn.ModuleList()
        for _ in range(cfg.num_conv):
            self.convs.append(nn.Conv2d(channels, cfg.conv_dim, 3, padding=1))
            channels = cfg.conv_dim
        self.deconv = nn.ConvTranspose2d(channels, cfg.conv_dim, 2, stride=2)
        out_channels = 1 if cfg.cls_agnostic_mask else ctx.num_classes + 1
        self.predictor = nn.Conv2d(cfg.conv_dim, out_channels, 1)
        for layer in [*self.convs, self.deconv]:  # detectron2's MSRA fill
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layer.bias)
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.zeros_(self.predictor.bias)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        for conv in self.convs:
            x = F.relu(conv(x))                   # (R, 256, S, S)
        x = F.relu(self.deconv(x))                # (R, 256, S, S) -> (R, 256, M, M)
        return {"mask_logits": self.predictor(x)}  # (R, C+1, M, M)

    # -- training -------------------------------------------------------------------------------
    def target_codec(self) -> MaskCodec:
        return MaskCodec()

    def loss(self, outputs: dict[str, torch.Tensor], rois: list[Any],
             targets: list[ImageTargets]) -> dict[str, torch.Tensor]:
        logits = outputs["mask_logits"]
        keep, classes, gt_masks = build_roi_mask_targets(
            rois, [t.heads[self.name] for t in targets], self.mask_resolution)
        loss = mask_rcnn_loss(logits[keep.to(logits.device)], classes, gt_masks)
        return {f"loss_{self.name}": loss * self.cfg.loss_weight}

    # -- inference ------------------------------------------------------------------------------
    def postprocess(self, outputs: dict[str, torch.Tensor],
                    detections: list[dict[str, torch.Tensor]]) -> None:
        classes = torch.cat([d["pred_classes"] for d in detections])
        probabilities = select_class_channel(outputs["mask_logits"], classes).sigmoid()
        per_image = probabilities.split([len(d["pred_boxes"]) for d in detections])
        for det, masks in zip(detections, per_image):
            det["pred_masks"] = masks[:, None]  # (D, M, M) -> (D, 1, M, M)

    def finalize(self, detection: dict[str, torch.Tensor], scale_xy: tuple[float, float],
                 original_size: tuple[int, int]) -> None:
        probabilities = detection["pred_masks"]
        if probabilities.dim() == 4:  # (D, 1, M, M) -> (D, M, M)
            probabilities = probabilities[:, 0]
        detection["pred_masks"] = paste_masks(
            probabilities, detection["pred_boxes"], original_size,
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
        colors = [_color(c) for c in detection["pred_classes"].tolist()]
        return draw_segmentation_masks(image, masks.to(image.device), alpha=self.cfg.draw_alpha,
                                       colors=colors)

    def export_outputs(self, outputs: dict[str, torch.Tensor],
                       detections: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        classes = detections["pred_classes"]                      # (N, K)
        probabilities = select_class_channel(outputs["mask_logits"], classes.reshape(-1)).sigmoid()
        # (N*K, M, M) -> (N, K, M, M)
        return {"pred_masks": probabilities.reshape(*classes.shape, *probabilities.shape[-2:])}

    def import_outputs(self, exported: dict[str, torch.Tensor],
                       detection: dict[str, torch.Tensor]) -> None:
        """The inverse of `export_outputs` for one image's valid rows (the deploy decoder)."""
        detection["pred_masks"] = exported["pred_masks"][:, None]  # (D, M, M) -> (D, 1, M, M)


def _color(label: int) -> tuple[int, int, int]:
    return ((37 * label) % 255, (17 * label + 90) % 255, (91 * label + 160) % 255)
