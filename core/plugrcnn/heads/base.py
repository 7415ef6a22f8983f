"""The base class of every head. Built-in heads use exactly what a third party uses.

A head is an ``nn.Module``. Its ``forward(x, rows)`` maps RoI features and the rows they belong
to (`RoIRows`: boxes, classes, and the outputs of heads it consumes) to a dict of tensors.
Everything else runs outside ``forward``, called by the core at fixed points:

training:   ``training rows`` (`train_rois`) -> ``forward`` -> ``loss`` (called by the criterion,
            outside the model's forward)
inference:  ``forward`` -> (roi-stage heads) ``candidates`` -> the core selects detections ->
            ``predict`` on the detection rows -> ``finalize`` (to original image coordinates)
deploy:     the same ``forward`` and ``predict`` (``ctx.static``) inside the exported graph; its
            outputs are ``predict``'s tensors, so runtimes only ``finalize``
outputs:    ``coco_results`` (records), ``kind_scores`` (per-kind scores), ``evaluate`` (a kind
            COCOeval does not know), ``draw`` (pictures), ``output_checks`` (export verify)

Stages: a ``"roi"`` head runs on every RoI (sampled in training, proposals at inference) and may
contribute the per-class ``scores``/``boxes`` from which the core selects detections (class, box);
an ``"instance"`` head runs on foreground RoIs in training and on the final detections at
inference (mask, keypoint).

Detections are per-image dicts of tensors: ``pred_boxes`` (D, 4), ``scores`` (D,),
``pred_classes`` (D,) int64 labels, ``roi_index`` (D,) index into the concatenated proposals, and
``pred_<key>`` for every tensor ``<key>`` a head's ``predict`` returns.
"""
from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import nn

from plugrcnn.heads.rows import PredictContext, RoIRows
from plugrcnn.heads.spec import RoIInput
from plugrcnn.heads.targets import ImageTargets, TargetCodec

# Kinds COCOeval evaluates; a head with another `eval_kind` implements `evaluate`.
COCO_KINDS = ("bbox", "segm", "keypoints")
# How `plugrcnn export --verify` compares a predicted field with PyTorch's (see output_checks).
Check = Literal["binary_mask", "points", "value", "skip"]


class Head(nn.Module):
    """Subclass this in a plugin. Override what your head does; the defaults do nothing."""

    stage: ClassVar[Literal["roi", "instance"]] = "instance"
    # which sampled RoIs the head trains on; "consumed": the rows of the heads it consumes
    train_rois: ClassVar[Literal["all", "foreground", "foreground_with_targets", "consumed"]] = "foreground"
    eval_kind: ClassVar[str | None] = None  # "bbox" | "segm" | "keypoints" | your own | None
    draw_order: ClassVar[int] = 50           # lower draws first (masks under boxes)

    def __init__(self, name: str, roi_input: RoIInput) -> None:
        super().__init__()
        self.name = name
        self.roi_input = roi_input

    # -- tensors only ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, rows: RoIRows) -> dict[str, torch.Tensor]:  # pragma: no cover
        """x: (R, ...) this head's `roi_input` on `rows`. Returns named (R, ...) tensors."""
        raise NotImplementedError

    # -- training -------------------------------------------------------------------------------
    def target_codec(self) -> TargetCodec | None:
        """The codec its `HeadSpec.target_codec` built for this head (set by the core when the
        model is built); None if boxes and labels suffice. Heads do not override this: the codec
        comes from the spec, so the data layer never needs a built model."""
        return getattr(self, "_spec_codec", None)

    def loss(self, outputs: dict[str, torch.Tensor], rois: list[Any],
             targets: list[ImageTargets]) -> dict[str, torch.Tensor]:
        """Unweighted named losses (``loss_<name>[_term]``) on the RoIs the head ran on
        (per image, `SampledRoIs`). Weights are set in one place: ``model.loss_weights``."""
        return {}

    # -- inference ------------------------------------------------------------------------------
    def candidates(self, outputs: dict[str, torch.Tensor], proposals: list[torch.Tensor],
                   image_sizes: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
        """Roi-stage heads: ``scores`` (R, C+1) and/or ``boxes`` (R, C+1, 4) over all proposals."""
        return {}

    def predict(self, outputs: dict[str, torch.Tensor], rows: RoIRows,
                ctx: PredictContext) -> dict[str, torch.Tensor]:
        """The tensor part of post-processing, on detection rows: the head's final results.

        `outputs` is this head's forward output on the detections (`rows`: their boxes, predicted
        classes and scores). Return ``{key: (R, ...)}``; each becomes the detection field
        ``pred_<key>`` (eager) and the graph output ``<head>.<key>`` shaped (N, K, ...) (deploy).
        The eager model and the deploy graph both run this one function; with ``ctx.static``
        every shape must follow from the input shapes.
        """
        return {}

    def finalize(self, detection: dict[str, torch.Tensor], scale_xy: tuple[float, float],
                 original_size: tuple[int, int]) -> None:
        """Move this head's fields of one image's detections to original-image coordinates
        (outside any graph: mask paste, coordinate scaling). The core has already scaled
        ``pred_boxes`` by `scale_xy` (original / network input)."""

    # -- outputs --------------------------------------------------------------------------------
    def coco_results(self, detection: dict[str, torch.Tensor], records: list[dict[str, Any]]) -> None:
        """Add this head's fields to the COCO result records of one image (one per detection)."""

    def kind_scores(self) -> dict[str, str]:
        """Evaluation kind -> the ``predict`` key holding this head's score for that kind.

        E.g. ``{"segm": "mask_score"}``: records get ``scores: {"segm": ...}`` beside ``score``,
        and that kind is evaluated with it (and, for comparison, with the detection score), while
        every other kind keeps the detection score."""
        return {}

    def coco_eval_params(self) -> dict[str, Any]:
        """Attributes set on ``COCOeval.params`` for ``eval_kind`` (e.g. ``kpt_oks_sigmas``)."""
        return {}

    def coco_eval_labels(self) -> tuple[int, ...] | None:
        """The labels this head predicts for (its evaluation covers only their categories);
        None: every label."""
        return None

    def evaluate(self, ground_truth: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, float]:
        """Metrics of an `eval_kind` COCOeval does not know, from the COCO ground truth (a COCO
        dict: images, annotations, categories) and the result records (with ``image_id``).
        Returns ``{metric name: value}``; printed by ``plugrcnn eval`` beside AP."""
        raise NotImplementedError(f"head '{self.name}': eval_kind {self.eval_kind!r} needs evaluate()")

    def draw(self, image: torch.Tensor, detection: dict[str, torch.Tensor]) -> torch.Tensor:
        """Draw this head's predictions on a uint8 (3, H, W) image; return the new image."""
        return image

    def ground_truth_fields(self, target: Any, height: int, width: int) -> dict[str, torch.Tensor]:
        """This head's targets of one image (from its `target_codec`, in the coordinates of the
        (height, width) image) as detection fields ``{"pred_<key>": (G, ...)}`` that `draw`
        understands, so ``plugrcnn show-data`` and evaluation pictures draw GT like predictions.
        Default: nothing (boxes and labels are drawn by the heads that own them)."""
        return {}

    def output_checks(self) -> dict[str, Check]:
        """How export verification compares each ``predict`` key with PyTorch (after finalize):
        ``binary_mask`` (IoU of pasted masks), ``points`` ((..., 3) x, y, score: pixel distance),
        ``value`` (relative difference, the default) or ``skip``."""
        return {}
