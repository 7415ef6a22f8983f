"""The mask loss reads only the GT class's channel, and only RoIs whose GT has a mask."""
from __future__ import annotations

import math

import torch

from plugrcnn.heads import HeadContext, ImageTargets, RoIRows
from plugrcnn.modeling.sampler import SampledRoIs
from plugrcnn_mask.head import MaskHead, MaskHeadConfig
from plugrcnn_mask.loss import build_roi_mask_targets, mask_rcnn_loss, select_class_channel
from plugrcnn_mask.targets import MaskCodec

RECT = [10.0, 20.0, 30.0, 20.0, 30.0, 60.0, 10.0, 60.0]


def test_loss_only_depends_on_the_gt_class_channel() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 28, 28, generator=generator)
    classes = torch.tensor([1, 4, 2])
    gt = (torch.rand(3, 28, 28, generator=generator) > 0.5).float()
    base = mask_rcnn_loss(logits, classes, gt)

    others = logits.clone()
    for row, label in enumerate(classes.tolist()):
        for channel in set(range(5)) - {label}:
            others[row, channel] += 3.0 * torch.randn(28, 28, generator=generator)
    torch.testing.assert_close(mask_rcnn_loss(others, classes, gt), base)

    changed = logits.clone()
    changed[1, 4] += 1.0  # RoI 1's GT class is 4
    assert abs(float(mask_rcnn_loss(changed, classes, gt)) - float(base)) > 1e-3


def test_zero_logits_cost_log_2_per_pixel_whatever_the_target() -> None:
    gt = (torch.arange(2 * 28 * 28).reshape(2, 28, 28) % 3 == 0).float()
    loss = mask_rcnn_loss(torch.zeros(2, 3, 28, 28), torch.tensor([1, 2]), gt)
    assert math.isclose(float(loss), math.log(2.0), rel_tol=1e-6)


def _head() -> MaskHead:
    torch.manual_seed(0)
    return MaskHead(MaskHeadConfig(num_conv=1, conv_dim=8), HeadContext(num_classes=3, in_channels=4))


def test_head_loss_skips_rois_whose_gt_has_no_mask() -> None:
    head = _head()
    annotations = [{"id": 1, "segmentation": [RECT]}, {"id": 2, "segmentation": []}]
    targets = [ImageTargets(gt_boxes=torch.tensor([[10.0, 20, 30, 60], [0.0, 0, 50, 50]]),
                            gt_labels=torch.tensor([2, 3]), gt_crowd=torch.zeros(2, dtype=torch.bool),
                            heads={"mask": MaskCodec().read(annotations, 100, 100)})]
    rois = SampledRoIs(boxes=torch.tensor([[10.0, 20, 30, 60], [0.0, 0, 50, 50]]),
                       labels=torch.tensor([2, 3]), matched_gt=torch.tensor([0, 1]))
    logits = torch.randn(2, 4, 28, 28)
    outputs = {"mask_logits": logits, "mask_class_logits": select_class_channel(logits, rois.labels)}
    loss = head.loss(outputs, [rois], targets)["loss_mask"]
    # RoI 0 (class 2) is exactly its rectangle: the target is all ones
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[0, 2], torch.ones(28, 28))
    torch.testing.assert_close(loss, expected)


def test_no_roi_with_a_mask_gives_a_zero_loss_connected_to_every_parameter() -> None:
    head = _head()
    targets = [ImageTargets(gt_boxes=torch.tensor([[0.0, 0, 50, 50]]), gt_labels=torch.tensor([1]),
                            gt_crowd=torch.zeros(1, dtype=torch.bool),
                            heads={"mask": MaskCodec().read([{"id": 1}], 100, 100)})]
    rois = SampledRoIs(boxes=torch.tensor([[0.0, 0, 50, 50]]), labels=torch.tensor([1]),
                       matched_gt=torch.tensor([0]))
    outputs = head(torch.randn(1, 4, 14, 14), RoIRows(boxes=rois.boxes, classes=rois.labels))
    loss = head.loss(outputs, [rois], targets)["loss_mask"]
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert all(p.grad is not None for p in head.parameters())


def test_head_loss_from_forward_equals_the_loss_on_all_channels_of_its_gt_classes() -> None:
    # forward gathers each row's class channel once; the loss must read the GT class's channel
    head = _head()
    annotations = [{"id": 1, "segmentation": [RECT]},
                   {"id": 2, "segmentation": [[0.0, 0, 40, 0, 40, 30, 0, 30]]}]
    targets = [ImageTargets(gt_boxes=torch.tensor([[10.0, 20, 30, 60], [0.0, 0, 40, 30]]),
                            gt_labels=torch.tensor([2, 3]), gt_crowd=torch.zeros(2, dtype=torch.bool),
                            heads={"mask": MaskCodec().read(annotations, 100, 100)})]
    rois = SampledRoIs(boxes=torch.tensor([[8.0, 18, 33, 55], [2.0, 1, 45, 28], [9.0, 22, 28, 62]]),
                       labels=torch.tensor([2, 3, 2]), matched_gt=torch.tensor([0, 1, 0]))
    outputs = head(torch.randn(3, 4, 14, 14), RoIRows(boxes=rois.boxes, classes=rois.labels))
    loss = head.loss(outputs, [rois], targets)["loss_mask"]
    keep, classes, gt = build_roi_mask_targets([rois], [targets[0].heads["mask"]], 28)
    assert bool(keep.all()) and classes.tolist() == [2, 3, 2]
    torch.testing.assert_close(loss, mask_rcnn_loss(outputs["mask_logits"], classes, gt))
    wrong = mask_rcnn_loss(outputs["mask_logits"], torch.tensor([1, 1, 1]), gt)
    assert abs(float(wrong.detach()) - float(loss.detach())) > 1e-4
