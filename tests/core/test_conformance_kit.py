"""plugrcnn.testing: the conformance checks fail, naming the step, on heads that break the contract.

The broken heads are installed for real: a module and a ``*.dist-info`` with its entry point in a
folder put on ``sys.path``, which is how pip installs a distribution.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from plugrcnn.testing import ConformanceError, head_checks

BROKEN_HEADS = '''
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from plugrcnn.heads import Head, HeadSpec, RoIInput, hookimpl


@dataclass
class Config:
    pass


class Broken(Head):
    stage = "instance"

    def __init__(self, name):
        super().__init__(name, RoIInput(resolution=7))
        self.fc = nn.Linear(32, 1)

    def forward(self, x, rows):
        return {"value": self.fc(x.mean(dim=(2, 3)))[:, 0]}

    def loss(self, outputs, rois, targets):
        if self.name == "nograd_head":  # a loss computed outside autograd
            return {f"loss_{self.name}": torch.tensor(float(outputs["value"].detach().abs().mean()))}
        return {f"loss_{self.name}": outputs["value"].pow(2).mean() if outputs["value"].numel()
                else outputs["value"].sum() * 0.0}

    def predict(self, outputs, rows, ctx):
        fields = {"value": outputs["value"].float()}
        if self.name == "dropping_head" and not ctx.static:  # the graph loses an output
            fields["extra"] = outputs["value"].float() * 2
        return fields


@hookimpl
def plugrcnn_register_heads():
    for name in ("nograd_head", "dropping_head"):
        yield HeadSpec(name=name, config_class=Config, build=lambda cfg, ctx, n=name: Broken(n),
                       requires=("class",))
'''


@pytest.fixture(scope="module")
def broken_heads_installed(tmp_path_factory: pytest.TempPathFactory):
    site = tmp_path_factory.mktemp("site")
    (site / "broken_heads.py").write_text(BROKEN_HEADS)
    info = site / "plugrcnn_broken_heads-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugrcnn-broken-heads\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[plugrcnn.heads]\nnograd_head = broken_heads\ndropping_head = broken_heads\n")
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    yield
    sys.path.remove(str(site))
    sys.modules.pop("broken_heads", None)
    importlib.invalidate_caches()


def _check(head: str, step: str):
    return next(c for c in head_checks(head) if c.step == step)


def test_a_loss_that_is_not_differentiable_fails_the_training_step(broken_heads_installed: None) -> None:
    _check("nograd_head", "build")()
    with pytest.raises(ConformanceError, match=r"head 'nograd_head', step 'train_step': .*not differentiable"):
        _check("nograd_head", "train_step")()


def test_an_output_the_export_drops_fails_the_export_step(broken_heads_installed: None) -> None:
    pytest.importorskip("onnxruntime")
    _check("dropping_head", "train_step")()
    _check("dropping_head", "predict")()
    with pytest.raises(ConformanceError, match=r"head 'dropping_head', step 'export': .*"
                                               r"no output \['dropping_head\.extra'\]"):
        _check("dropping_head", "export")()


def test_one_test_id_per_step() -> None:
    ids = [str(c) for c in head_checks("area")]
    assert ids == ["area:build", "area:train_step", "area:empty_batch", "area:predict", "area:draw",
                   "area:evaluate", "area:state_dict", "area:export"]
