"""Losses in one place: the criterion (heads' losses and the extra-losses hook, after forward) and
one weighted reduction that covers the RPN's losses too."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from plugrcnn.config import load_config
from plugrcnn.engine.losses import make_loss_reducer, weighted_sum
from plugrcnn.errors import PlugrcnnError
from plugrcnn.heads import ImageTargets, hookimpl
from plugrcnn.modeling.build import build_model
from plugrcnn.plugins.manager import load_heads

CONFIG = """
model:
  num_classes: 2
  device: cpu
  backbone: {name: resnet18, norm: frozen_bn, freeze_at: 0}
  fpn: {out_channels: 16}
  rpn: {post_nms_topk_train: 32}
  sampler: {batch_size_per_image: 16}
  box_trunk: {fc_dim: 32}
  heads: {class: {}, box: {}}
"""


class Recorder:
    """A plugin adding a loss on the box head's outputs and counting its calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def plugrcnn_extra_losses(self, head_name, outputs, rois, targets):
        self.calls.append(head_name)
        if head_name == "box":
            return {"loss_box_l2": outputs["box_deltas"].pow(2).mean()}
        return None


def _batch() -> list[dict]:
    targets = ImageTargets(gt_boxes=torch.tensor([[10.0, 10.0, 60.0, 50.0]]), gt_labels=torch.tensor([1]),
                           gt_crowd=torch.tensor([False]))
    return [{"image": torch.rand(3, 64, 80), "targets": targets}]


def _built(tmp_path: Path, plugin: object):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    torch.manual_seed(0)
    return build_model(load_config(path), load_heads(["class", "box"], extra_plugins=[("recorder", plugin)]))


def test_extra_losses_run_in_the_criterion_after_forward_not_inside_it(tmp_path: Path) -> None:
    recorder = Recorder()
    built = _built(tmp_path, recorder)
    outputs = built.model.train()(_batch())
    assert recorder.calls == []  # forward ran no hook
    assert set(outputs.losses) == {"loss_rpn_cls", "loss_rpn_loc"} and set(outputs.heads) == {"class", "box"}
    losses = built.criterion(outputs)
    assert sorted(recorder.calls) == ["box", "class"]
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_loc", "loss_class", "loss_box", "loss_box_l2"}
    expected = outputs.heads["box"].outputs["box_deltas"].pow(2).mean()
    torch.testing.assert_close(losses["loss_box_l2"], expected)


def test_one_weighted_sum_covers_rpn_and_head_losses() -> None:
    losses = {"loss_rpn_cls": torch.tensor(2.0), "loss_rpn_loc": torch.tensor(3.0), "loss_box": torch.tensor(5.0)}
    reduce = make_loss_reducer(None, {"loss_rpn_loc": 0.5, "loss_box": 2.0})
    assert float(reduce(losses)) == 2.0 + 1.5 + 10.0
    assert float(weighted_sum(losses)) == 10.0
    with pytest.raises(PlugrcnnError, match="loss_mask"):
        make_loss_reducer(None, {"loss_mask": 1.0})(losses)


def test_a_loss_named_twice_or_without_the_prefix_is_an_error(tmp_path: Path) -> None:
    class Clash:
        @hookimpl
        def plugrcnn_extra_losses(self, head_name, outputs, rois, targets):
            return {"loss_class": outputs[next(iter(outputs))].sum()} if head_name == "box" else None

    built = _built(tmp_path, Clash())
    with pytest.raises(PlugrcnnError, match="'loss_class', which another head or plugin already returned"):
        built.criterion(built.model.train()(_batch()))


def test_a_head_config_with_a_loss_weight_points_to_model_loss_weights(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.replace("box: {}", "box: {loss_weight: 2.0}"))
    with pytest.raises(PlugrcnnError, match=r"model\.loss_weights \(e\.g\. model\.loss_weights\.loss_box: 2\.0\)"):
        build_model(load_config(path))
