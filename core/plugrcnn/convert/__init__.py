"""Convert foreign checkpoints (torchvision, detectron2) into plugrcnn state dicts."""
from __future__ import annotations

from typing import Iterable

import torch


class ConvertedWeights(dict):
    """``{plugrcnn key: tensor}`` as a plugin's `plugrcnn_convert_weights` returns it, plus
    `sources`: the foreign keys it used. The detectron2 converter requires it, so that every key
    of the source is either used by someone or listed as dropped; a plain dict (no sources)
    is accepted where the source does not account for keys (torchvision)."""

    def __init__(self, items: dict[str, torch.Tensor] | None = None,
                 sources: Iterable[str] = ()) -> None:
        super().__init__(items or {})
        self.sources: set[str] = set(sources)
