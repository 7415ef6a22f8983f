"""Bad input to the CLI: one line on stderr naming the culprit, exit status 2, no traceback."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.io import write_png

from plugrcnn.cli import main
from plugrcnn.config import load_config
from plugrcnn.modeling.build import build_model

SMALL = ("model:\n  num_classes: 3\n  backbone: {name: resnet18}\n  fpn: {out_channels: 32}\n"
         "  box_trunk: {fc_dim: 64}\n  input: {min_size_test: 64, max_size_test: 96}\n"
         "  heads: {class: {}, box: {}}\n")


@pytest.fixture()
def setup(tmp_path: Path) -> dict[str, Path]:
    config = tmp_path / "small.yaml"
    config.write_text(SMALL)
    weights = tmp_path / "small.pth"
    torch.save({"model": build_model(load_config(config)).model.state_dict()}, weights)
    image = tmp_path / "img.png"
    write_png(torch.zeros(3, 40, 50, dtype=torch.uint8), str(image))
    return {"config": config, "weights": weights, "image": image, "tmp": tmp_path}


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


def predict_args(s: dict[str, Path], **changes: Path) -> list[str]:
    s = {**s, **changes}
    return ["predict", "--config", str(s["config"]), "--weights", str(s["weights"]),
            "--input", str(s["image"]), "--output", str(s["tmp"] / "out")]


def test_predict_works_on_the_good_inputs(setup: dict[str, Path], capsys) -> None:
    code, err = run(predict_args(setup), capsys)
    assert code == 0, err
    assert (setup["tmp"] / "out" / "predictions.json").is_file()


def test_missing_image(setup, capsys) -> None:
    code, err = run(predict_args(setup, image=setup["tmp"] / "nope.png"), capsys)
    assert code == 2 and "nope.png: no such image or folder" in err and len(err.splitlines()) == 1


def test_unreadable_image_names_the_file_and_writes_nothing(setup, capsys) -> None:
    folder = setup["tmp"] / "imgs"
    folder.mkdir()
    write_png(torch.zeros(3, 8, 8, dtype=torch.uint8), str(folder / "a.png"))
    (folder / "b.png").write_bytes(b"not a png")
    code, err = run(predict_args(setup, image=folder), capsys)
    assert code == 2 and "b.png: cannot read image" in err and len(err.splitlines()) == 1
    assert not (setup["tmp"] / "out" / "predictions.json").exists()


def test_config_that_does_not_parse(setup, capsys) -> None:
    bad = setup["tmp"] / "bad.yaml"
    bad.write_text("model: [1, 2\n")
    code, err = run(predict_args(setup, config=bad), capsys)
    assert code == 2 and "bad.yaml" in err and "does not parse" in err


def test_weights_that_do_not_fit_name_the_first_keys(setup, capsys) -> None:
    other = setup["tmp"] / "other.yaml"
    other.write_text(SMALL.replace("num_classes: 3", "num_classes: 5"))
    code, err = run(predict_args(setup, config=other), capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "weights do not fit" in err and "roi_stage.heads.class.cls_score.weight (4, 64) vs (6, 64)" in err


def test_weights_file_that_is_not_a_checkpoint(setup, capsys) -> None:
    junk = setup["tmp"] / "junk.pth"
    junk.write_text("hello")
    code, err = run(predict_args(setup, weights=junk), capsys)
    assert code == 2 and "junk.pth: not a readable torch checkpoint" in err


def test_head_not_installed(setup, capsys) -> None:
    cfg = setup["tmp"] / "polygon.yaml"
    cfg.write_text(SMALL.replace("box: {}", "box: {}, polygon: {}"))
    code, err = run(predict_args(setup, config=cfg), capsys)
    assert code == 2 and "head 'polygon'" in err and "pip install plugrcnn-polygon" in err


def test_head_that_requires_a_disabled_head(setup, capsys) -> None:
    cfg = setup["tmp"] / "nobox.yaml"
    cfg.write_text(SMALL.replace("heads: {class: {}, box: {}}", "heads: {box: {}}"))
    code, err = run(predict_args(setup, config=cfg), capsys)
    assert code == 2 and "head 'box' requires head 'class'" in err
