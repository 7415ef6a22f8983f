"""plugrcnn's public API for head authors: everything a head plugin needs, in one module.

A plugin imports from here (and from ``plugrcnn.testing`` in its tests) and nowhere else in
plugrcnn; what is exported here is kept stable. See docs/writing-a-head.md.

- the contract: `Head` (subclass it), `HeadSpec` (yield it from ``plugrcnn_register_heads``),
  `HeadContext` (what `build` receives), `RoIInput` (what `forward` reads), `RoIRows` (the rows
  `forward` / `predict` run on), `PredictContext`, `hookimpl`;
- training data: `SampledRoIs` (what `loss` gets per image), `ImageTargets`, `TargetCodec`
  (built by `HeadSpec.target_codec` from the head's config and the `DatasetInfo`), and
  the geometric ops a codec moves its targets with (`ResizeOp`, `HFlipOp`, `transform_boxes`,
  `transform_points`, `transform_polygons`, `transform_rle`, `transform_masks`);
- helpers heads share: `BoxCoder`, `class_color`, `in_float32` (a head's output layer in
  float32 under mixed precision), `draw_boxes_on_tensor` and
  `draw_keypoints_on_tensor` (drawing on the image's device, the GPU included);
- weights: `ConvertedWeights` (what ``plugrcnn_convert_weights`` returns: keys + the source
  keys used);
- configs: `ranged` (a dataclass field with its valid range, checked when the config loads);
- errors: `PlugrcnnError` (one line for the user, naming the key).
"""
from __future__ import annotations

from plugrcnn.config.ranges import ranged
from plugrcnn.convert import ConvertedWeights
from plugrcnn.data.transforms import (
    HFlipOp,
    ResizeOp,
    transform_boxes,
    transform_masks,
    transform_points,
    transform_polygons,
    transform_rle,
)
from plugrcnn.errors import PlugrcnnError
from plugrcnn.heads.base import COCO_KINDS, Check, Head
from plugrcnn.heads.colors import class_color
from plugrcnn.heads.precision import in_float32
from plugrcnn.heads.rows import PredictContext, RoIRows
from plugrcnn.heads.spec import DatasetInfo, HeadContext, HeadSpec, RoIInput
from plugrcnn.heads.targets import ImageTargets, TargetCodec
from plugrcnn.inference.tensor_draw import draw_boxes_on_tensor, draw_keypoints_on_tensor
from plugrcnn.modeling.box_coder import BoxCoder
from plugrcnn.modeling.sampler import SampledRoIs
from plugrcnn.plugins.hookspecs import hookimpl

__all__ = [
    "COCO_KINDS", "BoxCoder", "Check", "ConvertedWeights", "DatasetInfo", "HFlipOp", "Head", "HeadContext", "HeadSpec", "ImageTargets",
    "PlugrcnnError", "PredictContext", "ResizeOp", "RoIInput", "RoIRows", "SampledRoIs",
    "TargetCodec", "class_color", "draw_boxes_on_tensor", "draw_keypoints_on_tensor", "hookimpl", "in_float32", "ranged", "transform_boxes", "transform_masks",
    "transform_points", "transform_polygons", "transform_rle",
]
