"""The config schema: dataclasses with commented defaults (detectron2's defaults unless noted).

configs/*.yaml override these; configs/torchvision/*.yaml set the values that reproduce
torchvision's models exactly. Head configs live under `model.heads.<name>` and are checked
against the head plugin's own dataclass when the plugin is loaded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class InputConfig:
    min_size_train: tuple[int, ...] = (640, 672, 704, 736, 768, 800)  # one is drawn per image
    max_size_train: int = 1333
    min_size_test: int = 800
    max_size_test: int = 1333
    size_divisibility: int = 32      # the batch is zero-padded to a multiple of this
    pixel_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # RGB, images scaled to [0, 1]
    pixel_std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    flip_prob: float = 0.5           # horizontal flip in training


@dataclass
class BackboneConfig:
    name: Literal["resnet18", "resnet34", "resnet50", "resnet101", "resnext101_32x8d"] = "resnet50"
    norm: Literal["frozen_bn", "bn", "gn"] = "frozen_bn"
    freeze_at: int = 2               # 0: train all; 1: freeze stem; k: freeze stem + res2..res(k)
    weights: str | None = None       # local torchvision-format ImageNet state_dict; never downloaded
    frozen_bn_eps: float = 1e-5
    # MSRA ResNet (detectron2's R50/R101): the first block of a stage strides in its 1x1 conv,
    # not in its 3x3 (torchvision's ResNet v1.5); the parameters have the same shapes
    stride_in_1x1: bool = False


@dataclass
class FPNConfig:
    out_channels: int = 256
    top_block: Literal["maxpool", "none"] = "maxpool"  # P6 = max-pool(P5, kernel 1, stride 2)
    norm: Literal["", "bn"] = ""     # "bn": conv (no bias) + BatchNorm (torchvision's v2 models)


@dataclass
class AnchorConfig:
    sizes: tuple[tuple[float, ...], ...] = ((32,), (64,), (128,), (256,), (512,))  # one per level
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)  # height / width
    round_base_anchors: bool = False  # torchvision rounds the base anchors to integers
    strides_from_image: bool = False  # torchvision: stride = padded image size // feature size
    offset: float = 0.0               # anchor centre offset, in strides


@dataclass
class RPNConfig:
    conv_depth: int = 1
    iou_thresholds: tuple[float, float] = (0.3, 0.7)
    batch_size_per_image: int = 256
    positive_fraction: float = 0.5
    pre_nms_topk_train: int = 2000   # per level
    pre_nms_topk_test: int = 1000    # per level
    post_nms_topk_train: int = 1000  # per image
    post_nms_topk_test: int = 1000   # per image
    nms_thresh: float = 0.7
    min_box_size: float = 0.0
    score_thresh: float = 0.0
    box_coder_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    smooth_l1_beta: float = 0.0      # 0 is L1 (detectron2); torchvision uses 1/9
    loss_normalizer: Literal["batch", "sampled"] = "batch"  # torchvision: "sampled"


@dataclass
class PoolerConfig:
    sampling_ratio: int = 0          # 0: adaptive (ceil(roi / bin)); torchvision uses 2
    aligned: bool = True             # half-pixel shift (RoIAlign v2); torchvision: False
    canonical_box_size: int = 224
    canonical_level: int = 4
    level_eps: float = 1e-8          # torchvision: 1e-6


@dataclass
class RoISamplerConfig:
    batch_size_per_image: int = 512
    positive_fraction: float = 0.25
    fg_iou_threshold: float = 0.5
    bg_iou_threshold: float = 0.5
    append_gt: bool = True


@dataclass
class BoxTrunkConfig:
    """The shared RoI representation of the class and box heads (7x7 pool -> convs -> fcs)."""
    pooler_resolution: int = 7
    num_conv: int = 0
    conv_dim: int = 256
    num_fc: int = 2
    fc_dim: int = 1024
    norm: Literal["", "bn"] = ""     # of the convs: "bn" = conv (no bias) + BatchNorm (torchvision v2)


@dataclass
class DetectionConfig:
    score_thresh: float = 0.05
    nms_thresh: float = 0.5
    detections_per_image: int = 100
    min_box_size: float = 0.0        # torchvision drops boxes smaller than 1e-2 px


@dataclass
class ModelConfig:
    num_classes: int = 80            # foreground classes; label 0 is background
    class_names: tuple[str, ...] = ()  # label i -> class_names[i - 1]; filled from data if empty
    category_ids: tuple[int, ...] = ()  # label i -> COCO category id; identity if empty
    device: str = "auto"             # auto | cpu | cuda | cuda:N
    weights: str | None = None       # a plugrcnn checkpoint to start from
    input: InputConfig = field(default_factory=InputConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    fpn: FPNConfig = field(default_factory=FPNConfig)
    anchors: AnchorConfig = field(default_factory=AnchorConfig)
    rpn: RPNConfig = field(default_factory=RPNConfig)
    pooler: PoolerConfig = field(default_factory=PoolerConfig)
    sampler: RoISamplerConfig = field(default_factory=RoISamplerConfig)
    box_trunk: BoxTrunkConfig = field(default_factory=BoxTrunkConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    # name -> that head's config (checked against the plugin's schema); a head is on iff named here
    heads: dict[str, Any] = field(default_factory=dict)
    loss_weights: dict[str, float] = field(default_factory=dict)  # loss name -> weight (default 1)


@dataclass
class DatasetConfig:
    instances: str = ""              # COCO instances JSON
    images: str = ""                 # image folder
    keypoints: str | None = None     # optional COCO person_keypoints JSON merged into `instances`


@dataclass
class DataConfig:
    train: DatasetConfig = field(default_factory=DatasetConfig)
    val: DatasetConfig = field(default_factory=DatasetConfig)
    num_workers: int = 2
    synthetic: dict[str, Any] = field(default_factory=dict)  # options of the generated data set


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    solver: dict[str, Any] = field(default_factory=dict)  # checked by plugrcnn.engine.solver
    output_dir: str = "output"           # (solver.seed seeds the weights, data order, sampling)
    # where each key was set (filled by load_config; used to name the file in errors)
    provenance: dict[str, str] = field(default_factory=dict, repr=False)
    source: str = ""
