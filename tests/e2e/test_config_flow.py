"""One-way config flow: the whole config (heads and solver included) is checked before any data
set file is opened; nothing writes into the loaded config; a head's target codec comes from its
spec, so a config that does not fit the data fails at setup, in one line."""
from __future__ import annotations

import builtins
import io
import json
import os
from pathlib import Path

import pytest

from plugrcnn.cli import main
from plugrcnn.config import load_config
from plugrcnn.config.loader import to_dict
from plugrcnn.data.build import load_split
from plugrcnn.engine.training import prepare_training
from plugrcnn.errors import PlugrcnnError

from conftest import tiny_config

HEADS = "    class: {}\n    box: {}\n    mask: {}\n"


@pytest.fixture
def opened_data_files(monkeypatch: pytest.MonkeyPatch, tiny_synthetic: Path) -> list[str]:
    """Every file under the data set folder that anything opens, through any of Python's doors."""
    opened: list[str] = []
    root = str(tiny_synthetic.resolve())

    def recording(real):  # type: ignore[no-untyped-def]
        def wrapper(file, *args, **kwargs):  # type: ignore[no-untyped-def]
            if isinstance(file, (str, os.PathLike)) and os.path.abspath(os.fspath(file)).startswith(root):
                opened.append(os.fspath(file))
            return real(file, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(builtins, "open", recording(builtins.open))
    monkeypatch.setattr(io, "open", recording(io.open))
    monkeypatch.setattr(os, "open", recording(os.open))
    return opened


def test_the_recorder_sees_the_data_set_being_read(tmp_path: Path, tiny_synthetic: Path,
                                                   opened_data_files: list[str]) -> None:
    # the control: with a good config the annotation file is opened, and the recorder sees it
    load_split(load_config(tiny_config(tmp_path, tiny_synthetic, HEADS)), "train", training=True)
    assert any(path.endswith("instances_train.json") for path in opened_data_files)


@pytest.mark.parametrize(("heads", "extra", "key", "hint"), [
    (HEADS.replace("mask: {}", "mask: {conv_dimm: 8}"), "", "model.heads.mask.conv_dimm", "conv_dim"),
    (HEADS, "solver: {base_lrr: 0.1}", "solver.base_lrr", "base_lr"),
])
def test_a_misspelled_head_or_solver_key_fails_before_any_data_file_is_opened(
        tmp_path: Path, tiny_synthetic: Path, opened_data_files: list[str], capsys: pytest.CaptureFixture[str],
        heads: str, extra: str, key: str, hint: str) -> None:
    config = tiny_config(tmp_path, tiny_synthetic, heads)
    if extra:  # a second `solver:` mapping would be a YAML duplicate; write it as an override file
        child = tmp_path / "child.yaml"
        child.write_text(f"_base_: {config.name}\n{extra}\n")
        config = child
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert f"{config}: unknown key {key}; did you mean {hint}?" in err
    assert opened_data_files == []


def test_the_loaded_config_is_unchanged_by_building_model_and_data(tmp_path: Path, tiny_synthetic: Path) -> None:
    cfg = load_config(tiny_config(tmp_path, tiny_synthetic, HEADS))
    before = json.dumps(to_dict(cfg), sort_keys=True, default=str)
    built, dataset, _ = prepare_training(cfg)
    assert json.dumps(to_dict(cfg), sort_keys=True, default=str) == before
    assert cfg.model.class_names == () and cfg.model.num_classes == 80  # the schema's defaults, as loaded
    # the derived values were computed and passed: the model (and the run's config) has the data's
    assert built.model.cfg.num_classes == dataset.num_classes != 80
    assert built.config.model.class_names == tuple(dataset.category_names[i] for i in range(1, dataset.num_classes + 1))
    assert built.config is not cfg


def test_the_data_get_their_codecs_without_a_model(tmp_path: Path, tiny_synthetic: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from plugrcnn.engine import training

    seen: dict[str, object] = {}
    real_build = training.build_model

    def build_after_data(cfg, registry=None, data=None):  # type: ignore[no-untyped-def]
        seen["codecs_before_model"] = sorted(dataset_holder["dataset"].transform.codecs)
        return real_build(cfg, registry, data=data)

    real_load = training.load_split
    dataset_holder: dict[str, object] = {}

    def load_and_keep(*args, **kwargs):  # type: ignore[no-untyped-def]
        dataset_holder["dataset"] = real_load(*args, **kwargs)
        return dataset_holder["dataset"]

    monkeypatch.setattr(training, "build_model", build_after_data)
    monkeypatch.setattr(training, "load_split", load_and_keep)
    built, dataset, _ = prepare_training(load_config(tiny_config(tmp_path, tiny_synthetic, HEADS)))
    assert seen["codecs_before_model"] == ["mask"]  # set on the data set before the model existed
    assert built.model.heads["mask"].target_codec() == dataset.transform.codecs["mask"]


def test_a_keypoint_count_that_does_not_fit_the_data_fails_at_setup_in_one_line(
        tmp_path: Path, tiny_synthetic: Path, capsys: pytest.CaptureFixture[str]) -> None:
    categories = json.loads((tiny_synthetic / "annotations" / "instances_train.json").read_text())["categories"]
    figure = next(c for c in categories if c.get("keypoints"))
    names = [f"k{i}" for i in range(len(figure["keypoints"]) - 1)]  # one too few
    heads = HEADS + (f"    keypoint: {{keypoints: {json.dumps(names)}, oks_sigmas: {json.dumps([0.1] * len(names))},"
                     f" num_conv: 1, conv_dim: 8}}\n")
    config = tiny_config(tmp_path, tiny_synthetic, heads)
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert (f"category {figure['id']} ('{figure['name']}') has {len(figure['keypoints'])} keypoints but "
            f"model.heads.keypoint.keypoints names {len(names)}") in err
    assert "instances_train.json" in err
    assert not (tmp_path / "out" / "model_final.pth").exists()
