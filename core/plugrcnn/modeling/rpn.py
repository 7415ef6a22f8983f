"""Region Proposal Network (Ren et al., 2015) over an FPN.

Shape shorthand:
    N: number of images in the batch
    L: number of feature levels (P2..P6)
    C: channels of the feature maps
    Hl, Wl: height and width of level l
    A: anchors per location
    R: anchors of one image over all levels, sum over l of Hl*Wl*A
    K: proposals kept for one image (<= post_nms_topk)

Objectness and deltas are flattened location-major then anchor, the order the anchor generator
uses, and levels are concatenated; proposal selection mirrors torchvision's filter_proposals
step for step, so the same weights give the same proposals in the same order.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import batched_nms, box_iou, clip_boxes_to_image, remove_small_boxes

from plugrcnn.errors import PlugrcnnError
from plugrcnn.heads.precision import in_float32
from plugrcnn.modeling.anchors import AnchorGenerator
from plugrcnn.modeling.box_coder import BoxCoder
from plugrcnn.modeling.matcher import Matcher
from plugrcnn.modeling.sampler import subsample_labels

LOSS_NORMALIZATIONS = ("sampled", "batch")
BOX_LOSS_TYPES = ("smooth_l1",)


class RPNHead(nn.Module):
    """Shared 3x3 conv(s) + ReLU, then 1x1 convs for A objectness logits and A*4 deltas."""

    def __init__(self, in_channels: int, num_anchors: int, conv_depth: int = 1) -> None:
        super().__init__()
        self.conv = nn.ModuleList(
            nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1) for _ in range(conv_depth)
        )
        self.objectness_logits = nn.Conv2d(in_channels, num_anchors, kernel_size=1)
        self.anchor_deltas = nn.Conv2d(in_channels, num_anchors * 4, kernel_size=1)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.normal_(layer.weight, std=0.01)
                nn.init.constant_(layer.bias, 0.0)

    def forward(self, features: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """features: (N, C, Hl, Wl) per level -> objectness (N, A, Hl, Wl), deltas (N, A*4, Hl, Wl)."""
        objectness, deltas = [], []
        for feature in features:
            hidden = feature
            for conv in self.conv:
                hidden = F.relu(conv(hidden), inplace=True)  # a conv output: nothing else reads it
            objectness.append(in_float32(self.objectness_logits, hidden))
            deltas.append(in_float32(self.anchor_deltas, hidden))
        return objectness, deltas


def flatten_objectness(objectness: Sequence[Tensor]) -> Tensor:
    """Per-level (N, A, Hl, Wl) logits -> (N, R)."""
    # (N, A, H, W) -> (N, H, W, A) -> (N, H*W*A)
    return torch.cat([o.permute(0, 2, 3, 1).flatten(1) for o in objectness], dim=1)


def flatten_deltas(deltas: Sequence[Tensor]) -> Tensor:
    """Per-level (N, A*4, Hl, Wl) deltas -> (N, R, 4)."""
    flat = []
    for d in deltas:
        n, _, h, w = d.shape
        # (N, A*4, H, W) -> (N, A, 4, H, W) -> (N, H, W, A, 4) -> (N, H*W*A, 4)
        flat.append(d.view(n, -1, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4))
    return torch.cat(flat, dim=1)


def _top_anchors_per_level(objectness: Tensor, num_anchors_per_level: Sequence[int], topk: int) -> Tensor:
    """(N, R) logits -> (N, sum of min(topk, Rl)) indices into R, best first within each level."""
    top_idx, offset = [], 0
    for level_logits in objectness.split(list(num_anchors_per_level), dim=1):
        count = level_logits.shape[1]
        _, idx = level_logits.topk(min(topk, count), dim=1)
        top_idx.append(idx + offset)
        offset += count
    return torch.cat(top_idx, dim=1)


def level_ids_of(num_anchors_per_level: Sequence[int], device: torch.device) -> Tensor:
    """(R,) int64: the level of each anchor."""
    counts = torch.tensor(list(num_anchors_per_level), device=device)
    return torch.repeat_interleave(torch.arange(len(counts), device=device), counts)


def select_proposals(
    proposals: Tensor,
    objectness: Tensor,
    num_anchors_per_level: Sequence[int],
    image_sizes: Sequence[tuple[int, int]],
    *,
    pre_nms_topk: int,
    post_nms_topk: int,
    nms_thresh: float,
    min_box_size: float,
    score_thresh: float,
) -> tuple[list[Tensor], list[Tensor]]:
    """Pick the proposals of each image from all decoded anchors.

    Args:
        proposals: (N, R, 4) decoded boxes; objectness: (N, R) logits.
        num_anchors_per_level: Hl*Wl*A of each level (they sum to R).
        image_sizes: (h, w) of each un-padded image, for clipping.

    Returns:
        boxes (K, 4) and sigmoid scores (K,) per image, best first.
    """
    objectness = objectness.detach()
    top_idx = _top_anchors_per_level(objectness, num_anchors_per_level, pre_nms_topk)  # (N, T)
    batch_idx = torch.arange(proposals.shape[0], device=proposals.device)[:, None]
    top_levels = level_ids_of(num_anchors_per_level, proposals.device)[top_idx]  # (N, T)
    return select_top_proposals(
        proposals[batch_idx, top_idx], objectness[batch_idx, top_idx], top_levels, image_sizes,
        post_nms_topk=post_nms_topk, nms_thresh=nms_thresh, min_box_size=min_box_size,
        score_thresh=score_thresh)


def select_top_proposals(
    top_boxes: Tensor,
    top_logits: Tensor,
    top_levels: Tensor,
    image_sizes: Sequence[tuple[int, int]],
    *,
    post_nms_topk: int,
    nms_thresh: float,
    min_box_size: float,
    score_thresh: float,
) -> tuple[list[Tensor], list[Tensor]]:
    """The per-image end of `select_proposals`, on the top-k anchors of each level already
    picked: boxes (N, T, 4), logits (N, T), levels (N, T) -> boxes (K, 4), scores (K,) per image."""
    top_scores = torch.sigmoid(top_logits)
    boxes_per_image, scores_per_image = [], []
    for boxes, scores, levels, image_size in zip(top_boxes, top_scores, top_levels, image_sizes):
        boxes = clip_boxes_to_image(boxes, (int(image_size[0]), int(image_size[1])))
        keep = remove_small_boxes(boxes, min_box_size)
        boxes, scores, levels = boxes[keep], scores[keep], levels[keep]
        keep = torch.where(scores >= score_thresh)[0]
        boxes, scores, levels = boxes[keep], scores[keep], levels[keep]
        # NMS within each level only, as the FPN RPN is trained to do.
        keep = batched_nms(boxes, scores, levels, nms_thresh)[:post_nms_topk]
        boxes_per_image.append(boxes[keep])
        scores_per_image.append(scores[keep])
    return boxes_per_image, scores_per_image


def box_regression_loss(pred: Tensor, target: Tensor, smooth_l1_beta: float) -> Tensor:
    """Summed smooth-L1 of (P, 4) deltas; beta ~ 0 is plain L1 (detectron2's default)."""
    if smooth_l1_beta < 1e-5:
        return (pred - target).abs().sum()
    return F.smooth_l1_loss(pred, target, beta=smooth_l1_beta, reduction="sum")


def label_and_sample_anchors(
    anchors: Tensor,
    gt_boxes: Sequence[Tensor],
    *,
    matcher: Matcher,
    batch_size_per_image: int,
    positive_fraction: float,
) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
    """Sample anchors (R, 4) for each image's loss.

    Returns per image: sampled positive indices, sampled negative indices (into R), and the
    matched GT box (P, 4) of each sampled positive.
    """
    pos_per_image, neg_per_image, matched_boxes_per_image = [], [], []
    for boxes in gt_boxes:
        boxes = boxes.to(anchors.dtype)
        matched_idx, labels = matcher(box_iou(boxes, anchors))  # (G, R) -> (R,), (R,)
        pos_idx, neg_idx = subsample_labels(labels, batch_size_per_image, positive_fraction, bg_label=0)
        pos_per_image.append(pos_idx)
        neg_per_image.append(neg_idx)
        matched_boxes_per_image.append(boxes[matched_idx[pos_idx]])
    return pos_per_image, neg_per_image, matched_boxes_per_image


def rpn_losses(
    objectness: Tensor,
    deltas: Tensor,
    anchors: Tensor,
    gt_boxes: Sequence[Tensor],
    *,
    matcher: Matcher,
    box_coder: BoxCoder,
    batch_size_per_image: int,
    positive_fraction: float,
    smooth_l1_beta: float,
    normalization: str,
) -> dict[str, Tensor]:
    """Objectness (binary cross-entropy) and box (smooth-L1) losses on sampled anchors.

    Args:
        objectness: (N, R) logits; deltas: (N, R, 4); anchors: (R, 4), shared by all images.
        normalization: "sampled" divides both sums by the number of sampled anchors in the
            batch (torchvision); "batch" by batch_size_per_image * N (detectron2).
    """
    num_images, num_anchors = objectness.shape
    pos_idx, neg_idx, matched_boxes = label_and_sample_anchors(
        anchors, gt_boxes, matcher=matcher, batch_size_per_image=batch_size_per_image,
        positive_fraction=positive_fraction,
    )
    # Per-image indices -> indices into the (N*R,) flattened batch
    offsets = [i * num_anchors for i in range(num_images)]
    pos_flat = torch.cat([p + o for p, o in zip(pos_idx, offsets)])
    neg_flat = torch.cat([n + o for n, o in zip(neg_idx, offsets)])
    sampled_flat = torch.cat([pos_flat, neg_flat])

    targets = box_coder.encode(torch.cat(matched_boxes), anchors[torch.cat(pos_idx)])
    loc_sum = box_regression_loss(deltas.reshape(-1, 4)[pos_flat], targets, smooth_l1_beta)
    cls_targets = torch.cat([torch.ones_like(pos_flat), torch.zeros_like(neg_flat)]).to(objectness.dtype)
    cls_sum = F.binary_cross_entropy_with_logits(
        objectness.reshape(-1)[sampled_flat], cls_targets, reduction="sum"
    )
    if normalization == "sampled":
        normalizer = max(sampled_flat.numel(), 1)
    else:
        normalizer = batch_size_per_image * num_images
    return {"loss_rpn_cls": cls_sum / normalizer, "loss_rpn_loc": loc_sum / normalizer}


class RPN(nn.Module):
    """Anchors + head + proposal selection (+ losses in training).

    Args (keyword-only):
        in_channels: channels of the FPN features (used to build the default head).
        anchor_generator: the anchors of every level.
        box_coder: delta <-> box transform; default weights (1, 1, 1, 1).
        head: default RPNHead(in_channels, anchors per location).
        matcher: default IoU thresholds 0.3 / 0.7 with low-quality matches.
        batch_size_per_image, positive_fraction: anchor sampling for the losses.
        pre_nms_topk_*: top-scoring anchors kept per level before NMS.
        post_nms_topk_*: proposals kept per image after NMS.
        nms_thresh: IoU threshold of the per-level NMS.
        min_box_size: boxes narrower or lower than this (pixels) are dropped (torchvision 1e-3).
        score_thresh: proposals with sigmoid(objectness) below this are dropped.
        box_loss_type, smooth_l1_beta: box loss; beta 1/9 torchvision, 0 (L1) detectron2.
        loss_normalization: "sampled" (torchvision) or "batch" (detectron2).

    Losses are unweighted; weights are set in one place, ``model.loss_weights``.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        anchor_generator: AnchorGenerator,
        box_coder: BoxCoder | None = None,
        head: RPNHead | None = None,
        matcher: Matcher | None = None,
        batch_size_per_image: int = 256,
        positive_fraction: float = 0.5,
        pre_nms_topk_train: int = 2000,
        pre_nms_topk_test: int = 1000,
        post_nms_topk_train: int = 2000,
        post_nms_topk_test: int = 1000,
        nms_thresh: float = 0.7,
        min_box_size: float = 0.0,
        score_thresh: float = 0.0,
        box_loss_type: str = "smooth_l1",
        smooth_l1_beta: float = 0.0,
        loss_normalization: str = "batch",
    ) -> None:
        super().__init__()
        if box_loss_type not in BOX_LOSS_TYPES:
            raise PlugrcnnError(f"rpn: box_loss_type {box_loss_type!r} unknown; use one of {BOX_LOSS_TYPES}")
        if loss_normalization not in LOSS_NORMALIZATIONS:
            raise PlugrcnnError(
                f"rpn: loss_normalization {loss_normalization!r} unknown; use one of {LOSS_NORMALIZATIONS}"
            )
        self.anchor_generator = anchor_generator
        self.box_coder = box_coder if box_coder is not None else BoxCoder((1.0, 1.0, 1.0, 1.0))
        num_anchors = anchor_generator.num_anchors_per_location
        self.head = head if head is not None else RPNHead(in_channels, num_anchors)
        self.matcher = matcher if matcher is not None else Matcher([0.3, 0.7], [0, -1, 1], True)
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        self.pre_nms_topk_train, self.pre_nms_topk_test = pre_nms_topk_train, pre_nms_topk_test
        self.post_nms_topk_train, self.post_nms_topk_test = post_nms_topk_train, post_nms_topk_test
        self.nms_thresh = nms_thresh
        self.min_box_size = min_box_size
        self.score_thresh = score_thresh
        self.smooth_l1_beta = smooth_l1_beta
        self.loss_normalization = loss_normalization

    def forward(
        self,
        features: Sequence[Tensor],
        image_sizes: Sequence[tuple[int, int]],
        padded_size: tuple[int, int],
        gt_boxes: Sequence[Tensor] | None = None,
    ) -> tuple[list[Tensor], dict[str, Tensor]]:
        """features P2..P6 (N, C, Hl, Wl) -> proposals (K, 4) per image, losses in training."""
        objectness_maps, delta_maps = self.head(features)
        feature_sizes = [(int(f.shape[-2]), int(f.shape[-1])) for f in features]
        # anchors and decoding in fp32 at least: under bf16/fp16 autocast the head's outputs are
        # half precision, whose 8-11 bit mantissas would move 1000 px boxes by pixels
        dtype = torch.promote_types(features[0].dtype, torch.float32)
        anchors_per_level = self.anchor_generator(
            feature_sizes, padded_size, device=features[0].device, dtype=dtype
        )
        anchors = torch.cat(anchors_per_level)  # (R, 4)
        objectness = flatten_objectness(objectness_maps).to(dtype)  # (N, R)
        deltas = flatten_deltas(delta_maps).to(dtype)  # (N, R, 4)
        num_anchors_per_level = [a.shape[0] for a in anchors_per_level]
        # Proposals are not differentiated through: the RoI heads treat them as fixed inputs.
        # Only the top-k anchors of each level are decoded (decoding is per box, so the boxes
        # are the same as decoding all R and picking after).
        top_idx = _top_anchors_per_level(objectness.detach(), num_anchors_per_level,
                                         self.pre_nms_topk_train if self.training else self.pre_nms_topk_test)
        batch_idx = torch.arange(objectness.shape[0], device=objectness.device)[:, None]
        top_deltas = deltas.detach()[batch_idx, top_idx]  # (N, T, 4)
        top_boxes = self.box_coder.decode(top_deltas.reshape(-1, 4), anchors[top_idx.reshape(-1)])
        boxes, _ = select_top_proposals(
            top_boxes.view(top_idx.shape[0], -1, 4), objectness.detach()[batch_idx, top_idx],
            level_ids_of(num_anchors_per_level, objectness.device)[top_idx], image_sizes,
            post_nms_topk=self.post_nms_topk_train if self.training else self.post_nms_topk_test,
            nms_thresh=self.nms_thresh, min_box_size=self.min_box_size, score_thresh=self.score_thresh,
        )

        losses: dict[str, Tensor] = {}
        if self.training and gt_boxes is not None:
            losses = rpn_losses(
                objectness, deltas, anchors, gt_boxes, matcher=self.matcher, box_coder=self.box_coder,
                batch_size_per_image=self.batch_size_per_image, positive_fraction=self.positive_fraction,
                smooth_l1_beta=self.smooth_l1_beta, normalization=self.loss_normalization,
            )
        return boxes, losses
