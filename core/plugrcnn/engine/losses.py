"""Losses in one place: the criterion step that turns a training forward into named losses, and
the one reduction of named losses into the scalar that is back-propagated.

A training step is ``outputs = model(batch)`` (tensors only, no hook inside) ->
``losses = criterion(outputs)`` (the RPN's losses, each head's ``loss`` and every
``plugrcnn_extra_losses`` term, unweighted) -> ``total = reduce(losses)`` (the
``plugrcnn_reduce_losses`` hook, else `weighted_sum` with ``model.loss_weights``).

``model.loss_weights`` is the one place loss weights are set, the RPN's included
(``{loss_rpn_cls: 1.0, loss_rpn_loc: 1.0, loss_mask: 2.0, ...}``; a loss not named weighs 1).
"""
from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from typing import Any, Callable

import torch

from plugrcnn.errors import PlugrcnnError

LossDict = Mapping[str, torch.Tensor]


def weighted_sum(losses: LossDict, weights: Mapping[str, float] | None = None) -> torch.Tensor:
    """The default reduction: ``sum(weights.get(name, 1.0) * loss)``."""
    if not losses:
        raise PlugrcnnError("model: returned no losses in training mode; is any head enabled?")
    weights = weights or {}
    return functools.reduce(operator.add, (value * weights.get(name, 1.0) for name, value in losses.items()))


class DetectorCriterion:
    """`TrainingOutputs` -> named losses: the RPN's, each head's own and the plugins' extra terms.

    Runs outside the model's forward (after it, inside the same autocast region), so DDP,
    torch.compile and export see tensors only; the hooks run here.
    """

    def __init__(self, heads: Mapping[str, Any], hook: Any = None) -> None:
        self.heads = heads
        self.hook = hook

    def __call__(self, outputs: Any) -> dict[str, torch.Tensor]:
        losses = dict(outputs.losses)
        for name, run in outputs.heads.items():
            own = self.heads[name].loss(run.outputs, run.rois, outputs.targets)
            self._add(losses, own, f"head '{name}': loss()")
            if self.hook is not None:
                for extra in self.hook.plugrcnn_extra_losses(head_name=name, outputs=run.outputs,
                                                             rois=run.rois, targets=outputs.targets):
                    self._add(losses, extra or {}, f"plugrcnn_extra_losses for head '{name}'")
        return losses

    @staticmethod
    def _add(losses: dict[str, torch.Tensor], new: Mapping[str, torch.Tensor], where: str) -> None:
        for key, value in new.items():
            if not key.startswith("loss_"):
                raise PlugrcnnError(f"{where} returned {key!r}; loss names start with 'loss_'")
            if key in losses:
                raise PlugrcnnError(f"{where} returned {key!r}, which another head or plugin already "
                                    f"returned; give each loss its own name")
            losses[key] = value


def make_loss_reducer(hook: Any, weights: Mapping[str, float]) -> Callable[[LossDict], torch.Tensor]:
    """A callable `losses -> scalar`: the first plugin that answers, else `weighted_sum`."""
    checked = False

    def reduce(losses: LossDict) -> torch.Tensor:
        nonlocal checked
        if not checked:
            unknown = sorted(set(weights) - set(losses))
            if unknown:
                raise PlugrcnnError(f"model.loss_weights names {unknown[0]!r}, which no enabled head "
                                    f"produces (losses: {', '.join(sorted(losses))})")
            checked = True
        total = None if hook is None else hook.plugrcnn_reduce_losses(losses=dict(losses), weights=dict(weights))
        return weighted_sum(losses, weights) if total is None else total

    return reduce
