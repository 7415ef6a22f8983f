"""`plugrcnn heads new NAME`: a head plugin distribution that installs and passes the conformance
checks as written, for an author to change into their own head.

The skeleton head regresses the log aspect ratio (width / height) of each foreground RoI's
ground-truth box from its RoI features (and from the mean of every tensor it consumes): a real
target from boxes alone, so it trains on any COCO data without a codec.
"""
from __future__ import annotations

import re
from pathlib import Path

from plugrcnn.errors import PlugrcnnError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

PYPROJECT = '''[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "The {name} head for plugrcnn"
requires-python = ">=3.10"
dependencies = [{dependencies}]

[project.optional-dependencies]
test = ["pytest>=7.4"]

[project.entry-points."plugrcnn.heads"]
{name} = "{package}.plugin"

[tool.setuptools.packages.find]
include = ["{package}*"]
'''

INIT = '''"""The {name} head for plugrcnn."""
from __future__ import annotations

from {package}.head import {cls}, {cls}Config

__all__ = ["{cls}", "{cls}Config"]
'''

PLUGIN = '''"""Hook implementations: plugrcnn finds this module through the "plugrcnn.heads" entry point."""
from __future__ import annotations

from typing import Iterator

from plugrcnn.heads import HeadContext, HeadSpec, hookimpl
from {package}.head import {cls}, {cls}Config


def _build(cfg: {cls}Config, ctx: HeadContext) -> {cls}:
    return {cls}(cfg, ctx, name="{name}")


@hookimpl
def plugrcnn_register_heads() -> Iterator[HeadSpec]:
    yield HeadSpec(name="{name}", config_class={cls}Config, build=_build,
                   requires={requires!r}, consumes={consumes!r},
                   description="{name}: log aspect ratio of each object (skeleton; make it yours)")
'''

HEAD = '''"""The {name} head: RoIAlign features -> conv -> global pool -> linear -> one value per object.

Skeleton written by `plugrcnn heads new`: it regresses log(width / height) of each foreground
RoI's ground-truth box. Replace the target, the layers and the outputs with your own; keep the
methods' signatures (see docs/writing-a-head.md and `plugrcnn.heads.Head`).

Shape shorthand: R rows (RoIs), C channels, S pooler resolution.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from plugrcnn.heads import Head, HeadContext, ImageTargets, PredictContext, RoIInput, RoIRows, in_float32

CONSUMES = {consumes!r}  # outputs of required heads this head reads ("<head>.<key>")


@dataclass
class {cls}Config:
    pooler_resolution: int = 7   # RoIAlign output size this head reads
    hidden: int = 32             # conv channels


class {cls}(Head):
    stage = "instance"           # trains on foreground RoIs, runs on the final detections
    train_rois = "foreground"

    def __init__(self, cfg: {cls}Config, ctx: HeadContext, name: str = "{name}") -> None:
        super().__init__(name, RoIInput(resolution=cfg.pooler_resolution))
        self.cfg = cfg
        self.conv = nn.Conv2d(ctx.in_channels, cfg.hidden, 3, padding=1)
        self.fc = nn.Linear(cfg.hidden + len(CONSUMES), 1)

    def forward(self, x: torch.Tensor, rows: RoIRows) -> dict[str, torch.Tensor]:
        h = F.relu(self.conv(x)).mean(dim=(2, 3))                    # (R, C, S, S) -> (R, hidden)
        # each consumed output, averaged per row: (R, ...) -> (R, 1); no gradient into that head
        extra = [rows.consumed[ref].detach().flatten(1).float().mean(1, keepdim=True) for ref in CONSUMES]
        # the output layer in float32 under mixed precision (solver.amp, fast mode)
        return {{"log_ratio": in_float32(self.fc, torch.cat([h, *extra], dim=1))[:, 0]}}  # (R,)

    def loss(self, outputs: dict[str, torch.Tensor], rois: list[Any],
             targets: list[ImageTargets]) -> dict[str, torch.Tensor]:
        pred = outputs["log_ratio"]
        if pred.numel() == 0:  # no foreground RoI: a zero loss still connected to every parameter
            return {{f"loss_{{self.name}}": pred.sum() * 0.0}}
        boxes = torch.cat([t.gt_boxes[r.matched_gt] for r, t in zip(rois, targets)]).to(pred.device)
        sides = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1.0)         # (R, 2) width, height
        target = (sides[:, 0] / sides[:, 1]).log()
        return {{f"loss_{{self.name}}": F.smooth_l1_loss(pred, target)}}

    def predict(self, outputs: dict[str, torch.Tensor], rows: RoIRows,
                ctx: PredictContext) -> dict[str, torch.Tensor]:
        # becomes the detection field pred_{name}_ratio and the graph output {name}.{name}_ratio
        return {{"{name}_ratio": outputs["log_ratio"].float().exp()}}

    def finalize(self, detection: dict[str, torch.Tensor], scale_xy: tuple[float, float],
                 original_size: tuple[int, int]) -> None:
        # the network input was resized by a different factor along x and y
        key = "pred_{name}_ratio"
        detection[key] = detection[key] * (scale_xy[0] / scale_xy[1])

    def coco_results(self, detection: dict[str, torch.Tensor], records: list[dict[str, Any]]) -> None:
        for record, ratio in zip(records, detection["pred_{name}_ratio"].tolist()):
            record["{name}_ratio"] = ratio if math.isfinite(ratio) else None
'''

TEST = '''"""The {name} head passes plugrcnn's conformance checks: build, a training step, an empty
batch, predict, COCO records, drawing, evaluation, a state-dict round trip, export and verify."""
from __future__ import annotations

from plugrcnn.testing import HeadCheck, parametrize_head_checks


@parametrize_head_checks("{name}", config={{"hidden": 8}})
def test_conformance(head_check: HeadCheck) -> None:
    head_check()
'''

README = '''# {dist}

The `{name}` head for plugrcnn, written by `plugrcnn heads new`.

    pip install -e .            # registers the head under the "plugrcnn.heads" entry point
    pytest                      # plugrcnn's conformance checks on a tiny model

Enable it with one config line: `model.heads.{name}: {{}}`. Its loss is `loss_{name}` (weight it
with `model.loss_weights.loss_{name}`), its predictions are `pred_{name}_ratio` and its exported
graph output is `{name}.{name}_ratio`.
'''


def write_head_skeleton(name: str, output: Path, requires: tuple[str, ...] = (),
                        consumes: tuple[str, ...] = ()) -> Path:
    """Write the distribution ``plugrcnn-<name>`` into `output` / ``plugrcnn-<name>``."""
    if not NAME_PATTERN.match(name):
        raise PlugrcnnError(f"heads new: {name!r} is not a head name (lower-case letters, digits and "
                            f"'_', starting with a letter)")
    for ref in consumes:
        producer, _, key = ref.partition(".")
        if not key:
            raise PlugrcnnError(f"heads new: --consumes {ref!r} must be '<head>.<key>'")
        if producer not in requires:
            requires = (*requires, producer)
    requires = tuple(dict.fromkeys(requires))
    dist = f"plugrcnn-{name.replace('_', '-')}"
    root = output / dist
    if root.exists():
        raise PlugrcnnError(f"heads new: {root} exists already; choose another --output or name")
    package = f"plugrcnn_{name}"
    cls = "".join(part.capitalize() for part in name.split("_")) + "Head"
    dependencies = ", ".join(f'"{d}"' for d in ["plugrcnn", *(f"plugrcnn-{r}" for r in requires)])
    fields = dict(name=name, dist=dist, package=package, cls=cls, requires=requires, consumes=tuple(consumes),
                  dependencies=dependencies)
    files = {
        "pyproject.toml": PYPROJECT, "README.md": README, f"{package}/__init__.py": INIT,
        f"{package}/plugin.py": PLUGIN, f"{package}/head.py": HEAD, f"tests/test_{name}_conformance.py": TEST,
    }
    try:
        for relative, template in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(template.format(**fields))
    except OSError as exc:
        raise PlugrcnnError(f"heads new: cannot write {root} ({exc.strerror})") from None
    return root
