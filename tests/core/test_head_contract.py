"""Build-time checks of what heads declare: retired methods, forward's signature, consumes, eval
kinds, and a plugin's bug while building: one line each, naming the head."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from plugrcnn.config import load_config
from plugrcnn.errors import PlugrcnnError
from plugrcnn.heads import Head, HeadSpec, RoIInput, hookimpl
from plugrcnn.modeling.build import build_model
from plugrcnn.plugins.manager import load_heads


@dataclass
class Empty:
    pass


class Good(Head):
    def __init__(self, name: str = "extra") -> None:
        super().__init__(name, RoIInput(resolution=7))
        self.fc = torch.nn.Linear(1, 1)

    def forward(self, x, rows):
        return {"value": x.mean(dim=(1, 2, 3))}


class OldStyle(Good):
    def export_outputs(self, outputs, detections):  # the first contract's method
        return {}


class OwnCodec(Good):
    def target_codec(self):  # the codec now comes from HeadSpec.target_codec
        return None


class OneArgument(Good):
    def forward(self, x):  # type: ignore[override]
        return {"value": x.mean(dim=(1, 2, 3))}


class OwnKindWithoutEvaluate(Good):
    eval_kind = "volume"


def _plugin(head_class: type, **spec: object) -> object:
    class Plugin:
        @hookimpl
        def plugrcnn_register_heads(self):
            yield HeadSpec(name="extra", config_class=Empty, build=lambda cfg, ctx: head_class(), **spec)
    return Plugin()


def _build(tmp_path: Path, plugin: object) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  num_classes: 2\n  backbone: {name: resnet18}\n  fpn: {out_channels: 16}\n"
                    "  heads: {class: {}, box: {}, extra: {}}\n")
    registry = load_heads(["class", "box"], extra_plugins=[("extra-plugin", plugin)])
    build_model(load_config(path, registry=registry), registry)


@pytest.mark.parametrize(("head_class", "spec", "message"), [
    (OldStyle, {}, r"head 'extra' \(.*\) defines export_outputs\(\), which the head contract replaced by predict\(\)"),
    (OwnCodec, {}, r"head 'extra' \(.*\) defines target_codec\(\), which the head contract replaced by "
                   r"HeadSpec.target_codec\(\)"),
    (OneArgument, {}, r"head 'extra': forward\(\) must take \(x, rows\)"),
    (OwnKindWithoutEvaluate, {}, r"eval_kind 'volume' is not one COCOeval knows .* must implement evaluate\(\)"),
    (Good, {"consumes": ("mask.mask_class_logits",)}, r"consumes 'mask\.mask_class_logits' must be '<head>\.<key>' "
                                                      r"of a head it requires"),
])
def test_a_head_that_breaks_the_contract_is_refused_when_built(tmp_path: Path, head_class: type, spec: dict,
                                                               message: str) -> None:
    with pytest.raises(PlugrcnnError, match=message) as info:
        _build(tmp_path, _plugin(head_class, **spec))
    assert "\n" not in str(info.value)


def test_a_plugins_exception_while_building_is_one_line_naming_the_head(tmp_path: Path) -> None:
    class Crashing:
        @hookimpl
        def plugrcnn_register_heads(self):
            yield HeadSpec(name="extra", config_class=Empty, build=lambda cfg, ctx: {}["missing"])

    with pytest.raises(PlugrcnnError, match=r"head 'extra': building it failed \(KeyError: 'missing'\); "
                                            r"check model.heads.extra"):
        _build(tmp_path, Crashing())


def test_a_consumed_output_the_producer_lacks_names_both_heads(tmp_path: Path) -> None:
    class Reader(Good):
        def forward(self, x, rows):
            return {"value": rows.consumed["box.no_such_output"].sum(1)}

    path = tmp_path / "c.yaml"
    path.write_text("model:\n  num_classes: 2\n  device: cpu\n  backbone: {name: resnet18}\n  fpn: {out_channels: 16}\n"
                    "  detection: {score_thresh: 0.0}\n  heads: {class: {}, box: {}, extra: {}}\n")
    registry = load_heads(["class", "box"], extra_plugins=[(
        "extra-plugin", _plugin(Reader, requires=("box",), consumes=("box.no_such_output",)))])
    built = build_model(load_config(path, registry=registry), registry)
    with pytest.raises(PlugrcnnError, match=r"head 'extra' consumes 'box\.no_such_output' but head 'box' outputs "
                                            r"only \['box_deltas'\]"):
        built.model.eval().predict([torch.rand(3, 64, 64)])
