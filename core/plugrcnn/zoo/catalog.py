"""The zoo's entries: where each published checkpoint lives, how it is checked, which config
and converter it pairs with, and its published COCO val2017 AP.

torchvision's entries are read from torchvision's own `*_Weights` enums (URL, AP); the hash
checked is the one its file names carry (``name-<first hex digits of the sha256>.pth``, as
torch.hub checks). detectron2 publishes URLs and AP (its MODEL_ZOO.md) but no checksum: its
files are checked against the sha256 recorded at their first download (see download.py).

`PLUGRCNN_ZOO_CATALOG=<file.json>` adds or replaces entries (a mirror, a private model, a test
server): ``{"name": {"url": ..., "source": "torchvision"|"detectron2"|"plugrcnn", "arch": ...,
"config": "path.yaml", "sha256": "hex or hex prefix", "ap": {"bbox": 37.9}}}``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from plugrcnn.errors import PlugrcnnError

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
_D2_BASE = "https://dl.fbaipublicfiles.com/detectron2"


@dataclass(frozen=True)
class ZooEntry:
    name: str                       # "tv:maskrcnn_resnet50_fpn", "d2:mask_rcnn_R_50_FPN_3x"
    source: str                     # converter: "torchvision", "detectron2", or "plugrcnn" (none)
    arch: str
    url: str
    config: Path
    sha256: str | None              # hex digest or its prefix; None: recorded at first download
    ap: dict[str, float] = field(default_factory=dict)  # published COCO val2017 AP by kind


def _torchvision_entries() -> list[ZooEntry]:
    from torchvision.models.detection import (FasterRCNN_ResNet50_FPN_V2_Weights,
                                              FasterRCNN_ResNet50_FPN_Weights,
                                              KeypointRCNN_ResNet50_FPN_Weights,
                                              MaskRCNN_ResNet50_FPN_V2_Weights,
                                              MaskRCNN_ResNet50_FPN_Weights)

    kinds = {"box_map": "bbox", "mask_map": "segm", "kp_map": "keypoints"}  # COCOeval kinds
    entries = []
    for arch, weights in (("fasterrcnn_resnet50_fpn", FasterRCNN_ResNet50_FPN_Weights.COCO_V1),
                          ("maskrcnn_resnet50_fpn", MaskRCNN_ResNet50_FPN_Weights.COCO_V1),
                          ("keypointrcnn_resnet50_fpn", KeypointRCNN_ResNet50_FPN_Weights.COCO_V1),
                          ("fasterrcnn_resnet50_fpn_v2", FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1),
                          ("maskrcnn_resnet50_fpn_v2", MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1)):
        metrics = weights.meta["_metrics"]["COCO-val2017"]
        entries.append(ZooEntry(
            name=f"tv:{arch}", source="torchvision", arch=arch, url=weights.url,
            config=CONFIGS / "torchvision" / f"{arch}.yaml", sha256=hash_prefix_of(weights.url),
            ap={kinds[k]: float(v) for k, v in metrics.items() if k in kinds}))
    return entries


# detectron2 MODEL_ZOO.md: (arch, task folder, model id / file, box AP, second AP kind, AP)
_D2 = [
    ("faster_rcnn_R_50_FPN_3x", "COCO-Detection", "137849458/model_final_280758.pkl", 40.2, None, None),
    ("mask_rcnn_R_50_FPN_1x", "COCO-InstanceSegmentation", "137260431/model_final_a54504.pkl", 38.6, "segm", 35.2),
    ("mask_rcnn_R_50_FPN_3x", "COCO-InstanceSegmentation", "137849600/model_final_f10217.pkl", 41.0, "segm", 37.2),
    ("mask_rcnn_R_101_FPN_3x", "COCO-InstanceSegmentation", "138205316/model_final_a3ec72.pkl", 42.9, "segm", 38.6),
    ("mask_rcnn_X_101_32x8d_FPN_3x", "COCO-InstanceSegmentation", "139653917/model_final_2d9806.pkl", 44.3, "segm", 39.5),
    ("keypoint_rcnn_R_50_FPN_1x", "COCO-Keypoints", "137261548/model_final_04e291.pkl", 53.6, "keypoints", 64.0),
    ("keypoint_rcnn_R_50_FPN_3x", "COCO-Keypoints", "137849621/model_final_a6e10b.pkl", 55.4, "keypoints", 65.5),
]


def _detectron2_entries() -> list[ZooEntry]:
    entries = []
    for arch, task, file, box_ap, kind, kind_ap in _D2:
        ap = {"bbox": box_ap, **({kind: kind_ap} if kind else {})}
        entries.append(ZooEntry(name=f"d2:{arch}", source="detectron2", arch=arch,
                                url=f"{_D2_BASE}/{task}/{arch}/{file}",
                                config=CONFIGS / "detectron2" / f"{arch}.yaml", sha256=None, ap=ap))
    return entries


def hash_prefix_of(url: str) -> str | None:
    """The sha256 prefix a torch.hub-style file name carries: ``name-<hex>.pth`` -> hex."""
    stem = url.rsplit("/", 1)[-1].split(".", 1)[0]
    if "-" not in stem:
        return None
    tail = stem.rsplit("-", 1)[1]
    return tail if len(tail) >= 6 and all(c in "0123456789abcdef" for c in tail) else None


def _override_entries(path: Path) -> list[ZooEntry]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PlugrcnnError(f"{path} (PLUGRCNN_ZOO_CATALOG): cannot read ({exc})") from None
    if not isinstance(data, dict):
        raise PlugrcnnError(f"{path} (PLUGRCNN_ZOO_CATALOG): expected an object of entries")
    entries = []
    for name, raw in data.items():
        try:
            source = raw.get("source", "plugrcnn")
            if source not in ("torchvision", "detectron2", "plugrcnn"):
                raise ValueError(f"source {source!r}")
            config = Path(raw["config"])
            entries.append(ZooEntry(
                name=name, source=source, arch=str(raw.get("arch", "")), url=str(raw["url"]),
                config=config if config.is_absolute() else (path.parent / config),
                sha256=raw.get("sha256") or hash_prefix_of(str(raw["url"])),
                ap={str(k): float(v) for k, v in raw.get("ap", {}).items()}))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise PlugrcnnError(f"{path} (PLUGRCNN_ZOO_CATALOG): entry {name}: bad or missing "
                                f"field ({exc})") from None
    return entries


def zoo_entries() -> dict[str, ZooEntry]:
    """Every entry by name: torchvision's, detectron2's, then PLUGRCNN_ZOO_CATALOG's."""
    entries = {e.name: e for e in [*_torchvision_entries(), *_detectron2_entries()]}
    override = os.environ.get("PLUGRCNN_ZOO_CATALOG")
    if override:
        entries.update({e.name: e for e in _override_entries(Path(override))})
    return entries
