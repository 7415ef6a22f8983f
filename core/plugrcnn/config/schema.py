"""The config schema: dataclasses with commented defaults (detectron2's defaults unless noted).

configs/*.yaml override these; configs/torchvision/*.yaml set the values that reproduce
torchvision's models exactly. Every number's valid range is declared beside its default
(`ranged(default, ge=..., le=...)`, see plugrcnn.config.ranges) and checked at load. Head
configs live under `model.heads.<name>`; `load_config` loads the plugins the config names and
turns each into the head's own dataclass (`HeadSpec.config_class`), so the whole config, heads
and solver included, is typed and checked before any data are read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from plugrcnn.config.ranges import ranged
from plugrcnn.config.solver import SolverConfig
from plugrcnn.errors import PlugrcnnError
from plugrcnn.inference.images import DEFAULT_MAX_IMAGE_PIXELS

MAX_SIDE = 8192   # pixels: image sizes and anchor sizes; a larger input exhausts memory
DEVICE_PATTERN = r"auto|cpu|mps|cuda(:\d{1,3})?"


@dataclass
class InputConfig:
    min_size_train: tuple[int, ...] = ranged((640, 672, 704, 736, 768, 800), ge=1, le=MAX_SIDE,
                                             min_items=1)  # one is drawn per image
    max_size_train: int = ranged(1333, ge=1, le=MAX_SIDE)
    min_size_test: int = ranged(800, ge=1, le=MAX_SIDE)
    max_size_test: int = ranged(1333, ge=1, le=MAX_SIDE)
    size_divisibility: int = ranged(32, ge=0, le=1024)      # 0 or 1: no padding; the batch is zero-padded to a multiple of this
    pixel_mean: tuple[float, float, float] = ranged((0.485, 0.456, 0.406), ge=0, le=1)  # RGB, images scaled to [0, 1]
    pixel_std: tuple[float, float, float] = ranged((0.229, 0.224, 0.225), gt=0, le=1)
    flip_prob: float = ranged(0.5, ge=0, le=1)              # horizontal flip in training
    # images over this many pixels are refused from their header, before decoding (image bombs)
    max_image_pixels: int = ranged(DEFAULT_MAX_IMAGE_PIXELS, ge=1, le=1_000_000_000)


@dataclass
class BackboneConfig:
    """model.backbone: `name` selects a registered backbone (`plugrcnn backbones` lists them);
    every other key is one of that backbone's own options, checked against its options dataclass
    when the config loads (e.g. the ResNets' norm, freeze_at, weights, stride_in_1x1)."""
    name: str = "resnet50"
    options: Any = None   # the named backbone's options dataclass (defaults when not given)

    def __post_init__(self) -> None:
        if self.options is None:
            from plugrcnn.backbones.registry import find_backbone

            self.options = find_backbone(self.name).spec.config_class()

    @classmethod
    def from_plain(cls, value: Any, prov: dict[str, str], key: str, default_source: str) -> BackboneConfig:
        """{name: ..., <option>: ...} from YAML -> the backbone's typed options (loader hook)."""
        from plugrcnn.backbones.registry import find_backbone
        from plugrcnn.config.loader import structure

        value = dict(value or {}) if isinstance(value, dict) or value is None else value
        if not isinstance(value, dict):
            raise PlugrcnnError(f"{prov.get(key, default_source)}: key {key}: expected a mapping, got {value!r}")
        name = value.pop("name", cls.name)
        if not isinstance(name, str):
            raise PlugrcnnError(f"{prov.get(f'{key}.name', default_source)}: key {key}.name: expected a "
                                f"backbone name, got {name!r}")
        spec = find_backbone(name, prov.get(f"{key}.name", default_source)).spec
        return cls(name=name, options=structure(spec.config_class, value, prov, key, default_source))

    def to_plain(self) -> dict[str, Any]:
        from plugrcnn.config.loader import to_dict

        return {"name": self.name, **to_dict(self.options)}


@dataclass
class FPNConfig:
    out_channels: int = ranged(256, ge=1, le=4096)
    top_block: Literal["maxpool", "none"] = "maxpool"  # P6 = max-pool(P5, kernel 1, stride 2)
    norm: Literal["", "bn"] = ""     # "bn": conv (no bias) + BatchNorm (torchvision's v2 models)


@dataclass
class AnchorConfig:
    sizes: tuple[tuple[float, ...], ...] = ranged(((32,), (64,), (128,), (256,), (512,)), gt=0, le=MAX_SIDE,
                                                   min_items=1)  # one per level
    aspect_ratios: tuple[float, ...] = ranged((0.5, 1.0, 2.0), ge=1e-3, le=1e3, min_items=1)  # height / width
    round_base_anchors: bool = False  # torchvision rounds the base anchors to integers
    strides_from_image: bool = False  # torchvision: stride = padded image size // feature size
    offset: float = ranged(0.0, ge=0, le=1)                 # anchor centre offset, in strides


@dataclass
class RPNConfig:
    conv_depth: int = ranged(1, ge=1, le=16)
    iou_thresholds: tuple[float, float] = ranged((0.3, 0.7), ge=0, le=1)  # (bg below, fg at or above)
    batch_size_per_image: int = ranged(256, ge=1, le=100_000)
    positive_fraction: float = ranged(0.5, gt=0, le=1)
    pre_nms_topk_train: int = ranged(2000, ge=1, le=1_000_000)  # per level
    pre_nms_topk_test: int = ranged(1000, ge=1, le=1_000_000)  # per level
    post_nms_topk_train: int = ranged(1000, ge=1, le=1_000_000)  # per image
    post_nms_topk_test: int = ranged(1000, ge=1, le=1_000_000)  # per image
    nms_thresh: float = ranged(0.7, ge=0, le=1)
    min_box_size: float = ranged(0.0, ge=0)
    score_thresh: float = ranged(0.0, ge=0, le=1)
    box_coder_weights: tuple[float, float, float, float] = ranged((1.0, 1.0, 1.0, 1.0), gt=0)
    smooth_l1_beta: float = ranged(0.0, ge=0)               # 0 is L1 (detectron2); torchvision uses 1/9
    loss_normalizer: Literal["batch", "sampled"] = "batch"  # torchvision: "sampled"

    def __post_init__(self) -> None:
        low, high = self.iou_thresholds
        if low > high:
            raise PlugrcnnError(f"key model.rpn.iou_thresholds: background threshold {low} is above "
                                f"the foreground threshold {high}")


@dataclass
class PoolerConfig:
    sampling_ratio: int = ranged(0, ge=0, le=64)            # 0: adaptive (ceil(roi / bin)); torchvision uses 2
    aligned: bool = True             # half-pixel shift (RoIAlign v2); torchvision: False
    canonical_box_size: int = ranged(224, ge=1, le=MAX_SIDE)
    canonical_level: int = ranged(4, ge=2, le=6)            # a feature level (P2..P6)
    level_eps: float = ranged(1e-8, ge=0, le=1)             # torchvision: 1e-6


@dataclass
class RoISamplerConfig:
    batch_size_per_image: int = ranged(512, ge=1, le=100_000)
    positive_fraction: float = ranged(0.25, gt=0, le=1)
    fg_iou_threshold: float = ranged(0.5, ge=0, le=1)
    bg_iou_threshold: float = ranged(0.5, ge=0, le=1)       # <= fg_iou_threshold
    append_gt: bool = True

    def __post_init__(self) -> None:
        if self.bg_iou_threshold > self.fg_iou_threshold:
            raise PlugrcnnError(f"key model.sampler.bg_iou_threshold: {self.bg_iou_threshold} is above "
                                f"fg_iou_threshold {self.fg_iou_threshold}")


@dataclass
class BoxTrunkConfig:
    """The shared RoI representation of the class and box heads (7x7 pool -> convs -> fcs)."""
    pooler_resolution: int = ranged(7, ge=1, le=64)
    num_conv: int = ranged(0, ge=0, le=16)
    conv_dim: int = ranged(256, ge=1, le=4096)
    num_fc: int = ranged(2, ge=1, le=8)                     # the class and box heads read the last fc
    fc_dim: int = ranged(1024, ge=1, le=16384)
    norm: Literal["", "bn"] = ""     # of the convs: "bn" = conv (no bias) + BatchNorm (torchvision v2)


@dataclass
class DetectionConfig:
    score_thresh: float = ranged(0.05, ge=0, le=1)
    nms_thresh: float = ranged(0.5, ge=0, le=1)
    detections_per_image: int = ranged(100, ge=1, le=10_000)
    min_box_size: float = ranged(0.0, ge=0)                 # torchvision drops boxes smaller than 1e-2 px


@dataclass
class ModelConfig:
    num_classes: int = ranged(80, ge=1, le=100_000)         # foreground classes; label 0 is background
    class_names: tuple[str, ...] = ()  # label i -> class_names[i - 1]; filled from data if empty
    category_ids: tuple[int, ...] = ()  # label i -> COCO category id; identity if empty
    # auto | cpu | cuda | cuda:N | mps; checked against the machine when the model is placed
    device: str = ranged("auto", pattern=DEVICE_PATTERN, pattern_help="auto, cpu, cuda, cuda:N or mps")
    weights: str | None = None       # a plugrcnn checkpoint to start from
    # inference arithmetic: "exact" fp32 (outputs as torchvision's / the export's); "fast" bf16
    # autocast on CPUs with bf16 instructions, fp16 on CUDA (boxes within ~1 px; README)
    precision: Literal["exact", "fast"] = "exact"
    input: InputConfig = field(default_factory=InputConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    fpn: FPNConfig = field(default_factory=FPNConfig)
    anchors: AnchorConfig = field(default_factory=AnchorConfig)
    rpn: RPNConfig = field(default_factory=RPNConfig)
    pooler: PoolerConfig = field(default_factory=PoolerConfig)
    sampler: RoISamplerConfig = field(default_factory=RoISamplerConfig)
    box_trunk: BoxTrunkConfig = field(default_factory=BoxTrunkConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    # name -> that head's config, an instance of its plugin's `config_class` once loaded
    # (`load_config`); a head is on iff named here
    heads: dict[str, Any] = field(default_factory=dict)
    loss_weights: dict[str, float] = field(default_factory=dict)  # loss name -> weight (default 1)


@dataclass
class DatasetConfig:
    instances: str = ""              # the annotation file (COCO: instances JSON)
    images: str = ""                 # image folder
    keypoints: str | None = None     # COCO: optional person_keypoints JSON merged into `instances`


@dataclass
class SyntheticDataConfig:
    """`data.synthetic`: the data set `plugrcnn demo` generates."""
    seed: int = ranged(0, ge=0, lt=2**32)
    num_train: int = ranged(600, ge=1, le=100_000)
    num_val: int = ranged(100, ge=1, le=100_000)
    image_size: int = ranged(128, ge=32, le=2048)   # square images, pixels
    split_keypoints_file: bool = False


@dataclass
class DataConfig:
    train: DatasetConfig = field(default_factory=DatasetConfig)
    val: DatasetConfig = field(default_factory=DatasetConfig)
    # the loader of both splits: a name in plugrcnn.data.formats (built in: coco; plugins add more)
    format: str = "coco"
    synthetic: SyntheticDataConfig = field(default_factory=SyntheticDataConfig)


@dataclass
class EvalConfig:
    # COCOeval implementation: "faster-coco-eval" (C++, same AP as pycocotools to 1e-6, several
    # times faster on thousands of images) or "pycocotools" (the reference)
    backend: Literal["faster-coco-eval", "pycocotools"] = "faster-coco-eval"


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output_dir: str = "output"           # (solver.seed seeds the weights, data order, sampling)
    # where each key was set (filled by load_config; used to name the file in errors)
    provenance: dict[str, str] = field(default_factory=dict, repr=False)
    source: str = ""
