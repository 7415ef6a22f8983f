"""The plugin is installed and found, and torchvision's keypoint layers convert one to one."""
from __future__ import annotations

import torch
from torchvision.models.detection.keypoint_rcnn import KeypointRCNNHeads, KeypointRCNNPredictor

from plugrcnn.heads import HeadContext, RoIRows
from plugrcnn.plugins.manager import load_heads
from plugrcnn_keypoint import KeypointHead, KeypointHeadConfig
from plugrcnn_keypoint.convert import convert_torchvision_keypoint_head

NAMES = ("head", "left_hand", "right_hand", "left_foot", "right_foot")


def _config(**kwargs) -> KeypointHeadConfig:
    return KeypointHeadConfig(keypoints=NAMES, oks_sigmas=(0.05,) * 5, **kwargs)


def test_keypoint_head_is_found_through_its_entry_point() -> None:
    registry = load_heads(["class", "box", "keypoint"])
    loaded = registry.heads["keypoint"]
    assert loaded.distribution == "plugrcnn-keypoint"
    assert loaded.spec.requires == ("class", "box")
    assert loaded.spec.config_class is KeypointHeadConfig
    head = loaded.spec.build(_config(), HeadContext(num_classes=1, in_channels=256))
    assert isinstance(head, KeypointHead) and head.roi_input.resolution == 14
    assert (head.stage, head.train_rois, head.eval_kind) == ("instance", "foreground_with_targets", "keypoints")


def test_torchvision_keypoint_layers_convert_to_the_same_function() -> None:
    torch.manual_seed(0)
    tv_head, tv_predictor = KeypointRCNNHeads(32, (16, 16, 16)), KeypointRCNNPredictor(16, 5)
    state = {f"roi_heads.keypoint_head.{k}": v for k, v in tv_head.state_dict().items()}
    state.update({f"roi_heads.keypoint_predictor.{k}": v for k, v in tv_predictor.state_dict().items()})
    state["roi_heads.box_head.fc6.weight"] = torch.zeros(1)  # not ours: left alone
    ours = KeypointHead(_config(num_conv=3, conv_dim=16), HeadContext(num_classes=1, in_channels=32))
    converted = convert_torchvision_keypoint_head(state)
    prefix = "roi_stage.heads.keypoint."
    ours.load_state_dict({k[len(prefix):]: v for k, v in converted.items()}, strict=True)
    x = torch.randn(3, 32, 14, 14)
    with torch.no_grad():
        expected = tv_predictor(tv_head(x))
        got = ours(x, RoIRows(boxes=torch.zeros(len(x), 4)))["keypoint_logits"]
    assert got.shape == (3, 5, 56, 56)
    torch.testing.assert_close(got, expected)


def test_forward_on_no_rois_gives_no_heatmaps() -> None:
    head = KeypointHead(_config(num_conv=2, conv_dim=8), HeadContext(num_classes=1, in_channels=16))
    assert head(torch.zeros(0, 16, 14, 14), RoIRows(boxes=torch.zeros(0, 4)))["keypoint_logits"].shape == (0, 5, 56, 56)
