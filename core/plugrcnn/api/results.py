"""One image's detections as a typed object: boxes, scores, labels, names and every head's fields."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torchvision.io import encode_png

from plugrcnn.errors import PlugrcnnError
from plugrcnn.outputs import prepare_output_dir, write_bytes_atomic, write_json_atomic

if TYPE_CHECKING:
    from plugrcnn.inference.predictor import Predictor

# detection keys shown under their own names rather than in `fields`
_CORE_KEYS = ("pred_boxes", "scores", "pred_classes", "roi_index")


class Result:
    """Detections of one image, in original-image pixels.

    ``boxes`` (D, 4) XYXY, ``scores`` (D,), ``labels`` (D,) int64 (1..num_classes), ``names``
    (D class names); ``fields`` holds each head's outputs by name (``masks`` (D, H, W) bool,
    ``keypoints`` (D, K, 3), a third party's own such as ``area``), also readable as attributes
    (``result.masks``)."""

    def __init__(self, image: torch.Tensor, detection: dict[str, torch.Tensor], predictor: Predictor,
                 source: str | None = None, finalize: list[tuple[Any, Any, Any]] | None = None) -> None:
        self.image = image                # uint8 (3, H, W), what was predicted on
        self.source = source              # the file name, when the input was a path
        self._predictor = predictor
        self._raw = detection             # the model's per-image dict (pred_* keys), on its device
        self._finalize = list(finalize or [])  # (head, scale_xy, original_size) not run yet

    @property
    def detection(self) -> dict[str, torch.Tensor]:
        """Every field, in original-image coordinates, on the CPU. The heads' `finalize` (mask
        paste, ...) runs here, the first time a head's field is read."""
        if self._finalize:
            with torch.inference_mode():  # the model's tensors are inference tensors
                for head, scale_xy, original_size in self._finalize:
                    head.finalize(self._raw, scale_xy, original_size)
            self._finalize = []
            self._raw = {k: v.cpu() for k, v in self._raw.items()}
        elif any(v.device.type != "cpu" for v in self._raw.values()):
            self._raw = {k: v.cpu() for k, v in self._raw.items()}
        return self._raw

    # -- fields -----------------------------------------------------------------------------------
    # boxes, scores and labels are final when the model returns (no head's finalize needed)
    @property
    def boxes(self) -> torch.Tensor:
        return self._raw["pred_boxes"].cpu()

    @property
    def scores(self) -> torch.Tensor:
        return self._raw["scores"].cpu()

    @property
    def labels(self) -> torch.Tensor:
        return self._raw["pred_classes"].cpu()

    @property
    def names(self) -> list[str]:
        names = self._predictor.cfg.model.class_names
        return [names[i - 1] if 0 < i <= len(names) else str(i) for i in self.labels.tolist()]

    @property
    def fields(self) -> dict[str, torch.Tensor]:
        """Every head's per-detection outputs, ``pred_<key>`` as ``<key>``."""
        return {k[len("pred_"):] if k.startswith("pred_") else k: v
                for k, v in self.detection.items() if k not in _CORE_KEYS}

    def __getattr__(self, name: str) -> torch.Tensor:
        # only called when normal lookup fails: a head's field (masks, keypoints, area, ...)
        if name.startswith("_"):
            raise AttributeError(name)
        fields = self.fields
        if name in fields:
            return fields[name]
        raise AttributeError(f"no field {name!r} in this result (fields: {', '.join(fields) or 'none'}; "
                             f"a head adds its fields when it is enabled in the config)")

    def __len__(self) -> int:
        return int(self._raw["scores"].shape[0])

    def __repr__(self) -> str:
        where = f" {self.source}" if self.source else ""
        names = [k[len("pred_"):] if k.startswith("pred_") else k for k in self._raw if k not in _CORE_KEYS]
        return (f"Result({len(self)} detections{where}, image {tuple(self.image.shape[-2:])}, "
                f"fields: {', '.join(names) or 'none'})")

    # -- outputs ----------------------------------------------------------------------------------
    def to_coco(self, image_id: Any = None) -> list[dict[str, Any]]:
        """COCO result records (``bbox`` XYWH, ``category_id``, ``score``, heads' fields)."""
        return self._predictor.coco_records(self.detection, image_id=image_id)

    def draw(self, score_thresh: float = 0.5) -> torch.Tensor:
        """uint8 (3, H, W): the image with every head's drawing of detections >= `score_thresh`."""
        return self._predictor.draw(self.image, self.detection, score_thresh)

    def save(self, path: str | Path, score_thresh: float = 0.5) -> Path:
        """Write the drawn image (``.png``) or the COCO records (``.json``) to `path`."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".png", ".json"):
            raise PlugrcnnError(f"{path}: save writes .png (the drawn image) or .json (COCO records)")
        prepare_output_dir(path.parent)
        if suffix == ".json":
            write_json_atomic(path, self.to_coco())
        else:
            write_bytes_atomic(path, encode_png(self.draw(score_thresh)).numpy().tobytes())
        return path
