"""The keypoint head: RoI features -> one S x S heatmap per keypoint (Mask R-CNN, sec. 5).

Layers: num_conv x (conv3x3 + ReLU), a 4x4 stride-2 deconvolution to K heatmaps, then a bilinear
x up_scale upsampling: 14x14 RoIs give 56x56 heatmaps. The same layout as torchvision's
KeypointRCNNHeads + KeypointRCNNPredictor, so their weights convert one to one.

Shape shorthand: R RoIs, C channels, K keypoints, S heatmap side, D detections of one image.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.utils import draw_keypoints

from plugrcnn.heads import (
    Check,
    Head,
    HeadContext,
    ImageTargets,
    PredictContext,
    RoIInput,
    RoIRows,
    draw_keypoints_on_tensor,
    in_float32,
)
from plugrcnn_keypoint.config import KeypointHeadConfig, resolve_layout
from plugrcnn_keypoint.decode import heatmaps_to_keypoints, pixels_per_cell
from plugrcnn_keypoint.loss import keypoint_rcnn_loss

COCO_VISIBLE = 2  # the v written for every predicted keypoint
SKELETON_COLOR = (255, 255, 255)
SIDE_COLORS = ((64, 128, 255), (255, 64, 64), (255, 220, 0))  # left blue, right red, centre yellow


def keypoint_sides(names: tuple[str, ...], flip_index: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """(left, right, centre) (K,) bool masks. A keypoint in a flip pair is left if its name says
    "left" (else the first of its pair is); one that flips to itself is centre."""
    left = torch.zeros(len(names), dtype=torch.bool)
    right = torch.zeros(len(names), dtype=torch.bool)
    for i, j in enumerate(flip_index):
        if i == j:
            continue
        is_left = "left" in names[i].lower() if "left" in (names[i] + names[j]).lower() else i < j
        (left if is_left else right)[i] = True
    return left, right, ~(left | right)


class KeypointHead(Head):
    stage = "instance"
    train_rois = "foreground_with_targets"  # foreground RoIs whose GT has a labelled keypoint
    eval_kind = "keypoints"
    draw_order = 90  # over masks and boxes

    def __init__(self, cfg: KeypointHeadConfig, ctx: HeadContext, name: str = "keypoint") -> None:
        super().__init__(name, RoIInput(resolution=cfg.pooler_resolution))
        self.cfg = cfg
        self.layout = resolve_layout(cfg, ctx.num_classes, f"model.heads.{name}")
        channels = [ctx.in_channels] + [cfg.conv_dim] * cfg.num_conv
        self.convs = nn.ModuleList(nn.Conv2d(c_in, c_out, 3, padding=1)
                                   for c_in, c_out in zip(channels[:-1], channels[1:]))
        self.score_lowres = nn.ConvTranspose2d(channels[-1], self.layout.num_keypoints, 4,
                                               stride=2, padding=1)
        for layer in [*self.convs, self.score_lowres]:
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layer.bias)

    @property
    def heatmap_size(self) -> int:
        return self.cfg.pooler_resolution * 2 * self.cfg.up_scale

    def forward(self, x: torch.Tensor, rows: RoIRows) -> dict[str, torch.Tensor]:
        for conv in self.convs:
            x = F.relu(conv(x), inplace=True)
        x = in_float32(self.score_lowres, x)  # (R, C, P, P) -> (R, K, 2P, 2P)
        if self.cfg.up_scale != 1:
            x = F.interpolate(x, scale_factor=float(self.cfg.up_scale), mode="bilinear",
                              align_corners=False, recompute_scale_factor=False)
        return {"keypoint_logits": x}  # (R, K, S, S)

    # -- training -------------------------------------------------------------------------------
    def loss(self, outputs: dict[str, torch.Tensor], rois: list[Any],
             targets: list[ImageTargets]) -> dict[str, torch.Tensor]:
        logits = outputs["keypoint_logits"]
        gt = [t.heads[self.name].to(logits.device)[r.matched_gt] for r, t in zip(rois, targets)]
        boxes = [r.boxes for r in rois]
        if not gt:
            return {f"loss_{self.name}": logits.sum() * 0.0}
        loss = keypoint_rcnn_loss(logits, torch.cat(boxes), torch.cat(gt))
        return {f"loss_{self.name}": loss}

    # -- inference ------------------------------------------------------------------------------
    def predict(self, outputs: dict[str, torch.Tensor], rows: RoIRows,
                ctx: PredictContext) -> dict[str, torch.Tensor]:
        """``keypoints`` (D, K, 3) [x, y, score] in network-input pixels. Eager: the exact decode
        (data-dependent search); static (deploy graph): the same decode with fixed shapes, for
        RoIs up to `export_max_roi_size`, searching `export_candidates` cells per keypoint."""
        if not ctx.static:
            return {"keypoints": heatmaps_to_keypoints(outputs["keypoint_logits"], rows.boxes)}
        pixels = pixels_per_cell(float(self.cfg.export_max_roi_size), self.heatmap_size)
        return {"keypoints": heatmaps_to_keypoints(outputs["keypoint_logits"], rows.boxes, num_pixels=pixels,
                                                   num_candidates=self.cfg.export_candidates)}

    def finalize(self, detection: dict[str, torch.Tensor], scale_xy: tuple[float, float],
                 original_size: tuple[int, int]) -> None:
        keypoints = detection["pred_keypoints"]
        scale = keypoints.new_tensor([scale_xy[0], scale_xy[1], 1.0])
        detection["pred_keypoints"] = keypoints * scale

    def has_keypoints(self, classes: torch.Tensor) -> torch.Tensor:
        """(D,) bool: detections of a category with keypoints."""
        if not self.layout.categories:
            return torch.ones_like(classes, dtype=torch.bool)
        return torch.isin(classes, classes.new_tensor(self.layout.categories))

    # -- outputs --------------------------------------------------------------------------------
    def coco_results(self, detection: dict[str, torch.Tensor], records: list[dict[str, Any]]) -> None:
        """`keypoints` [x, y, v] * K (v = 2 for every keypoint; COCOeval reads only x, y) on the
        records of categories with keypoints; `score` stays the detection's score."""
        keypoints = detection["pred_keypoints"].detach().float().cpu()
        xy = keypoints[..., :2] - self.cfg.annotation_pixel_offset
        flat = torch.cat([xy, torch.full_like(xy[..., :1], COCO_VISIBLE)], dim=-1).flatten(1)
        wanted = self.has_keypoints(detection["pred_classes"].cpu()).tolist()
        for record, values, keep in zip(records, flat.tolist(), wanted):
            if keep:
                record["keypoints"] = values

    def coco_eval_params(self) -> dict[str, Any]:
        return {"kpt_oks_sigmas": list(self.layout.oks_sigmas)}

    def coco_eval_labels(self) -> tuple[int, ...] | None:
        return tuple(self.layout.categories) or None

    def draw(self, image: torch.Tensor, detection: dict[str, torch.Tensor]) -> torch.Tensor:
        """Skeleton in white, then left keypoints blue, right red, the others yellow (a wrong
        flip pair shows as swapped colours); GT (``pred_keypoints_visible``) draws only v > 0."""
        keep = self.has_keypoints(detection["pred_classes"]) & (detection["scores"] >= self.cfg.draw_score_thresh)
        if not bool(keep.any()):
            return image
        if image.is_cuda:  # a GPU frame stays on the GPU
            return draw_keypoints_on_tensor(image, detection["pred_keypoints"][keep][..., :2],
                                            list(self.layout.skeleton) or None, (255, 64, 64), radius=3, width=2)
        points = detection["pred_keypoints"][keep][..., :2].cpu()  # (D', K, 2)
        visible = detection.get("pred_keypoints_visible")
        visible = torch.ones(points.shape[:2], dtype=torch.bool) if visible is None else visible[keep].cpu()
        image = draw_keypoints(image.cpu(), points, connectivity=list(self.layout.skeleton) or None,
                               colors=SKELETON_COLOR, radius=1, width=2, visibility=visible)
        for side, color in zip(keypoint_sides(self.layout.names, self.layout.flip_index), SIDE_COLORS):
            if side.any():
                image = draw_keypoints(image, points, colors=color, radius=3,
                                       visibility=visible & side[None])
        return image

    def ground_truth_fields(self, target: torch.Tensor, height: int, width: int) -> dict[str, torch.Tensor]:
        # target (G, K, 3) x, y, v; v > 0 labelled
        return {"pred_keypoints": target, "pred_keypoints_visible": target[..., 2] > 0}

    def output_checks(self) -> dict[str, Check]:
        return {"keypoints": "points"}
