"""The keypoint head in inference (fields, COCO records, drawing, export) and in a training step
of a small model, including images whose keypoints are all invisible."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from plugrcnn.config import load_config
from plugrcnn.heads import HeadContext, ImageTargets, PredictContext, RoIRows
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
    rows = RoIRows(boxes=torch.cat([d["pred_boxes"] for d in detections]),
                   classes=torch.cat([d["pred_classes"] for d in detections]),
                   scores=torch.cat([d["scores"] for d in detections]))
    keypoints = head.predict({"keypoint_logits": _peaks([5, 40, 1], [7, 30, 1])}, rows,
                             PredictContext(static=False))["keypoints"]
    for det, part in zip(detections, keypoints.split([1, 2])):
        det["pred_keypoints"] = part
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


def test_static_predict_matches_the_eager_decode_on_every_detection_slot() -> None:
    head = _head()
    boxes = torch.tensor([[0.0, 0.0, 56.0, 56.0], [10.0, 20.0, 66.0, 76.0],
                          [0.0, 0.0, 168.0, 168.0], [0.0, 0.0, 0.0, 0.0]])  # last slot empty
    outputs = {"keypoint_logits": _peaks([5, 40, 2, 0], [7, 30, 3, 0])}
    rows = RoIRows(boxes=boxes, classes=torch.tensor([1, 1, 2, 0]), scores=torch.ones(4))
    static = head.predict(outputs, rows, PredictContext(static=True))["keypoints"]
    assert static.shape == (4, 5, 3)
    torch.testing.assert_close(static[1, 0], torch.tensor([40.5, 60.5, 3.0]))
    assert static[2, 0, :2].tolist() == [10.5, 7.5]  # 168 px: pixel 3c+1 on sample c
    eager = head.predict(outputs, rows, PredictContext(static=False))["keypoints"]
    torch.testing.assert_close(static[:3], eager[:3])


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
    built = build_model(load_config(path))
    built.model.train()
    return built


def _item(built, keypoints: list[float]) -> dict:
    codec = built.model.heads["keypoint"].target_codec()
    annotation = {"id": 1, "label": 1, "keypoints": keypoints}
    return {"image": torch.rand(3, 96, 128),
            "targets": ImageTargets(gt_boxes=torch.tensor([[20.0, 10.0, 90.0, 80.0]]),
                                    gt_labels=torch.tensor([1]), gt_crowd=torch.tensor([False]),
                                    heads={"keypoint": codec.read([annotation], 96, 128)})}


def test_training_step_uses_visible_keypoints_and_survives_all_invisible_ones(tmp_path: Path) -> None:
    torch.manual_seed(0)
    built = _small_model(tmp_path)
    model = built.model
    visible = [50, 20, 2, 70, 40, 2, 30, 40, 2, 60, 75, 1, 40, 75, 2]
    invisible = [0, 0, 0] * 5
    losses = built.criterion(model([_item(built, visible), _item(built, invisible)]))
    assert losses["loss_keypoint"].item() > 0  # 3136-way softmax: about log(3136) = 8
    losses["loss_keypoint"].backward()
    assert model.heads["keypoint"].score_lowres.weight.grad.abs().sum() > 0

    model.zero_grad()
    losses = built.criterion(model([_item(built, invisible)]))
    assert losses["loss_keypoint"].item() == 0.0
    sum(losses.values()).backward()
    grads = [p.grad for p in model.heads["keypoint"].parameters()]
    assert all(g is not None and (g == 0).all() for g in grads)  # connected, so DDP sees them
