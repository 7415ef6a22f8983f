"""The base class of every head. Built-in heads use exactly what a third party uses.

A head is an ``nn.Module`` whose ``forward`` maps a tensor of RoI features to a dict of tensors.
Everything else it does runs outside ``forward`` and is called by the core at fixed points:

training:   ``training_roi_mask`` -> ``forward`` -> ``loss``
inference:  ``forward`` -> (roi stage) ``candidates`` -> core selects detections ->
            ``postprocess`` -> ``finalize`` (to original image coordinates)
outputs:    ``coco_results`` (records), ``draw`` (pictures), ``export_outputs`` (deploy graph) and
            its inverse ``import_outputs`` (deploy runtimes, before ``finalize``)

Stages: an ``"roi"`` head runs on every RoI (sampled in training, proposals at inference) and may
contribute the per-class ``scores``/``boxes`` from which the core selects detections (class, box);
an ``"instance"`` head runs on foreground RoIs in training and on the final detections at
inference (mask, keypoint).

Detections are per-image dicts of tensors: ``pred_boxes`` (D, 4), ``scores`` (D,),
``pred_classes`` (D,) int64 labels, ``roi_index`` (D,) index into that image's proposals, and
whatever ``pred_*`` fields the heads add.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from plugrcnn.heads.targets import ImageTargets, TargetCodec
from plugrcnn.plugins.spec import RoIInput


@dataclass
class HeadContext:
    """What the core tells a head when it is built."""
    num_classes: int                        # foreground classes; logits have num_classes + 1
    in_channels: int                        # channels of the pooled features (FPN width)
    trunk_channels: dict[str, int] = field(default_factory=dict)  # trunk name -> feature size
    class_names: tuple[str, ...] = ()
    pooler_sampling_ratio: int = 0
    pooler_aligned: bool = True


class Head(nn.Module):
    """Subclass this in a plugin. Override what your head does; the defaults do nothing."""

    stage: ClassVar[Literal["roi", "instance"]] = "instance"
    # which sampled RoIs the head trains on
    train_rois: ClassVar[Literal["all", "foreground", "foreground_with_targets"]] = "foreground"
    coco_iou_type: ClassVar[str | None] = None  # "bbox" | "segm" | "keypoints" | your own | None
    draw_order: ClassVar[int] = 50               # lower draws first (masks under boxes)

    def __init__(self, name: str, roi_input: RoIInput) -> None:
        super().__init__()
        self.name = name
        self.roi_input = roi_input

    # -- tensors only ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- training -------------------------------------------------------------------------------
    def target_codec(self) -> TargetCodec | None:
        """Reads this head's targets from COCO annotations; None if boxes and labels suffice."""
        return None

    def loss(self, outputs: dict[str, torch.Tensor], rois: list[Any],
             targets: list[ImageTargets]) -> dict[str, torch.Tensor]:
        """Named losses (``loss_<name>[_term]``) on the RoIs the head ran on (SampledRoIs)."""
        return {}

    # -- inference ------------------------------------------------------------------------------
    def candidates(self, outputs: dict[str, torch.Tensor], proposals: list[torch.Tensor],
                   image_sizes: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
        """Roi-stage heads: ``scores`` (R, C+1) and/or ``boxes`` (R, C+1, 4) over all proposals."""
        return {}

    def postprocess(self, outputs: dict[str, torch.Tensor], detections: list[dict[str, torch.Tensor]]) -> None:
        """Write ``pred_*`` fields into each image's detections (network-input coordinates)."""

    def finalize(self, detection: dict[str, torch.Tensor], scale_xy: tuple[float, float],
                 original_size: tuple[int, int]) -> None:
        """Move this head's fields of one image's detections to original-image coordinates.

        The core has already scaled ``pred_boxes`` by `scale_xy` (original / network input).
        """

    # -- outputs --------------------------------------------------------------------------------
    def coco_results(self, detection: dict[str, torch.Tensor], records: list[dict[str, Any]]) -> None:
        """Add this head's fields to the COCO result records of one image (one per detection)."""

    def coco_eval_params(self) -> dict[str, Any]:
        """Attributes set on ``COCOeval.params`` for ``coco_iou_type`` (e.g. ``kpt_oks_sigmas``)."""
        return {}

    def coco_eval_labels(self) -> tuple[int, ...] | None:
        """The labels this head predicts for (its evaluation covers only their categories);
        None: every label."""
        return None

    def draw(self, image: torch.Tensor, detection: dict[str, torch.Tensor]) -> torch.Tensor:
        """Draw this head's predictions on a uint8 (3, H, W) image; return the new image."""
        return image

    def export_outputs(self, outputs: dict[str, torch.Tensor],
                       detections: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Fixed-size tensors this head adds to the deploy graph. Tensors only (traced).

        `outputs` is this head's forward output on the K detection slots of a batch (K * N rows,
        image-major); `detections` holds ``pred_boxes`` (N, K, 4), ``scores`` (N, K),
        ``pred_classes`` (N, K) and ``valid`` (N, K) bool. Return tensors shaped (N, K, ...),
        e.g. a mask head's (N, K, 28, 28) probabilities of the predicted class.
        """
        return {}

    def import_outputs(self, exported: dict[str, torch.Tensor],
                       detection: dict[str, torch.Tensor]) -> None:
        """The inverse of `export_outputs` for one image's valid rows (used by deploy runtimes).

        Must leave `detection` as `postprocess` would, so `finalize` can follow. The default
        stores tensor ``key`` as field ``key`` if it starts with ``pred_``, else ``pred_<key>``.
        """
        for key, value in exported.items():
            detection[key if key.startswith("pred_") else f"pred_{key}"] = value
