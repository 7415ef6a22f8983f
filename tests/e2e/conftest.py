from __future__ import annotations

from pathlib import Path

import pytest

from plugrcnn.data.synthetic import generate_synthetic_coco


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few generated COCO images with masks and keypoints (the data the demo trains on)."""
    root = tmp_path_factory.mktemp("synthetic")
    generate_synthetic_coco(root, seed=3, num_train=6, num_val=3, image_size=96)
    return root


def tiny_config(tmp_path: Path, data: Path, heads: str, extra: str = "") -> Path:
    """A ResNet-18 model on 96-px images: cheap enough for a few CPU training steps in a test."""
    text = f"""
model:
  backbone: {{name: resnet18, norm: bn, freeze_at: 0}}
  fpn: {{out_channels: 32}}
  input: {{min_size_train: [96], max_size_train: 160, min_size_test: 96, max_size_test: 160}}
  anchors: {{sizes: [[16], [32], [64], [128], [256]]}}
  rpn: {{pre_nms_topk_train: 200, post_nms_topk_train: 100, pre_nms_topk_test: 100, post_nms_topk_test: 50}}
  sampler: {{batch_size_per_image: 32}}
  box_trunk: {{fc_dim: 64}}
  detection: {{score_thresh: 0.0, detections_per_image: 10}}
  heads:
{heads}
data:
  train: {{instances: {data}/annotations/instances_train.json, images: {data}/train}}
  val: {{instances: {data}/annotations/instances_val.json, images: {data}/val}}
solver: {{base_lr: 0.01, ims_per_batch: 2, max_iter: 2, warmup_iters: 1, steps: [], checkpoint_period: 100, log_period: 1,
         num_workers: 0}}
output_dir: {tmp_path}/out
{extra}"""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path
