"""MaskIoU head: its IoU targets, its build-time check against the mask head, rescoring."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from plugrcnn.config import load_config
from plugrcnn.heads import HeadContext, ImageTargets, PlugrcnnError, PredictContext, RoIRows, SampledRoIs
from plugrcnn.modeling.build import build_model
from plugrcnn_mask import MaskCodec, MaskHeadConfig
from plugrcnn_maskiou import MaskIoUHead, MaskIoUHeadConfig, mask_iou_targets

SQUARE = [0.0, 0.0, 28.0, 0.0, 28.0, 28.0, 0.0, 28.0]  # fills a 28x28 box


def test_target_is_the_iou_of_the_binarised_prediction_with_the_gt_mask() -> None:
    targets = [ImageTargets(gt_boxes=torch.tensor([[0.0, 0, 28, 28]]), gt_labels=torch.tensor([1]),
                            gt_crowd=torch.zeros(1, dtype=torch.bool),
                            heads={"mask": MaskCodec().read([{"id": 1, "segmentation": [SQUARE]}], 28, 28)})]
    rois = [SampledRoIs(boxes=torch.tensor([[0.0, 0, 28, 28], [0.0, 0, 28, 28]]), labels=torch.tensor([1, 1]),
                        matched_gt=torch.tensor([0, 0]))]
    probs = torch.zeros(2, 28, 28)
    probs[0, :, :14] = 0.9   # left half predicted: IoU with the full square = 1/2
    probs[1, :7] = 0.6       # top quarter: 1/4
    probs[1, 7:] = 0.4       # below the 0.5 threshold: outside
    iou, keep = mask_iou_targets(probs, rois, targets)
    assert keep.tolist() == [True, True]
    torch.testing.assert_close(iou, torch.tensor([0.5, 0.25]))


def test_pooler_resolution_must_match_the_mask_heads_naming_both_keys() -> None:
    ctx = HeadContext(num_classes=3, in_channels=8, required={"mask": MaskHeadConfig(pooler_resolution=14)})
    with pytest.raises(PlugrcnnError, match=r"model\.heads\.maskiou\.pooler_resolution \(12\).*"
                                            r"model\.heads\.mask\.pooler_resolution \(14\)"):
        MaskIoUHead(MaskIoUHeadConfig(pooler_resolution=12), ctx)


def test_the_mismatch_is_one_line_when_the_model_is_built(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  num_classes: 3\n  backbone: {name: resnet18}\n  heads:\n    class: {}\n"
                    "    box: {}\n    mask: {pooler_resolution: 14}\n    maskiou: {pooler_resolution: 8}\n")
    with pytest.raises(PlugrcnnError) as info:
        build_model(load_config(path))
    assert "\n" not in str(info.value) and "model.heads.mask.pooler_resolution" in str(info.value)


def test_predict_rescores_with_the_detection_score_and_clamps_the_iou() -> None:
    head = MaskIoUHead(MaskIoUHeadConfig(num_conv=1, conv_dim=4, fc_dim=8),
                       HeadContext(num_classes=2, in_channels=4))
    rows = RoIRows(boxes=torch.zeros(3, 4), classes=torch.tensor([1, 2, 1]), scores=torch.tensor([0.9, 0.5, 0.8]))
    fields = head.predict({"mask_iou": torch.tensor([0.5, 1.2, -0.1])}, rows, PredictContext())
    torch.testing.assert_close(fields["mask_iou"], torch.tensor([0.5, 1.0, 0.0]))
    torch.testing.assert_close(fields["mask_score"], torch.tensor([0.45, 0.5, 0.0]))
    assert head.kind_scores() == {"segm": "mask_score"}
    off = MaskIoUHead(MaskIoUHeadConfig(num_conv=1, conv_dim=4, fc_dim=8, rescore=False),
                      HeadContext(num_classes=2, in_channels=4))
    assert off.kind_scores() == {}


def test_forward_reads_the_mask_heads_logits_of_each_rows_class() -> None:
    torch.manual_seed(0)
    head = MaskIoUHead(MaskIoUHeadConfig(num_conv=1, conv_dim=4, fc_dim=8), HeadContext(num_classes=2, in_channels=4))
    x = torch.randn(2, 4, 14, 14)
    logits = torch.randn(2, 28, 28)
    rows = RoIRows(boxes=torch.zeros(2, 4), classes=torch.tensor([1, 2]),
                   consumed={"mask.mask_class_logits": logits})
    first = head(x, rows)["mask_iou"]
    rows.consumed["mask.mask_class_logits"] = -logits  # another mask: another predicted IoU
    assert not torch.allclose(first, head(x, rows)["mask_iou"])
    swapped = RoIRows(boxes=rows.boxes, classes=torch.tensor([2, 1]), consumed={"mask.mask_class_logits": logits})
    again = RoIRows(boxes=rows.boxes, classes=torch.tensor([1, 2]), consumed={"mask.mask_class_logits": logits})
    per_class = head(x, again)["mask_iou"]
    assert torch.equal(per_class, first)                       # deterministic
    assert not torch.allclose(per_class, head(x, swapped)["mask_iou"])  # the row's class is read out
