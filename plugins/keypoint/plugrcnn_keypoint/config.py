"""The keypoint head's config and its checked, index-based form.

Nothing here knows COCO's person: the keypoints, their left/right pairs, the skeleton and the
OKS sigmas all come from the config (configs/coco_person_keypoints.yaml holds COCO's 17).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from plugrcnn.heads import PlugrcnnError, ranged

KeypointRef = Union[str, int]  # a keypoint name, or its 1-based index (COCO skeleton style)


@dataclass
class KeypointHeadConfig:
    keypoints: tuple[str, ...] = ()          # names, in the order of the annotations' [x, y, v]
    flip_pairs: tuple[tuple[str, str], ...] = ()  # left/right names swapped by a horizontal flip
    skeleton: tuple[tuple[KeypointRef, KeypointRef], ...] = ()  # lines drawn between keypoints
    oks_sigmas: tuple[float, ...] = ranged((), gt=0)     # COCOeval's per-keypoint OKS sigma, one per keypoint
    categories: tuple[int, ...] = ranged((), ge=1)     # labels (1..num_classes) that have keypoints; () = all
    pooler_resolution: int = ranged(14, ge=1, le=64)     # RoIAlign size; heatmaps are 4x that (56)
    num_conv: int = ranged(8, ge=0, le=16)     # conv3x3 + ReLU layers before the deconvolution
    conv_dim: int = ranged(512, ge=1, le=4096)
    up_scale: int = ranged(2, ge=1, le=8)     # bilinear upsampling after the 2x deconvolution
    # COCO keypoints are pixel indices; +0.5 puts them on pixel centres in the continuous
    # coordinates used here, and results subtract it again (detectron2). torchvision uses 0.
    annotation_pixel_offset: float = ranged(0.5, ge=0, le=1)
    draw_score_thresh: float = ranged(0.5, ge=0, le=1)     # draw the keypoints of detections scoring this much
    export_max_roi_size: int = ranged(1344, ge=1, le=8192)     # deploy graph: longest RoI side the decode handles
    export_candidates: int = ranged(16, ge=1, le=1024)     # deploy graph: heatmap cells searched per keypoint


@dataclass(frozen=True)
class KeypointLayout:
    """The config's keypoint metadata as indices (0-based), checked for consistency."""
    names: tuple[str, ...]
    flip_index: tuple[int, ...]             # keypoint i is called flip_index[i] after a flip
    skeleton: tuple[tuple[int, int], ...]
    oks_sigmas: tuple[float, ...]
    categories: tuple[int, ...]

    @property
    def num_keypoints(self) -> int:
        return len(self.names)


def resolve_layout(cfg: KeypointHeadConfig, num_classes: int, key: str) -> KeypointLayout:
    """Check `cfg` (at config key `key`, e.g. "model.heads.keypoint") and index it."""
    names = cfg.keypoints
    if not names:
        raise PlugrcnnError(f"{key}.keypoints: empty; list the keypoint names in annotation order "
                            f"(COCO's person: configs/coco_person_keypoints.yaml)")
    for i, name in enumerate(names):
        if name in names[:i]:
            raise PlugrcnnError(f"{key}.keypoints[{i}]: '{name}' is listed twice")
    index = {name: i for i, name in enumerate(names)}
    if len(cfg.oks_sigmas) != len(names):
        raise PlugrcnnError(f"{key}.oks_sigmas: {len(cfg.oks_sigmas)} values for {len(names)} "
                            f"keypoints; give one sigma per keypoint")
    for i, sigma in enumerate(cfg.oks_sigmas):
        if not sigma > 0:
            raise PlugrcnnError(f"{key}.oks_sigmas[{i}]: {sigma} is not positive")
    for i, label in enumerate(cfg.categories):
        if not 1 <= label <= num_classes:
            raise PlugrcnnError(f"{key}.categories[{i}]: label {label} is not in 1..{num_classes} "
                                f"(model.num_classes)")
    _check_sizes(cfg, key)
    return KeypointLayout(names=tuple(names), flip_index=_flip_index(cfg.flip_pairs, index, key),
                          skeleton=_skeleton(cfg.skeleton, index, key),
                          oks_sigmas=tuple(cfg.oks_sigmas), categories=tuple(cfg.categories))


def _flip_index(pairs: tuple[tuple[str, str], ...], index: dict[str, int], key: str) -> tuple[int, ...]:
    flip = list(range(len(index)))
    paired: set[str] = set()
    for i, pair in enumerate(pairs):
        for name in pair:
            if name not in index:
                raise PlugrcnnError(f"{key}.flip_pairs[{i}]: '{name}' is not in keypoints")
            if name in paired:
                raise PlugrcnnError(f"{key}.flip_pairs[{i}]: '{name}' is already in another pair")
            paired.add(name)
        left, right = pair
        if left == right:
            raise PlugrcnnError(f"{key}.flip_pairs[{i}]: pairs '{left}' with itself")
        flip[index[left]], flip[index[right]] = index[right], index[left]
    return tuple(flip)


def _skeleton(edges: tuple[tuple[KeypointRef, KeypointRef], ...], index: dict[str, int],
              key: str) -> tuple[tuple[int, int], ...]:
    resolved = []
    for i, edge in enumerate(edges):
        ends = []
        for end in edge:
            if isinstance(end, str):
                if end not in index:
                    raise PlugrcnnError(f"{key}.skeleton[{i}]: '{end}' is not in keypoints")
                ends.append(index[end])
            elif 1 <= end <= len(index):
                ends.append(end - 1)
            else:
                raise PlugrcnnError(f"{key}.skeleton[{i}]: index {end} is not in 1..{len(index)} "
                                    f"(skeleton indices are 1-based, as in COCO)")
        resolved.append((ends[0], ends[1]))
    return tuple(resolved)


def _check_sizes(cfg: KeypointHeadConfig, key: str) -> None:
    for name, minimum in (("pooler_resolution", 1), ("num_conv", 0), ("conv_dim", 1),
                          ("up_scale", 1), ("export_max_roi_size", 1), ("export_candidates", 1)):
        if getattr(cfg, name) < minimum:
            raise PlugrcnnError(f"{key}.{name}: {getattr(cfg, name)} is below {minimum}")
