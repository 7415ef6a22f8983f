"""Backbones as plugins: the registry, the config section typed by the named backbone, the
declared pyramid that the core reads, and the built-in MobileNetV3 and RegNetY backbones."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torchvision
import yaml

from plugrcnn.backbones import BackboneSpec, Pyramid, hookimpl
from plugrcnn.backbones.registry import load_backbones
from plugrcnn.config import load_config
from plugrcnn.engine.training import save_config
from plugrcnn.errors import PlugrcnnError
from plugrcnn.modeling.build import build_model


def _config(tmp_path: Path, backbone: str, extra: str = "") -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(f"model:\n  num_classes: 2\n  backbone: {backbone}\n  fpn: {{out_channels: 16}}\n"
                    f"  box_trunk: {{fc_dim: 16}}\n{extra}  heads: {{class: {{}}, box: {{}}}}\n")
    return path


def test_an_unknown_backbone_is_one_line_naming_the_key_and_the_available_ones(tmp_path: Path) -> None:
    with pytest.raises(PlugrcnnError) as info:
        load_config(_config(tmp_path, "{name: resnet5}"))
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'c.yaml'}: key model.backbone.name: no backbone 'resnet5'")
    assert "mobilenet_v3_large_fpn" in message and "regnet_y_400mf_fpn" in message and "\n" not in message


def test_options_are_those_of_the_named_backbone(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, "{name: mobilenet_v3_large_fpn, first_level: 4}"))
    assert type(cfg.model.backbone.options).__name__ == "MobileNetV3Options"
    assert cfg.model.backbone.options.first_level == 4
    with pytest.raises(PlugrcnnError, match=r"unknown key model\.backbone\.stride_in_1x1 \(known: first_level"):
        load_config(_config(tmp_path, "{name: mobilenet_v3_large_fpn, stride_in_1x1: true}"))
    with pytest.raises(PlugrcnnError, match=r"key model\.backbone\.first_level: expected one of \[3, 4\], got 2"):
        load_config(_config(tmp_path, "{name: mobilenet_v3_large_fpn, first_level: 2}"))


def test_the_saved_config_loads_back_to_the_same_options(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, "{name: regnet_y_400mf_fpn, freeze_at: 3, norm: bn}"))
    saved = tmp_path / "saved.yaml"
    save_config(cfg, saved)  # as training writes config.yaml
    assert yaml.safe_load(saved.read_text())["model"]["backbone"] == {
        "name": "regnet_y_400mf_fpn", "norm": "bn", "freeze_at": 3, "weights": None}
    assert load_config(saved).model.backbone == cfg.model.backbone


def _plugin(*names: str) -> SimpleNamespace:
    @hookimpl
    def plugrcnn_register_backbones():
        return [BackboneSpec(n, dict, lambda options, ctx: None) for n in names]
    return SimpleNamespace(plugrcnn_register_backbones=plugrcnn_register_backbones)


def test_two_plugins_claiming_one_name_is_an_error_naming_both() -> None:
    with pytest.raises(PlugrcnnError, match="backbone 'resnet50' is registered by both 'plugrcnn' and 'copycat'"):
        load_backbones([], extra_plugins=[("copycat", _plugin("resnet50"))])
    with pytest.raises(PlugrcnnError, match="backbone 'dup' is registered by both 'first' and 'second'"):
        load_backbones([], extra_plugins=[("first", _plugin("dup")), ("second", _plugin("dup"))])


@pytest.mark.parametrize("bad, problem", [
    (dict(names=("a", "b"), strides=(8, 12), channels=4), "increasing powers of two"),
    (dict(names=("a", "b"), strides=(16, 8), channels=4), "increasing powers of two"),
    (dict(names=("a", "b", "c"), strides=(4, 8, 32), channels=4), "must be consecutive levels"),
    (dict(names=("a",), strides=(4,), channels=4, rpn_levels=("z",)), "unknown level 'z'"),
])
def test_a_pyramid_that_the_core_cannot_read_is_refused(bad: dict, problem: str) -> None:
    with pytest.raises(PlugrcnnError, match=problem):
        Pyramid(**bad)


@pytest.mark.parametrize("backbone, names, strides", [
    ("{name: mobilenet_v3_large_fpn, norm: bn}", ["p3", "p4", "p5", "p6"], [8, 16, 32, 64]),
    ("{name: mobilenet_v3_large_fpn, first_level: 4}", ["p4", "p5", "p6"], [16, 32, 64]),
    ("{name: regnet_y_400mf_fpn}", ["p2", "p3", "p4", "p5", "p6"], [4, 8, 16, 32, 64]),
])
def test_the_core_reads_the_declared_levels(tmp_path: Path, backbone: str, names: list, strides: list) -> None:
    anchors = "  anchors: {sizes: [%s]}\n" % ", ".join(f"[{4 * s}]" for s in strides)
    model = build_model(load_config(_config(tmp_path, backbone, anchors))).model.eval()
    pyramid = model.backbone.pyramid
    assert list(pyramid.names) == names and list(pyramid.strides) == strides
    features = model.backbone(torch.zeros(1, 3, 64, 96))
    assert [tuple(f.shape[1:]) for f in features] == [(16, -(-64 // s), -(-96 // s)) for s in strides]
    assert model.rpn.anchor_generator.strides == tuple(strides)                 # the RPN reads every level
    assert model.roi_stage.poolers["7"].scales == [1 / s for s in strides[:-1]]  # RoIAlign all but the max-pool one
    assert model.predict([torch.zeros(3, 64, 96)], resize=False)[0]["pred_boxes"].shape[1] == 4


def test_anchor_levels_must_match_the_backbones_rpn_levels(tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, "{name: mobilenet_v3_large_fpn}"))  # 5 default anchor levels, 4 rpn levels
    with pytest.raises(PlugrcnnError, match=r"key model\.anchors\.sizes: 5 levels .* 'mobilenet_v3_large_fpn' "
                                            r"feeds the RPN 4 levels \['p3', 'p4', 'p5', 'p6'\]"):
        build_model(cfg)


def test_mobilenet_loads_a_local_imagenet_file_and_freezes_by_stride(tmp_path: Path) -> None:
    reference = torchvision.models.mobilenet_v3_large(weights=None)
    torch.save(reference.state_dict(), tmp_path / "mnv3.pth")  # with the classifier's keys, ignored
    anchors = "  anchors: {sizes: [[32], [64], [128], [256]]}\n"
    backbone = "{name: mobilenet_v3_large_fpn, freeze_at: 2, weights: %s}" % (tmp_path / "mnv3.pth")
    net = build_model(load_config(_config(tmp_path, backbone, anchors))).model.backbone
    assert torch.equal(net.features[5].block[0][0].weight, reference.features[5].block[0][0].weight)
    assert not any(p.requires_grad for p in net.features[:4].parameters())   # strides 2 and 4
    assert all(p.requires_grad for p in net.features[4:].parameters())
