"""Mixed precision for heads: run a head's output layer in float32 under autocast.

Under `solver.amp` (bf16 / fp16 autocast in training) and fast-mode inference, convs and
linears run in the low precision. A head's last layer makes what the loss and the decoding
read with sub-pixel care (regression deltas, logits of classes or of heatmaps); bf16 keeps 8
bits of mantissa there. `in_float32(layer, x)` runs that one layer in float32 (autocast off, input cast up), which
costs little: output layers are a small share of a head's work. Without autocast it is a plain
call, so exported graphs and exact mode are unchanged.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def in_float32(layer: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """`layer(x)` in float32 when autocast is on for x's device, else just `layer(x)`."""
    device = x.device.type
    if not torch.is_autocast_enabled(device) or torch.jit.is_scripting():
        return layer(x)
    with torch.autocast(device, enabled=False):
        return layer(x.float())


__all__ = ["in_float32"]
