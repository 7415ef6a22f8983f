"""YAML configs: `_base_` inheritance, overrides, and errors that name the key and the file."""
from __future__ import annotations

from pathlib import Path

import pytest

from plugrcnn.config import load_config
from plugrcnn.errors import PlugrcnnError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_base_inheritance_then_child_then_command_line(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", "model:\n  rpn:\n    nms_thresh: 0.6\n    pre_nms_topk_test: 500\n")
    child = write(tmp_path / "child.yaml", "_base_: base.yaml\nmodel:\n  rpn:\n    nms_thresh: 0.65\n")
    cfg = load_config(child, ["model.rpn.post_nms_topk_test=300", "model.heads.class={}"])
    assert cfg.model.rpn.nms_thresh == 0.65          # child beats base
    assert cfg.model.rpn.pre_nms_topk_test == 500     # base kept where child is silent
    assert cfg.model.rpn.post_nms_topk_test == 300    # command line
    # typed at load by the head's plugin (HeadSpec.config_class)
    assert list(cfg.model.heads) == ["class"] and type(cfg.model.heads["class"]).__name__ == "ClassHeadConfig"
    assert cfg.model.rpn.min_box_size == 0.0          # schema default
    assert cfg.provenance["model.rpn.pre_nms_topk_test"].endswith("base.yaml")


def test_unknown_key_names_the_key_and_the_file_that_set_it(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", "model:\n  rpn:\n    nms_treshold: 0.6\n")
    child = write(tmp_path / "child.yaml", "_base_: base.yaml\n")
    with pytest.raises(PlugrcnnError, match=r"base\.yaml: unknown key model\.rpn\.nms_treshold"):
        load_config(child)


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", "model:\n  rpn:\n    nms_thresh: high\n")
    with pytest.raises(PlugrcnnError, match=r"c\.yaml: key model\.rpn\.nms_thresh: expected float, got 'high'"):
        load_config(cfg)


def test_override_type_error_blames_the_command_line(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", "output_dir: out\n")
    with pytest.raises(PlugrcnnError, match=r"command line: key model\.num_classes: expected int"):
        load_config(cfg, ["model.num_classes=many"])


def test_int_is_accepted_for_float_but_bool_is_not_an_int(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path / "c.yaml", "model:\n  rpn:\n    nms_thresh: 1\n"))
    assert cfg.model.rpn.nms_thresh == 1.0 and isinstance(cfg.model.rpn.nms_thresh, float)
    with pytest.raises(PlugrcnnError, match="expected int"):
        load_config(write(tmp_path / "d.yaml", "model:\n  num_classes: true\n"))


def test_tuple_length_is_checked(tmp_path: Path) -> None:
    with pytest.raises(PlugrcnnError, match=r"model\.rpn\.iou_thresholds: expected 2 values, got 3"):
        load_config(write(tmp_path / "c.yaml", "model:\n  rpn:\n    iou_thresholds: [0.1, 0.2, 0.3]\n"))


def test_yaml_that_does_not_parse_names_file_and_line(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.yaml", "model:\n  rpn: [1, 2\n")
    with pytest.raises(PlugrcnnError, match=r"bad\.yaml: line \d+ config does not parse"):
        load_config(bad)


def test_base_cycle_and_missing_base_are_errors(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "_base_: b.yaml\n")
    write(tmp_path / "b.yaml", "_base_: a.yaml\n")
    with pytest.raises(PlugrcnnError, match="cycle"):
        load_config(tmp_path / "a.yaml")
    write(tmp_path / "c.yaml", "_base_: nope.yaml\n")
    with pytest.raises(PlugrcnnError, match=r"c\.yaml: key _base_: file nope\.yaml not found"):
        load_config(tmp_path / "c.yaml")


def test_head_config_is_checked_against_the_plugin_schema_at_load(tmp_path: Path) -> None:
    with pytest.raises(PlugrcnnError, match=r"c\.yaml: key model\.heads\.box\.smooth_l1_beta: expected float"):
        load_config(write(tmp_path / "c.yaml", (
            "model:\n  backbone: {name: resnet18}\n  heads:\n    class: {}\n    box: {smooth_l1_beta: x}\n")))
