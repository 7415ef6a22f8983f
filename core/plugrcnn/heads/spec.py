"""The records of the head contract: what a plugin yields (HeadSpec), what a head reads
(RoIInput), what the core tells a head when it is built (HeadContext), and what it tells a head's
target codec about the data (DatasetInfo).

This module imports nothing of the head base class, so `plugrcnn.heads.base` can import it and no
import cycle exists.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from plugrcnn.heads.base import Head
    from plugrcnn.heads.targets import TargetCodec


@dataclass(frozen=True)
class RoIInput:
    """What a head's `forward` consumes as its first argument.

    Either RoIAlign features at `resolution` x `resolution` (heads with equal input share one
    RoIAlign call per step), or the output of a shared `trunk` of the core (``"box_fc"``: the
    2-fc box representation that the class and box heads both read). Heads with equal RoIInput
    form one group: the record itself is the group's key, in the eager model and the deploy graph.
    """
    resolution: int = 14
    trunk: str | None = None

    def __str__(self) -> str:
        return f"trunk {self.trunk}" if self.trunk else f"RoIAlign {self.resolution}x{self.resolution}"


@dataclass(frozen=True)
class HeadContext:
    """What the core tells a head when it is built.

    required: the resolved config (the head's own dataclass instance) of every head this one
        requires, directly or not, by name; a head compares its settings with theirs and raises
        PlugrcnnError naming both keys on a mismatch (``model.heads.<name>.<key>``).
    """
    num_classes: int                        # foreground classes; logits have num_classes + 1
    in_channels: int                        # channels of the pooled features (FPN width)
    trunk_channels: dict[str, int] = field(default_factory=dict)  # trunk name -> feature size
    class_names: tuple[str, ...] = ()
    pooler_sampling_ratio: int = 0
    pooler_aligned: bool = True
    required: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetInfo:
    """What the training data say about themselves, derived when the data are set up and passed
    to whoever needs it (never written into the config).

    num_classes, class_names, category_ids: label i (1..num_classes) is the COCO category
        ``category_ids[i - 1]`` named ``class_names[i - 1]``.
    categories: the data set's COCO category records in label order (with ``keypoints``,
        ``skeleton`` and other fields a format carries), or () when no data are known (a model
        built for inference).
    source: the file they came from, for messages.
    """
    num_classes: int
    class_names: tuple[str, ...] = ()
    category_ids: tuple[int, ...] = ()
    categories: tuple[dict[str, Any], ...] = ()
    source: str = "config"


@dataclass(frozen=True)
class HeadSpec:
    """One head: its name, config schema, what it needs, and how to build its module.

    name:         the key under ``model.heads`` that enables it; losses are ``loss_<name>[_term]``.
    config_class: a dataclass; the head's config is checked against it (unknown keys are errors).
    build:        ``build(head_config, context) -> Head`` (an ``nn.Module``).
    requires:     heads that must be enabled too; they run before this one.
    consumes:     forward outputs of required heads that this head reads, as ``"<head>.<key>"``
                  (e.g. ``"mask.mask_class_logits"``). The core hands them to `forward` in
                  ``rows.consumed`` on this head's own rows, in training, at inference and in
                  the deploy graph.
    target_codec: ``target_codec(head_config, dataset_info) -> TargetCodec | None``: how the
                  head reads its targets from annotations and moves them under resize/flip;
                  None (or no function) if boxes and labels suffice. Called when the data are set
                  up, before any model is built and without one, and again when the model is
                  built (then `dataset_info.categories` may be empty). Check the config against
                  the data here (raise PlugrcnnError naming the key and the file): a mismatch is
                  then reported at setup, not in a data-loader worker.
    """
    name: str
    config_class: type
    build: Callable[[Any, HeadContext], Head]
    requires: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()
    description: str = ""
    target_codec: Callable[[Any, DatasetInfo], TargetCodec | None] | None = None
