"""Checkpoints laid out as detectron2 writes them, without detectron2.

Key names and shapes follow detectron2's modules (ResNet `BasicStem` / `BottleneckBlock` with the
norm inside each conv as `.norm`, FPN `fpn_lateral{2..5}` / `fpn_output{2..5}`, `StandardRPNHead`,
`FastRCNNConvFCHead` fc1/fc2, `FastRCNNOutputLayers` with background last and C x 4 deltas,
`MaskRCNNConvUpsampleHead`, `KRCNNConvDeconvUpsampleHead`); values are float32 numpy arrays, and
a model-zoo .pkl is ``pickle.dump({"model": ..., "__author__": ...})``.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

# arch -> (blocks per stage res2..res5, groups, width per group, heads)
ARCHS = {
    "mask_rcnn_R_50_FPN_1x": ((3, 4, 6, 3), 1, 64, ("mask",)),
    "mask_rcnn_R_50_FPN_3x": ((3, 4, 6, 3), 1, 64, ("mask",)),
    "mask_rcnn_R_101_FPN_3x": ((3, 4, 23, 3), 1, 64, ("mask",)),
    "mask_rcnn_X_101_32x8d_FPN_3x": ((3, 4, 23, 3), 32, 8, ("mask",)),
    "keypoint_rcnn_R_50_FPN_1x": ((3, 4, 6, 3), 1, 64, ("keypoint",)),
    "keypoint_rcnn_R_50_FPN_3x": ((3, 4, 6, 3), 1, 64, ("keypoint",)),
    "faster_rcnn_R_50_FPN_3x": ((3, 4, 6, 3), 1, 64, ()),
}


def _norm(shapes: dict[str, tuple[int, ...]], prefix: str, channels: int) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        shapes[f"{prefix}.norm.{name}"] = (channels,)


def detectron2_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Every key of the detectron2 model's state dict for `arch`, with its shape."""
    blocks, groups, width, heads = ARCHS[arch]
    shapes: dict[str, tuple[int, ...]] = {"backbone.bottom_up.stem.conv1.weight": (64, 3, 7, 7)}
    _norm(shapes, "backbone.bottom_up.stem.conv1", 64)
    in_channels, stage_channels = 64, []
    for stage, count in enumerate(blocks, start=2):
        bottleneck = groups * width * 2 ** (stage - 2)
        out = 256 * 2 ** (stage - 2)
        for i in range(count):
            p = f"backbone.bottom_up.res{stage}.{i}"
            if i == 0:
                shapes[f"{p}.shortcut.weight"] = (out, in_channels, 1, 1)
                _norm(shapes, f"{p}.shortcut", out)
            shapes[f"{p}.conv1.weight"] = (bottleneck, in_channels if i == 0 else out, 1, 1)
            shapes[f"{p}.conv2.weight"] = (bottleneck, bottleneck // groups, 3, 3)
            shapes[f"{p}.conv3.weight"] = (out, bottleneck, 1, 1)
            for k in (1, 2, 3):
                _norm(shapes, f"{p}.conv{k}", bottleneck if k < 3 else out)
        in_channels = out
        stage_channels.append(out)
    for level, channels in zip(range(2, 6), stage_channels):
        shapes[f"backbone.fpn_lateral{level}.weight"] = (256, channels, 1, 1)
        shapes[f"backbone.fpn_lateral{level}.bias"] = (256,)
        shapes[f"backbone.fpn_output{level}.weight"] = (256, 256, 3, 3)
        shapes[f"backbone.fpn_output{level}.bias"] = (256,)
    rpn = "proposal_generator.rpn_head"
    shapes.update({f"{rpn}.conv.weight": (256, 256, 3, 3), f"{rpn}.conv.bias": (256,),
                   f"{rpn}.objectness_logits.weight": (3, 256, 1, 1), f"{rpn}.objectness_logits.bias": (3,),
                   f"{rpn}.anchor_deltas.weight": (12, 256, 1, 1), f"{rpn}.anchor_deltas.bias": (12,)})
    classes = 1 if "keypoint" in heads else 80
    shapes.update({"roi_heads.box_head.fc1.weight": (1024, 256 * 7 * 7), "roi_heads.box_head.fc1.bias": (1024,),
                   "roi_heads.box_head.fc2.weight": (1024, 1024), "roi_heads.box_head.fc2.bias": (1024,),
                   "roi_heads.box_predictor.cls_score.weight": (classes + 1, 1024),
                   "roi_heads.box_predictor.cls_score.bias": (classes + 1,),
                   "roi_heads.box_predictor.bbox_pred.weight": (classes * 4, 1024),
                   "roi_heads.box_predictor.bbox_pred.bias": (classes * 4,)})
    if "mask" in heads:
        for i in range(1, 5):
            shapes[f"roi_heads.mask_head.mask_fcn{i}.weight"] = (256, 256, 3, 3)
            shapes[f"roi_heads.mask_head.mask_fcn{i}.bias"] = (256,)
        shapes.update({"roi_heads.mask_head.deconv.weight": (256, 256, 2, 2),
                       "roi_heads.mask_head.deconv.bias": (256,),
                       "roi_heads.mask_head.predictor.weight": (classes, 256, 1, 1),
                       "roi_heads.mask_head.predictor.bias": (classes,)})
    if "keypoint" in heads:
        for i in range(1, 9):
            shapes[f"roi_heads.keypoint_head.conv_fcn{i}.weight"] = (512, 256 if i == 1 else 512, 3, 3)
            shapes[f"roi_heads.keypoint_head.conv_fcn{i}.bias"] = (512,)
        shapes.update({"roi_heads.keypoint_head.score_lowres.weight": (512, 17, 4, 4),
                       "roi_heads.keypoint_head.score_lowres.bias": (17,)})
    return shapes


def detectron2_state(arch: str, seed: int = 0, pixel_stats: bool = False) -> dict[str, np.ndarray]:
    """Random float32 arrays of detectron2's shapes; norm variances positive. `pixel_stats` adds
    the pixel_mean / pixel_std buffers some checkpoints carry (BGR, 0..255, shape (3, 1, 1))."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in detectron2_shapes(arch).items():
        value = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.01)
        if key.endswith("running_var") or key.endswith("norm.weight"):
            value = np.abs(value) + np.float32(0.5)
        state[key] = value
    if pixel_stats:
        std = (57.375, 57.120, 58.395) if ARCHS[arch][1] > 1 else (1.0, 1.0, 1.0)
        state["pixel_mean"] = np.array([103.530, 116.280, 123.675], np.float32).reshape(3, 1, 1)
        state["pixel_std"] = np.array(std, np.float32).reshape(3, 1, 1)
    return state


def write_model_zoo_pkl(path: Path, state: dict[str, np.ndarray]) -> Path:
    with open(path, "wb") as f:
        pickle.dump({"model": state, "__author__": "Detectron2 Model Zoo"}, f)
    return path
