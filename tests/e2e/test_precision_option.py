"""model.precision: "exact" by default, "fast" from the API's fast=True and predict's --fast;
anything else is refused in one line naming the key."""
from __future__ import annotations

from pathlib import Path

import pytest

import plugrcnn
from plugrcnn.cli import main
from plugrcnn.config import load_config
from plugrcnn.errors import PlugrcnnError
from conftest import tiny_config

HEADS = "    class: {}\n    box: {}\n"


def test_load_fast_selects_the_fast_precision(tmp_path: Path, tiny_synthetic: Path) -> None:
    config = tiny_config(tmp_path, tiny_synthetic, HEADS)
    assert load_config(config, []).model.precision == "exact"
    model = plugrcnn.load(config, device="cpu", fast=True)
    assert model.cfg.model.precision == "fast"
    assert model.predictor.runtime is not None and model.predictor.runtime.precision == "fast"


def test_an_unknown_precision_is_refused_naming_the_key(tmp_path: Path, tiny_synthetic: Path) -> None:
    config = tiny_config(tmp_path, tiny_synthetic, HEADS)
    with pytest.raises(PlugrcnnError, match="precision"):
        load_config(config, ["model.precision=half"])


def test_predict_fast_flag_reaches_the_config(tmp_path: Path, tiny_synthetic: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from plugrcnn.inference.predictor import Predictor

    config = tiny_config(tmp_path, tiny_synthetic, HEADS)
    (tmp_path / "w.pth").write_bytes(b"")
    seen = []

    def stop(cfg, weights):  # the config predict would build its model from; nothing to run
        seen.append(cfg.model.precision)
        raise PlugrcnnError("stopped by the test")

    monkeypatch.setattr(Predictor, "from_config", staticmethod(stop))
    args = ["predict", "--config", str(config), "--weights", str(tmp_path / "w.pth"),
            "--input", str(tiny_synthetic / "val"), "--output", str(tmp_path / "out")]
    assert main(args) == 2 and main([*args, "--fast"]) == 2
    assert seen == ["exact", "fast"]
