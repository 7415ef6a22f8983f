"""What an exported model is: its fixed input, its fixed number of detections, its named outputs.

The same record travels inside every exported file (ONNX metadata, the TensorRT file header, the
AOTInductor package metadata), so a runtime can check a model file before running a frame.

Graph input ``images``: (N, 3, H, W) RGB, uint8 in [0, 255] (``input_dtype="uint8"``, default)
or float32 in [0, 1] (``"float32"``). Normalisation (mean/std) and padding to the size
divisibility happen inside the graph.

Graph outputs, all with a fixed shape:
    boxes        (N, K, 4) float32 XYXY in input pixels
    scores       (N, K) float32
    classes      (N, K) int32 labels in 1..num_classes
    valid_count  (N,) int32: rows [0, valid_count) of every per-detection output are detections,
                 sorted by decreasing score; the rest are padding with undefined values
    <head>.<key> (N, K, ...) one per tensor a head returns from ``Head.predict`` (static)
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from plugrcnn.errors import PlugrcnnError

FORMAT_VERSION = 2  # 2: head outputs are their predict() results
CORE_OUTPUTS = ("boxes", "scores", "classes", "valid_count")
INPUT_NAME = "images"
INPUT_DTYPES = ("uint8", "float32")
TOPK_LIMIT = 3840  # TensorRT's ITopKLayer takes K < 3840 (TensorRT 10)
# fixed-point rounds of the static NMS (graph/static_ops.py); odd. Measured rounds to exact greedy NMS:
# <= 6 on the ResNet-18 test model, <= 7 on R50-FPN at 800x1344 (deploy/README.md)
DEFAULT_NMS_ROUNDS = 11


@dataclass(frozen=True)
class DeploySpec:
    """Settings of one exported graph (and, once exported, its output names)."""
    height: int
    width: int
    batch: int = 1
    max_detections: int = 100           # K
    max_candidates: int = 3000          # class-box pairs entering the final NMS (< 3840)
    input_dtype: Literal["uint8", "float32"] = "uint8"
    fp16: bool = False
    nms_rounds: int = DEFAULT_NMS_ROUNDS  # fixed-point rounds of the static NMS (graph/static_ops.py), odd
    outputs: tuple[str, ...] = ()       # filled by the graph: CORE_OUTPUTS + "<head>.<key>"
    heads: tuple[str, ...] = ()         # the enabled heads, in model order
    extra: dict[str, Any] = field(default_factory=dict)  # backend notes (opset, TensorRT version)

    def __post_init__(self) -> None:
        if self.height <= 0 or self.width <= 0:
            raise PlugrcnnError(f"export: --height/--width must be positive, got {self.height}x{self.width}")
        if self.batch < 1:
            raise PlugrcnnError(f"export: batch must be >= 1, got {self.batch}")
        if not 0 < self.max_detections < TOPK_LIMIT:
            raise PlugrcnnError(f"export: --max-detections must be in 1..{TOPK_LIMIT - 1} "
                                f"(TensorRT TopK limit), got {self.max_detections}")
        if not 0 < self.max_candidates < TOPK_LIMIT:
            raise PlugrcnnError(f"export: max_candidates must be in 1..{TOPK_LIMIT - 1}, "
                                f"got {self.max_candidates}")
        if self.nms_rounds < 1 or self.nms_rounds % 2 == 0:
            raise PlugrcnnError(f"export: --nms-rounds must be odd and >= 1 (an odd round never keeps two "
                                f"overlapping boxes), got {self.nms_rounds}")
        if self.input_dtype not in INPUT_DTYPES:
            raise PlugrcnnError(f"export: input dtype must be one of {INPUT_DTYPES}, got {self.input_dtype!r}")

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, 3, self.height, self.width)

    def head_outputs(self, head: str) -> dict[str, str]:
        """key -> output name of one head's exported tensors."""
        prefix = f"{head}."
        return {name[len(prefix):]: name for name in self.outputs if name.startswith(prefix)}

    def with_outputs(self, outputs: tuple[str, ...], heads: tuple[str, ...]) -> DeploySpec:
        return replace(self, outputs=outputs, heads=heads)

    def with_extra(self, **extra: Any) -> DeploySpec:
        return replace(self, extra={**self.extra, **extra})

    def to_json(self) -> str:
        data = asdict(self)
        data["format_version"] = FORMAT_VERSION
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> DeploySpec:
        try:
            data = json.loads(text)
        except ValueError:
            raise PlugrcnnError(f"{where}: plugrcnn metadata is not JSON; re-export the model") from None
        if not isinstance(data, dict) or data.pop("format_version", None) != FORMAT_VERSION:
            raise PlugrcnnError(f"{where}: exported by another plugrcnn export format "
                                f"(want version {FORMAT_VERSION}); re-export the model")
        try:
            data["outputs"] = tuple(data["outputs"])
            data["heads"] = tuple(data["heads"])
            return cls(**data)
        except (KeyError, TypeError) as exc:
            raise PlugrcnnError(f"{where}: plugrcnn metadata is incomplete ({exc}); re-export the model") from None


def check_heads_match(spec: DeploySpec, heads: tuple[str, ...], where: str) -> None:
    """The model file must export the heads the config enables, or the drawing would lie."""
    if tuple(spec.heads) != tuple(heads):
        raise PlugrcnnError(f"{where}: exported with heads {list(spec.heads)} but the config enables "
                            f"{list(heads)}; export again with this config")


def check_input_size(spec: DeploySpec, height: int | None, width: int | None, where: str) -> None:
    """--height/--width given to a runtime must be the size the model file was built for."""
    if height is None and width is None:
        return
    if (height or spec.height, width or spec.width) != (spec.height, spec.width):
        raise PlugrcnnError(f"{where}: built for input {spec.height}x{spec.width} but "
                            f"{height}x{width} was asked for; export again with --height {height} "
                            f"--width {width}, or leave the size out (frames are letterboxed)")
