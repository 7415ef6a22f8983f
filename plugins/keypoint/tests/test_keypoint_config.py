"""Bad keypoint configs are rejected before any compute, naming the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from plugrcnn.config import load_config
from plugrcnn.errors import PlugrcnnError
from plugrcnn.modeling.build import build_model
from plugrcnn_keypoint import KeypointHeadConfig, resolve_layout

NAMES = ("head", "left_hand", "right_hand", "left_foot", "right_foot")
GOOD = dict(keypoints=NAMES, flip_pairs=(("left_hand", "right_hand"), ("left_foot", "right_foot")),
            skeleton=(("head", "left_hand"), (1, 3)), oks_sigmas=(0.05,) * 5, categories=(2,))


def test_a_valid_config_becomes_indices() -> None:
    layout = resolve_layout(KeypointHeadConfig(**GOOD), num_classes=2, key="model.heads.keypoint")
    assert layout.flip_index == (0, 2, 1, 4, 3)
    assert layout.skeleton == ((0, 1), (0, 2))  # names, or 1-based indices as in COCO


@pytest.mark.parametrize("change, message", [
    (dict(flip_pairs=(("left_hand", "right_hand"), ("left_foot", "right_foot"), ("left_wrist", "head"))),
     "model.heads.keypoint.flip_pairs[2]: 'left_wrist' is not in keypoints"),
    (dict(flip_pairs=(("left_hand", "right_hand"), ("right_hand", "left_foot"))),
     "model.heads.keypoint.flip_pairs[1]: 'right_hand' is already in another pair"),
    (dict(oks_sigmas=(0.05,) * 4), "model.heads.keypoint.oks_sigmas: 4 values for 5 keypoints"),
    (dict(skeleton=(("head", "tail"),)), "model.heads.keypoint.skeleton[0]: 'tail' is not in keypoints"),
    (dict(skeleton=((1, 6),)), "model.heads.keypoint.skeleton[0]: index 6 is not in 1..5"),
    (dict(categories=(3,)), "model.heads.keypoint.categories[0]: label 3 is not in 1..2"),
    (dict(keypoints=NAMES + ("head",)), "model.heads.keypoint.keypoints[5]: 'head' is listed twice"),
    (dict(keypoints=(), oks_sigmas=()), "model.heads.keypoint.keypoints: empty"),
])
def test_inconsistent_configs_name_the_key(change: dict, message: str) -> None:
    cfg = KeypointHeadConfig(**{**GOOD, **change})
    with pytest.raises(PlugrcnnError) as info:
        resolve_layout(cfg, num_classes=2, key="model.heads.keypoint")
    assert str(info.value).startswith(message)


def test_a_bad_flip_pair_in_a_yaml_config_fails_when_the_model_is_built(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("""
model:
  num_classes: 1
  backbone: {name: resnet18}
  heads:
    class: {}
    box: {}
    keypoint:
      keypoints: [head, left_hand, right_hand]
      flip_pairs: [[left_hand, right_hand], [left_wrist, right_wrist]]
      oks_sigmas: [0.05, 0.05, 0.05]
""")
    with pytest.raises(PlugrcnnError, match=r"^model.heads.keypoint.flip_pairs\[1\]: 'left_wrist' "
                                            r"is not in keypoints$"):
        build_model(load_config(path))
