"""The reduction of a step's named losses into one scalar, through the plugrcnn_reduce_losses hook."""
from __future__ import annotations

from typing import Any, Callable

import torch

from plugrcnn.errors import PlugrcnnError


def make_loss_reducer(hook: Any, weights: dict[str, float]) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """A callable `losses -> scalar`: the first plugin that answers, else the weighted sum."""
    checked = False

    def reduce(losses: dict[str, torch.Tensor]) -> torch.Tensor:
        nonlocal checked
        if not checked:
            unknown = sorted(set(weights) - set(losses))
            if unknown:
                raise PlugrcnnError(f"model.loss_weights names {unknown[0]!r}, which no enabled head "
                                    f"produces (losses: {', '.join(sorted(losses))})")
            checked = True
        total = hook.plugrcnn_reduce_losses(losses=losses, weights=weights)
        if total is None:
            total = sum(weights.get(name, 1.0) * value for name, value in losses.items())
        return total

    return reduce
