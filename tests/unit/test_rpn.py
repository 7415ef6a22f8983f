from __future__ import annotations

import math

import pytest
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator as TorchvisionAnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.models.detection.rpn import RPNHead as TorchvisionRPNHead

from plugrcnn.modeling.anchors import AnchorGenerator
from plugrcnn.modeling.rpn import RPN, RPNHead, select_proposals

FPN_SIZES = ((32,), (64,), (128,), (256,), (512,))
RATIOS = (0.5, 1.0, 2.0)
CHANNELS = 16
PADDED = (128, 160)
IMAGE_SIZES = [(128, 150), (100, 160)]
# P6 is 2 x 3: torchvision's strides there are 128 // 2 = 64 and 160 // 3 = 53
FEATURE_SIZES = [(32, 40), (16, 20), (8, 10), (4, 5), (2, 3)]


def _torchvision_rpn() -> RegionProposalNetwork:
    head = TorchvisionRPNHead(CHANNELS, 3)
    for p in head.parameters():
        torch.nn.init.normal_(p, std=0.1)  # large enough for varied scores and real NMS work
    return RegionProposalNetwork(
        TorchvisionAnchorGenerator(FPN_SIZES, (RATIOS,) * 5), head, 0.7, 0.3, 256, 0.5,
        dict(training=2000, testing=1000), dict(training=2000, testing=1000), 0.7,
    )


def _our_rpn_like(theirs: RegionProposalNetwork) -> RPN:
    anchors = AnchorGenerator(
        sizes=FPN_SIZES, aspect_ratios=RATIOS, strides=(4, 8, 16, 32, 64),
        round_base_anchors=True, strides_from_image=True,
    )
    ours = RPN(
        in_channels=CHANNELS, anchor_generator=anchors, min_box_size=1e-3, smooth_l1_beta=1 / 9,
        loss_normalization="sampled",
    )
    tv_head = theirs.head
    with torch.no_grad():
        for ours_conv, tv_conv in [
            (ours.head.conv[0], tv_head.conv[0][0]),
            (ours.head.objectness_logits, tv_head.cls_logits),
            (ours.head.anchor_deltas, tv_head.bbox_pred),
        ]:
            ours_conv.weight.copy_(tv_conv.weight)
            ours_conv.bias.copy_(tv_conv.bias)
    return ours


def _features() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, CHANNELS, h, w, generator=g) for h, w in FEATURE_SIZES]


def _gt_boxes(second_image_empty: bool) -> list[torch.Tensor]:
    first = torch.tensor([[10.0, 12.0, 60.0, 90.0], [70.0, 20.0, 140.0, 50.0], [5.0, 100.0, 20.0, 120.0]])
    second = torch.zeros(0, 4) if second_image_empty else torch.tensor([[30.0, 30.0, 120.0, 95.0]])
    return [first, second]


@pytest.mark.parametrize("training", [False, True])
def test_proposals_equal_torchvision(training: bool) -> None:
    theirs = _torchvision_rpn().train(training)
    ours = _our_rpn_like(theirs).train(training)
    features = _features()
    images = ImageList(torch.zeros(2, 3, *PADDED), IMAGE_SIZES)
    gt = _gt_boxes(second_image_empty=False) if training else None
    tv_targets = [{"boxes": b} for b in gt] if gt is not None else None
    with torch.no_grad():
        tv_boxes, _ = theirs(images, {str(i): f for i, f in enumerate(features)}, tv_targets)
        our_boxes, losses = ours(features, IMAGE_SIZES, PADDED, gt)
    assert len(losses) == (2 if training else 0)
    for mine, reference in zip(our_boxes, tv_boxes):
        assert 100 < mine.shape[0] == reference.shape[0]
        torch.testing.assert_close(mine, reference, atol=1e-4, rtol=0)


@pytest.mark.parametrize("second_image_empty", [False, True])
def test_training_losses_equal_torchvision_with_the_same_seed(second_image_empty: bool) -> None:
    # Both sample with torch.randperm on the global generator, positives then negatives,
    # image by image; seeding both identically draws the same anchors.
    theirs = _torchvision_rpn().train()
    ours = _our_rpn_like(theirs).train()
    features = _features()
    gt = _gt_boxes(second_image_empty)
    images = ImageList(torch.zeros(2, 3, *PADDED), IMAGE_SIZES)
    torch.manual_seed(7)
    _, tv_losses = theirs(images, {str(i): f for i, f in enumerate(features)}, [{"boxes": b} for b in gt])
    torch.manual_seed(7)
    _, losses = ours(features, IMAGE_SIZES, PADDED, gt)
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_loc"}
    assert losses["loss_rpn_loc"] > 0
    torch.testing.assert_close(losses["loss_rpn_cls"], tv_losses["loss_objectness"], rtol=1e-5, atol=0)
    torch.testing.assert_close(losses["loss_rpn_loc"], tv_losses["loss_rpn_box_reg"], rtol=1e-5, atol=0)
    losses["loss_rpn_cls"].backward()
    assert ours.head.objectness_logits.weight.grad is not None


def _two_anchor_rpn(**kwargs: object) -> RPN:
    # One level, 1 x 2 feature map, one 16-px square anchor per cell: (0,0,16,16) and (16,0,32,16)
    anchors = AnchorGenerator(sizes=((16,),), aspect_ratios=(1.0,), strides=(16,), offset=0.5)
    rpn = RPN(in_channels=4, anchor_generator=anchors, **kwargs)
    with torch.no_grad():
        for p in rpn.head.parameters():
            p.zero_()
        rpn.head.anchor_deltas.bias.copy_(torch.tensor([0.1, 0.0, 0.0, 0.0]))
    return rpn.train()


@pytest.mark.parametrize(
    ("kwargs", "expected_cls", "expected_loc"),
    [
        # torchvision style: mean over the 2 sampled anchors; smooth-L1 0.5 * 0.1**2 / (1/9)
        (dict(smooth_l1_beta=1 / 9, loss_normalization="sampled"), math.log(2), 0.045 / 2),
        # detectron2 style: L1, divided by batch_size_per_image * images = 256
        (dict(smooth_l1_beta=0.0, loss_normalization="batch"), 2 * math.log(2) / 256, 0.1 / 256),
    ],
)
def test_hand_computed_losses_on_two_anchors(kwargs: dict, expected_cls: float, expected_loc: float) -> None:
    rpn = _two_anchor_rpn(**kwargs)
    gt = [torch.tensor([[0.0, 0.0, 16.0, 16.0]])]  # anchor 0 positive (IoU 1), anchor 1 negative
    # logits are 0: each sampled anchor costs log(2); the positive's target delta is 0
    _, losses = rpn([torch.zeros(1, 4, 1, 2)], [(16, 32)], (16, 32), gt)
    torch.testing.assert_close(losses["loss_rpn_cls"], torch.tensor(expected_cls))
    torch.testing.assert_close(losses["loss_rpn_loc"], torch.tensor(expected_loc))


def test_no_losses_without_gt_or_in_eval() -> None:
    rpn = _two_anchor_rpn()
    assert rpn([torch.zeros(1, 4, 1, 2)], [(16, 32)], (16, 32))[1] == {}
    rpn.eval()
    assert rpn([torch.zeros(1, 4, 1, 2)], [(16, 32)], (16, 32), [torch.zeros(0, 4)])[1] == {}


def test_head_parameter_names_shapes_and_init() -> None:
    head = RPNHead(8, 3, conv_depth=2)
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert shapes == {
        "conv.0.weight": (8, 8, 3, 3), "conv.0.bias": (8,),
        "conv.1.weight": (8, 8, 3, 3), "conv.1.bias": (8,),
        "objectness_logits.weight": (3, 8, 1, 1), "objectness_logits.bias": (3,),
        "anchor_deltas.weight": (12, 8, 1, 1), "anchor_deltas.bias": (12,),
    }
    assert head.conv[0].bias.abs().sum() == 0
    assert 0.005 < head.conv[0].weight.std() < 0.015
    objectness, deltas = head([torch.zeros(2, 8, 5, 6), torch.zeros(2, 8, 3, 3)])
    assert [tuple(o.shape) for o in objectness] == [(2, 3, 5, 6), (2, 3, 3, 3)]
    assert [tuple(d.shape) for d in deltas] == [(2, 12, 5, 6), (2, 12, 3, 3)]


def _select(**overrides: object) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    box_a = [0.0, 0.0, 10.0, 10.0]
    proposals = torch.tensor(
        [[
            box_a, [1.0, 1.0, 11.0, 11.0],  # level 0: B overlaps A (IoU 0.68)
            box_a, [25.0, 15.0, 40.0, 30.0],  # level 1: A again, and a box leaving the image
            [-5.0, -5.0, 3.0, 0.0005],  # level 1: 0.0005 px high after clipping
        ]]
    )
    logits = torch.tensor([[2.0, 1.0, 0.0, 3.0, 2.5]])
    options = dict(pre_nms_topk=10, post_nms_topk=10, nms_thresh=0.5, min_box_size=1e-3, score_thresh=0.0)
    options.update(overrides)
    return select_proposals(proposals, logits, [2, 3], [(20, 30)], **options)


def test_select_proposals_clips_filters_and_runs_nms_per_level() -> None:
    (boxes,), (scores,) = _select()
    expected = torch.tensor([[25.0, 15.0, 30.0, 20.0], [0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    torch.testing.assert_close(boxes, expected)
    torch.testing.assert_close(scores, torch.sigmoid(torch.tensor([3.0, 2.0, 0.0])))


def test_select_proposals_topk_and_score_threshold() -> None:
    (boxes,), _ = _select(pre_nms_topk=1)  # level 1 keeps only its best (the clipped box)
    assert boxes.shape == (2, 4)
    (boxes,), _ = _select(score_thresh=0.6)  # drops the level-1 copy of A (score 0.5)
    assert boxes.shape == (2, 4)
    (boxes,), _ = _select(post_nms_topk=1)
    torch.testing.assert_close(boxes, torch.tensor([[25.0, 15.0, 30.0, 20.0]]))
