"""The mask head inside a (tiny) detector: found through its entry point, trains, predicts,
writes RLE records, draws; and switching it off in the config removes it everywhere."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models.detection import maskrcnn_resnet50_fpn

from plugrcnn.config import load_config
from plugrcnn.data.coco import CocoDataset
from plugrcnn.data.mapper import DatasetMapper
from plugrcnn.data.synthetic import generate_synthetic_coco
from plugrcnn.data.transforms import TrainAugmentation
from plugrcnn.errors import PlugrcnnError
from plugrcnn.heads import HeadContext, PredictContext, RoIRows
from plugrcnn.inference.predictor import Predictor
from plugrcnn.modeling.build import build_model
from plugrcnn.plugins.manager import load_heads
from plugrcnn_mask.convert import convert_torchvision_mask
from plugrcnn_mask.head import MaskHead, MaskHeadConfig

TINY = """
model:
  num_classes: 4
  backbone: {{name: resnet18, norm: bn, freeze_at: 0}}
  fpn: {{out_channels: 32}}
  input: {{min_size_train: [96], max_size_train: 160, min_size_test: 96, max_size_test: 160}}
  anchors: {{sizes: [[16], [32], [64], [128], [256]]}}
  rpn: {{pre_nms_topk_train: 200, post_nms_topk_train: 100, pre_nms_topk_test: 100, post_nms_topk_test: 50}}
  sampler: {{batch_size_per_image: 32}}
  box_trunk: {{fc_dim: 64}}
  detection: {{score_thresh: 0.0, detections_per_image: 10}}
  heads:
    class: {{}}
    box: {{}}
{mask}
"""


def test_the_installed_plugin_is_found_through_its_entry_point() -> None:
    registry = load_heads(["class", "box", "mask"])
    assert registry.heads["mask"].distribution == "plugrcnn-mask"
    assert registry.spec("mask").requires == ("class", "box")
    assert registry.spec("mask").config_class is MaskHeadConfig


def test_torchvision_mask_branch_converts_onto_every_head_parameter() -> None:
    tv = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict()
    head = MaskHead(MaskHeadConfig(), HeadContext(num_classes=90, in_channels=256))
    expected = {f"roi_stage.heads.mask.{k}": v.shape for k, v in head.state_dict().items()}
    converted = convert_torchvision_mask(tv)
    assert {k: v.shape for k, v in converted.items()} == expected
    assert torch.equal(converted["roi_stage.heads.mask.convs.2.weight"], tv["roi_heads.mask_head.2.0.weight"])
    # torchvision < 0.13 named the convs mask_fcn1..4
    old = {k.replace("mask_head.3.0.", "mask_head.mask_fcn4."): v for k, v in tv.items()}
    assert torch.equal(convert_torchvision_mask(old)["roi_stage.heads.mask.convs.3.bias"],
                       tv["roi_heads.mask_head.3.0.bias"])


def test_unknown_mask_option_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(TINY.format(mask="    mask: {mask_treshold: 0.4}"))
    with pytest.raises(PlugrcnnError, match=r"unknown key model\.heads\.mask\.mask_treshold"):
        build_model(load_config(path))


def test_each_rows_class_channel_is_what_forward_gives_and_predict_returns() -> None:
    torch.manual_seed(0)
    head = MaskHead(MaskHeadConfig(num_conv=1, conv_dim=8), HeadContext(num_classes=3, in_channels=4))
    x = torch.randn(4, 4, 14, 14)
    rows = RoIRows(boxes=torch.tensor([[2.0, 3, 20, 30], [5.0, 1, 9, 7], [0.0, 0, 8, 8], [1.0, 1, 9, 9]]),
                   classes=torch.tensor([1, 3, 2, 3]), scores=torch.ones(4))
    outputs = head(x, rows)
    logits = outputs["mask_logits"]
    assert logits.shape == (4, 4, 28, 28)
    # row i's channel is its class: 1, 3, 2, 3
    torch.testing.assert_close(outputs["mask_class_logits"], logits[torch.arange(4), rows.classes])
    eager = head.predict(outputs, rows, PredictContext(static=False))["masks"]
    static = head.predict(outputs, rows, PredictContext(static=True))["masks"]
    torch.testing.assert_close(eager, logits[torch.arange(4), rows.classes].sigmoid())
    assert torch.equal(eager, static)  # one inference path: the graph gives the same tensor
    detection = {"pred_boxes": rows.boxes[:2], "pred_masks": eager[:2]}
    head.finalize(detection, (1.0, 1.0), (40, 30))
    assert detection["pred_masks"].shape == (2, 40, 30) and detection["pred_masks"].dtype == torch.bool


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> CocoDataset:
    root = tmp_path_factory.mktemp("synthetic")
    generate_synthetic_coco(root, seed=3, num_train=2, num_val=1, image_size=96)
    return CocoDataset.from_files(root / "annotations" / "instances_train.json", root / "train",
                                  training=True)


def _tiny_model(tmp_path: Path, mask: str):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(mask=mask))
    cfg = load_config(path, ["model.device=cpu"])
    torch.manual_seed(0)
    return cfg, build_model(cfg)


@pytest.mark.parametrize("with_mask", [True, False])
def test_train_step_and_predict_with_and_without_the_mask_head(
        tmp_path: Path, synthetic: CocoDataset, with_mask: bool) -> None:
    cfg, built = _tiny_model(tmp_path, "    mask: {conv_dim: 16}" if with_mask else "")
    codecs = {n: c for n, h in built.model.heads.items() if (c := h.target_codec()) is not None}
    assert ("mask" in codecs) == with_mask
    synthetic.transform = DatasetMapper(codecs, TrainAugmentation((96, 112), 160, flip_prob=1.0))
    batch = [synthetic[0], synthetic[1]]
    losses = built.criterion(built.model.train()(batch))
    assert ("loss_mask" in losses) == with_mask
    sum(losses.values()).backward()
    if with_mask:
        assert 0.3 < float(losses["loss_mask"].detach()) < 1.0  # about log 2 from a fresh head
        assert built.model.heads["mask"].predictor.weight.grad.abs().sum() > 0

    predictor = Predictor(cfg, built, torch.device("cpu"))
    image = (torch.rand(3, 70, 90) * 255).to(torch.uint8)
    detection = predictor([image])[0]
    records = predictor.coco_records(detection)
    assert len(records) == len(detection["pred_boxes"]) > 0
    assert ("pred_masks" in detection) == with_mask
    assert all(("segmentation" in r) == with_mask for r in records)
    if with_mask:
        masks = detection["pred_masks"]
        assert masks.dtype == torch.bool and masks.shape == (len(records), 70, 90)
        assert records[0]["segmentation"]["size"] == [70, 90]
    drawn = predictor.draw(image, detection)
    assert drawn.shape == image.shape and drawn.dtype == torch.uint8
