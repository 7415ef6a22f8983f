"""The keypoint head in inference (fields, COCO records, drawing, export) and in a training step
of a small model, including images whose keypoints are all invisible."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from plugrcnn.config import load_config
from plugrcnn.heads import HeadContext, ImageTargets
from plugrcnn.modeling.build import build_model
from plugrcnn_keypoint import KeypointHead, KeypointHeadConfig

NAMES = ("head", "left_hand", "right_hand", "left_foot", "right_foot")


def _head(**kwargs) -> KeypointHead:
    cfg = KeypointHeadConfig(keypoints=NAMES, oks_sigmas=(0.05,) * 5, num_conv=1, conv_dim=8,
                             skeleton=(("head", "left_hand"), ("head", "right_hand")), **kwargs)
    return KeypointHead(cfg, HeadContext(num_classes=2, in_channels=8))


def _peaks(rows: list[int], cols: list[int]) -> torch.Tensor:
    """(D, 5, 56, 56) logits, detection d peaking at (rows[d], cols[d]) for every keypoint."""
    logits = torch.zeros(len(rows), 5, 56, 56)
    for d, (r, c) in enumerate(zip(rows, cols)):
        logits[d, :, r, c] = 3.0
    return logits


def test_inference_fields_records_and_drawing() -> None:
    head = _head(categories=(1,), annotation_pixel_offset=0.5, draw_score_thresh=0.5)
    detections = [
        {"pred_boxes": torch.tensor([[0.0, 0.0, 56.0, 56.0]]), "scores": torch.tensor([0.9]),
         "pred_classes": torch.tensor([1])},
        {"pred_boxes": torch.tensor([[10.0, 20.0, 66.0, 76.0], [0.0, 0.0, 56.0, 56.0]]),
         "scores": torch.tensor([0.8, 0.7]), "pred_classes": torch.tensor([1, 2])},
    ]
    head.postprocess({"keypoint_logits": _peaks([5, 40, 1], [7, 30, 1])}, detections)
    assert detections[0]["pred_keypoints"].shape == (1, 5, 3)
    torch.testing.assert_close(detections[1]["pred_keypoints"][0, 0], torch.tensor([40.5, 60.5, 3.0]))
    head.finalize(detections[1], (2.0, 0.5), (38, 132))  # original image: twice as wide, half as tall
    torch.testing.assert_close(detections[1]["pred_keypoints"][0, 0], torch.tensor([81.0, 30.25, 3.0]))

    records = [{"score": 0.8}, {"score": 0.7}]
    head.coco_results(detections[1], records)
    # pixel centres back to COCO pixel indices (-0.5); v = 2; category 2 has no keypoints
    assert records[0]["keypoints"][:3] == pytest.approx([80.5, 29.75, 2.0])
    assert len(records[0]["keypoints"]) == 15 and records[0]["score"] == 0.8
    assert "keypoints" not in records[1]
    assert head.coco_eval_params() == {"kpt_oks_sigmas": [0.05] * 5}

    image = torch.zeros(3, 40, 140, dtype=torch.uint8)
    drawn = head.draw(image, detections[1])
    assert drawn.shape == image.shape and drawn[:, 28:33, 79:84].any()  # a dot at (81, 30)


def test_export_outputs_are_fixed_size_per_detection_slot() -> None:
    head = _head()
    boxes = torch.tensor([[[0.0, 0.0, 56.0, 56.0], [10.0, 20.0, 66.0, 76.0]],
                          [[0.0, 0.0, 168.0, 168.0], [0.0, 0.0, 0.0, 0.0]]])  # last slot empty
    outputs = {"keypoint_logits": _peaks([5, 40, 2, 0], [7, 30, 3, 0])}
    exported = head.export_outputs(outputs, {"pred_boxes": boxes})
    keypoints = exported["keypoints"]
    assert keypoints.shape == (2, 2, 5, 3)
    torch.testing.assert_close(keypoints[0, 1, 0], torch.tensor([40.5, 60.5, 3.0]))
    assert keypoints[1, 0, 0, :2].tolist() == [10.5, 7.5]  # 168 px: pixel 3c+1 on sample c


def _small_model(tmp_path: Path):
    path = tmp_path / "kp.yaml"
    path.write_text("""
model:
  num_classes: 1
  device: cpu
  backbone: {name: resnet18, norm: frozen_bn, freeze_at: 0}
  rpn: {post_nms_topk_train: 64}
  sampler: {batch_size_per_image: 32}
  heads:
    class: {}
    box: {}
    keypoint:
      keypoints: [head, left_hand, right_hand, left_foot, right_foot]
      flip_pairs: [[left_hand, right_hand], [left_foot, right_foot]]
      oks_sigmas: [0.05, 0.05, 0.05, 0.05, 0.05]
      num_conv: 2
      conv_dim: 16
""")
    return build_model(load_config(path)).model.train()


def _item(model, keypoints: list[float]) -> dict:
    codec = model.heads["keypoint"].target_codec()
    annotation = {"id": 1, "label": 1, "keypoints": keypoints}
    return {"image": torch.rand(3, 96, 128),
            "targets": ImageTargets(gt_boxes=torch.tensor([[20.0, 10.0, 90.0, 80.0]]),
                                    gt_labels=torch.tensor([1]), gt_crowd=torch.tensor([False]),
                                    heads={"keypoint": codec.read([annotation], 96, 128)})}


def test_training_step_uses_visible_keypoints_and_survives_all_invisible_ones(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _small_model(tmp_path)
    visible = [50, 20, 2, 70, 40, 2, 30, 40, 2, 60, 75, 1, 40, 75, 2]
    invisible = [0, 0, 0] * 5
    losses = model([_item(model, visible), _item(model, invisible)])
    assert losses["loss_keypoint"].item() > 0  # 3136-way softmax: about log(3136) = 8
    losses["loss_keypoint"].backward()
    assert model.heads["keypoint"].score_lowres.weight.grad.abs().sum() > 0

    model.zero_grad()
    losses = model([_item(model, invisible)])
    assert losses["loss_keypoint"].item() == 0.0
    sum(losses.values()).backward()
    grads = [p.grad for p in model.heads["keypoint"].parameters()]
    assert all(g is not None and (g == 0).all() for g in grads)  # connected, so DDP sees them
